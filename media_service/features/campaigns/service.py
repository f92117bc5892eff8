"""Logo prize campaigns: the rules for creating, publishing, closing, drawing, counting and deleting them.

A campaign names a merchant's processed video (``vid_...``), a logo image asset, how many fragments the logo
is cut into, the collecting rule (any fragment, N of them, all of them), dates, prizes, an entry limit, the
published rules and odds, and the free alternative entry route. Creating it queues ``campaigns.render``
(fragments, plan, preview sheet and video, and in ``burned`` mode the burned-in MP4). Publishing commits to
a secret seed (its SHA-256 is public from then on); closing freezes the entries and publishes their Merkle
root; drawing reveals the seed and picks the winners (``draw.py``), which anyone can recompute.
Webhooks ``campaign.published``, ``campaign.closed`` and ``campaign.drawn`` go through the webhook outbox in
the transaction that changes the state.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import url_for
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from media_service import webhooks
from media_service.db import begin_write
from media_service.errors import BadRequest, Conflict
from media_service.features.assets.service import get_asset
from media_service.features.campaigns import draw as drawing
from media_service.features.embed.service import event_counts
from media_service.features.video_index.service import latest_index, list_tracks
from media_service.features.videos.service import describe_video_for_embed, get_video
from media_service.jobs.queue import job_to_dict
from media_service.jobs.resources import (
    Dependents,
    ResourceState,
    create_with_job,
    delete_with_files,
    get_owned,
    job_files,
    public_state,
)
from media_service.media.logo.fragments import check_count
from media_service.models import (
    Asset,
    Campaign,
    CampaignClaim,
    CampaignCollect,
    CampaignEntry,
    CampaignSession,
    Job,
    utcnow,
)
from media_service.storage import Storage
from media_service.web.files import prefix_signer

JOB_KIND = "campaigns.render"
MODES = ("overlay", "burned")
RULES = ("any", "n", "all")
EVENTS = ("campaign.published", "campaign.closed", "campaign.drawn")
FIELDS = {"video_id", "logo_asset_id", "title", "mode", "fragments", "seed", "rule", "starts_at", "ends_at",
          "prizes", "max_entries", "rules", "odds", "alternative_entry"}
MAX_PRIZE_SLOTS = 1000


def _text(body: Mapping[str, Any], name: str, *, limit: int, required: bool = True) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        what = "a non-empty string" if required else "a string"
        raise BadRequest(f"{name} must be {what} of at most {limit} characters", code="invalid_campaign")
    return value.strip()


def _when(body: Mapping[str, Any], name: str) -> datetime | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise BadRequest(f"{name} must be an ISO 8601 time with a time zone (2025-11-11T00:00:00+08:00)",
                         code="invalid_campaign")
    return parsed


def parse_rule(value: Any, count: int) -> dict[str, Any]:
    """``{"kind": "any"}``, ``{"kind": "all"}`` or ``{"kind": "n", "n": 1..count}``."""
    if not isinstance(value, dict) or value.get("kind") not in RULES:
        raise BadRequest("rule must be {\"kind\": \"any\"}, {\"kind\": \"all\"} or {\"kind\": \"n\", \"n\": N}",
                         code="invalid_rule")
    if value["kind"] == "n":
        n = value.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= count:
            raise BadRequest(f"rule n must be a whole number from 1 to the fragment count ({count})",
                             code="invalid_rule")
        return {"kind": "n", "n": n}
    return {"kind": value["kind"]}


def needed(rule: Mapping[str, Any], count: int) -> int:
    """Fragments a shopper must collect for an entry."""
    return {"any": 1, "all": count}.get(rule["kind"], int(rule.get("n", count)))


def _prizes(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not 1 <= len(value) <= 50:
        raise BadRequest("prizes must be a list of 1-50 {\"name\", \"quantity\"} objects", code="invalid_prizes")
    prizes = []
    for prize in value:
        quantity = prize.get("quantity", 1) if isinstance(prize, dict) else None
        if not isinstance(prize, dict) or not isinstance(prize.get("name"), str) or not prize["name"].strip() \
                or isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 1000:
            raise BadRequest("each prize needs a name and a quantity from 1 to 1000", code="invalid_prizes")
        prizes.append({"name": prize["name"].strip()[:200], "quantity": quantity})
    if sum(p["quantity"] for p in prizes) > MAX_PRIZE_SLOTS:
        raise BadRequest(f"at most {MAX_PRIZE_SLOTS} prizes in all", code="invalid_prizes")
    return prizes


def avoid_regions(session: Session, merchant_id: str, asset_id: str) -> list[list[float]]:
    """Where the products of the video's newest ready index are, as ``[start, end, x0, y0, x1, y1]`` per
    track and second (the union of its boxes in that second)."""
    # Imported here: the features package imports campaigns before products and video_index, whose modules
    # import each other and must be imported in their own order (products first).

    index = latest_index(session, merchant_id, asset_id, ready=True)
    if index is None:
        return []
    regions = []
    for track in list_tracks(session, index):
        if track.state == "rejected":
            continue
        buckets: dict[int, list[float]] = {}
        for sample in track.samples:
            x0, y0, x1, y1 = sample["box"]
            b = buckets.setdefault(int(sample["t"]), [x0, y0, x1, y1])
            b[:] = [min(b[0], x0), min(b[1], y0), max(b[2], x1), max(b[3], y1)]
        regions += [[float(second), float(second + 1), *box] for second, box in sorted(buckets.items())]
    return regions


def create_campaign(session: Session, settings: Mapping[str, Any], merchant_id: str, body: Mapping[str, Any],
                    idempotency_key: str | None) -> tuple[Campaign, Job, bool]:
    """Check the request and queue the render (see the module)."""
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}", code="unknown_fields")
    count = check_count(body.get("fragments", 5))
    mode = body.get("mode", "overlay")
    if mode not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}", code="invalid_campaign")
    seed = body.get("seed", secrets.randbelow(2 ** 31))
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 31:
        raise BadRequest("seed must be a whole number from 0 to 2^31-1", code="invalid_campaign")
    max_entries = body.get("max_entries")
    if max_entries is not None and (isinstance(max_entries, bool) or not isinstance(max_entries, int)
                                    or max_entries < 1):
        raise BadRequest("max_entries must be a positive whole number or null", code="invalid_campaign")
    starts_at, ends_at = _when(body, "starts_at"), _when(body, "ends_at")
    if starts_at and ends_at and ends_at <= starts_at:
        raise BadRequest("ends_at must be after starts_at", code="invalid_campaign")
    video = get_video(session, merchant_id, _text(body, "video_id", limit=40))
    if video.state != ResourceState.READY or not video.output_prefix or not (video.outputs or {}).get("files"):
        raise Conflict("the video is not ready yet; create the campaign once its processing finished",
                       code="video_not_ready")
    logo = get_asset(session, merchant_id, _text(body, "logo_asset_id", limit=40))
    if logo.kind != "image":
        raise BadRequest(f"asset {logo.id} is a {logo.kind}; the logo must be a PNG or WebP image asset",
                         code="logo_not_an_image")
    campaign = Campaign(
        merchant_id=merchant_id, video_id=video.id, logo_asset_id=logo.id, title=_text(body, "title", limit=200),
        mode=mode, fragment_count=count, seed=seed, rule=parse_rule(body.get("rule", {"kind": "all"}), count),
        starts_at=starts_at, ends_at=ends_at, prizes=_prizes(body.get("prizes")), max_entries=max_entries,
        rules_text=_text(body, "rules", limit=20000), odds_text=_text(body, "odds", limit=2000),
        alternative_entry=_text(body, "alternative_entry", limit=2000))
    params = {"mode": mode, "fragments": count, "seed": seed, "logo_key": logo.storage_key,
              "video_key": f"{video.output_prefix}/{video.outputs['files']['mp4']}",
              "width": video.width, "height": video.height, "duration": video.duration,
              "avoid": avoid_regions(session, merchant_id, video.asset_id)}
    return create_with_job(session, campaign, JOB_KIND, lambda row: {"campaign_id": row.id, **params},
                           merchant_id=merchant_id, max_attempts=settings["JOB_MAX_ATTEMPTS"],
                           idempotency_key=f"campaigns:{idempotency_key}" if idempotency_key else None)


def get_campaign(session: Session, merchant_id: str, campaign_id: str) -> Campaign:
    return get_owned(session, Campaign, campaign_id, merchant_id, "campaign")


def render_state(campaign: Campaign, job: Job | None) -> str:
    return public_state(ResourceState.READY if campaign.rendered else None, job).value


def output_url(campaign: Campaign, name: str | None) -> str | None:
    """A signed URL of one of the campaign's rendered outputs (sheet, video, fragment images)."""
    prefix = (campaign.outputs or {}).get("prefix")
    return prefix_signer(prefix)(name) if prefix and name else None


def campaign_to_dict(session: Session, campaign: Campaign, job: Job | None) -> dict[str, Any]:
    """The merchant's view: rules, render state, preview links, plan, commitments and counts."""
    outputs = campaign.outputs or {}
    body: dict[str, Any] = {
        "id": campaign.id, "title": campaign.title, "state": campaign.state, "mode": campaign.mode,
        "render": {"state": render_state(campaign, job), "job": job_to_dict(job) if job else None},
        "video_id": campaign.video_id, "logo_asset_id": campaign.logo_asset_id,
        "fragments": campaign.fragment_count, "seed": campaign.seed, "rule": campaign.rule,
        "starts_at": campaign.starts_at.isoformat() if campaign.starts_at else None,
        "ends_at": campaign.ends_at.isoformat() if campaign.ends_at else None,
        "prizes": campaign.prizes, "max_entries": campaign.max_entries, "rules": campaign.rules_text,
        "odds": campaign.odds_text, "alternative_entry": campaign.alternative_entry,
        "seed_commitment": campaign.seed_commitment, "merkle_root": campaign.merkle_root,
        "entry_count": entry_count(session, campaign.id), "winners": campaign.winners,
        "created_at": campaign.created_at.isoformat(),
        "published_at": campaign.published_at.isoformat() if campaign.published_at else None,
        "closed_at": campaign.closed_at.isoformat() if campaign.closed_at else None,
        "drawn_at": campaign.drawn_at.isoformat() if campaign.drawn_at else None,
        "links": {"self": url_for("campaigns.get_campaign", campaign_id=campaign.id),
                  "public": url_for("campaigns.public_campaign", campaign_id=campaign.id, _external=True),
                  "draw_record": url_for("campaigns.public_draw", campaign_id=campaign.id, _external=True)},
    }
    if campaign.rendered:
        body["preview"] = {"sheet_url": output_url(campaign, outputs.get("sheet")),
                           "video_url": output_url(campaign, outputs.get("preview")),
                           "burned_mp4_url": output_url(campaign, outputs.get("burned")),
                           "poster_url": output_url(campaign, outputs.get("poster"))}
        body["plan"] = {"placements": campaign.plan.get("placements", []), "notes": campaign.plan.get("notes", []),
                        "avoided": campaign.plan.get("avoided", {})}
    elif job is not None and job.error:
        body["render"]["error"] = {k: v for k, v in job.error.items() if k != "traceback"}
    return body


def entry_count(session: Session, campaign_id: str) -> int:
    return session.scalar(select(func.count()).select_from(CampaignEntry)
                          .where(CampaignEntry.campaign_id == campaign_id)) or 0


def entry_ids(session: Session, campaign_id: str) -> list[str]:
    return sorted(session.scalars(select(CampaignEntry.id).where(CampaignEntry.campaign_id == campaign_id)))


def record_event(session: Session, campaign: Campaign, event: str, data: dict[str, Any]) -> None:
    """One outbox row per webhook subscribed to ``event`` or to everything (caller commits, in the state's
    transaction). ``EVENTS`` are the feature's ``webhook_events``: a hook may subscribe to them by name."""
    webhooks.record_event(session, campaign.merchant_id, event, {"campaign_id": campaign.id, **data})


def _require_state(campaign: Campaign, *states: str, action: str) -> None:
    if campaign.state not in states:
        raise Conflict(f"a {campaign.state} campaign cannot be {action}; it must be {' or '.join(states)}",
                       code="campaign_state")


def publish(session: Session, campaign: Campaign) -> Campaign:
    """Open the campaign to shoppers and commit to the draw's secret seed (its SHA-256 becomes public)."""
    begin_write(session)
    session.refresh(campaign)
    _require_state(campaign, "draft", action="published")
    if not campaign.rendered:
        raise Conflict("the campaign's fragments are not rendered yet; publish once render.state is 'ready'",
                       code="campaign_not_rendered")
    video = get_video(session, campaign.merchant_id, campaign.video_id)
    if video.moderation_status != "approved":
        raise Conflict("the campaign's video is not approved for publication; approve it first",
                       code="video_not_approved")
    campaign.secret_seed = secrets.token_hex(32)
    campaign.seed_commitment = drawing.commitment(campaign.secret_seed)
    campaign.state, campaign.published_at = "published", utcnow()
    record_event(session, campaign, "campaign.published", {"seed_commitment": campaign.seed_commitment})
    session.commit()
    return campaign


def close(session: Session, campaign: Campaign) -> Campaign:
    """Stop collecting, freeze the entries and publish their Merkle root."""
    begin_write(session)
    session.refresh(campaign)
    _require_state(campaign, "published", action="closed")
    _close(session, campaign, "merchant")
    session.commit()
    return campaign


def _close(session: Session, campaign: Campaign, by: str) -> None:
    """Freeze the entries of a published campaign (inside the caller's write transaction)."""
    ids = entry_ids(session, campaign.id)
    campaign.merkle_root, campaign.entry_count = drawing.merkle_root(ids), len(ids)
    campaign.state, campaign.closed_at = "closed", utcnow()
    record_event(session, campaign, "campaign.closed",
                 {"merkle_root": campaign.merkle_root, "entries": len(ids), "closed_by": by})


def close_ended(session: Session, settings: Mapping[str, Any]) -> int:
    """A worker chore: close every published campaign whose ``ends_at`` has passed, as the merchant's close
    would (entries frozen, Merkle root published, ``campaign.closed`` with ``closed_by: "schedule"``), so the
    record is frozen at the announced end even when nobody calls close. Answers how many it closed."""
    due = select(Campaign.id).where(Campaign.state == "published", Campaign.ends_at.is_not(None),
                                    Campaign.ends_at < utcnow())
    if not session.scalars(due.limit(1)).first():
        session.commit()
        return 0
    begin_write(session)
    closed = 0
    for campaign in session.scalars(select(Campaign).where(Campaign.id.in_(due))).all():
        _close(session, campaign, "schedule")
        closed += 1
    session.commit()
    return closed


def run_draw(session: Session, campaign: Campaign) -> Campaign:
    """Reveal the seed and pick the winners (``draw.py``); anyone can recompute them from the public record."""
    begin_write(session)
    session.refresh(campaign)
    _require_state(campaign, "closed", action="drawn")
    ids = entry_ids(session, campaign.id)
    if drawing.merkle_root(ids) != campaign.merkle_root:  # entries are frozen at close; this must hold
        raise Conflict("the entries changed after the campaign was closed; the draw is refused",
                       code="entries_changed")
    campaign.winners = drawing.draw(campaign.secret_seed or "", ids, campaign.prizes)
    campaign.state, campaign.drawn_at = "drawn", utcnow()
    record_event(session, campaign, "campaign.drawn", {"seed": campaign.secret_seed, "winners": campaign.winners})
    session.commit()
    return campaign


def shopper_key(secret: str, campaign_id: str, kind: str, raw: str) -> str:
    """The opaque key of a shopper in one campaign (never the merchant's id or the device id itself)."""
    return hmac.new(secret.encode(), f"campaign-shopper\n{campaign_id}\n{kind}\n{raw}".encode(),
                    hashlib.sha256).hexdigest()[:40]


def add_entry(session: Session, campaign: Campaign, key: str, route: str) -> tuple[CampaignEntry | None, str]:
    """The shopper's entry (created now, or the one they already have) and ``created``, ``exists`` or
    ``entries_full``. Runs inside the caller's write transaction; the unique constraint makes it one per
    shopper even under concurrent requests."""
    existing = session.scalar(select(CampaignEntry).where(CampaignEntry.campaign_id == campaign.id,
                                                          CampaignEntry.shopper_key == key))
    if existing is not None:
        return existing, "exists"
    if campaign.max_entries is not None and entry_count(session, campaign.id) >= campaign.max_entries:
        return None, "entries_full"
    entry = CampaignEntry(campaign_id=campaign.id, shopper_key=key, route=route)
    try:
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        return session.scalar(select(CampaignEntry).where(CampaignEntry.campaign_id == campaign.id,
                                                          CampaignEntry.shopper_key == key)), "exists"
    return entry, "created"


def alternative_entry(session: Session, settings: Mapping[str, Any], campaign: Campaign,
                      body: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """An entry by the free alternative route, recorded by the merchant for a shopper id (no collecting)."""
    shopper = _text(body, "shopper_id", limit=200)
    begin_write(session)
    session.refresh(campaign)
    _require_state(campaign, "published", action="entered")
    entry, outcome = add_entry(session, campaign, shopper_key(settings["SECRET_KEY"], campaign.id, "shopper",
                                                              shopper), "alternative")
    session.commit()
    if entry is None:
        raise Conflict("this campaign has reached its entry limit", code="entries_full")
    return {"entry_id": entry.id, "route": entry.route, "created": outcome == "created"}, \
        201 if outcome == "created" else 200


def stats(session: Session, campaign: Campaign) -> dict[str, Any]:
    """Views (viewer sessions), fragments seen (revealed to viewers), collects, entries and add-to-cart."""
    sessions = session.scalars(select(CampaignSession.revealed).where(CampaignSession.campaign_id == campaign.id))
    views, seen = 0, 0
    for revealed in sessions:
        views += 1
        seen += len(revealed or [])

    def count(model: Any, *where: Any) -> int:
        return session.scalar(select(func.count()).select_from(model).where(model.campaign_id == campaign.id,
                                                                            *where)) or 0

    carts = event_counts(session, campaign.merchant_id, campaign.id, event_type="add_to_cart")["add_to_cart"]
    entries = count(CampaignEntry)
    return {"campaign_id": campaign.id, "views": views, "fragments_seen": seen, "collects": count(CampaignCollect),
            "claims": count(CampaignClaim), "rejected_claims": count(CampaignClaim, CampaignClaim.accepted.is_(False)),
            "entries": entries, "add_to_cart": carts,
            "conversion_to_cart": round(carts / views, 4) if views else 0.0,
            "entry_rate": round(entries / views, 4) if views else 0.0}


def delete_campaign(session: Session, storage: Storage, campaign: Campaign) -> None:
    """Delete the campaign, its sessions, claims and entries (cascade) and its rendered files."""
    delete_with_files(session, storage, [campaign], job_ids=[campaign.job_id],
                      prefixes=[job_files(campaign)])  # type: ignore[arg-type]


def campaigns_of_asset(session: Session, asset: Asset) -> Dependents:
    """Campaigns whose logo is the asset go with it (their fragments were made from it)."""
    rows = session.scalars(select(Campaign).where(Campaign.logo_asset_id == asset.id)).all()
    return Dependents(job_ids=[r.job_id for r in rows if r.job_id], prefixes=[p for r in rows if (p := job_files(r))])


def public_record(session: Session, campaign: Campaign) -> dict[str, Any]:
    """What anyone may see of a published campaign: rules, odds, prizes, dates and the draw's commitments."""
    if campaign.state == "draft":
        raise Conflict("this campaign is not published", code="campaign_not_published")
    return {"id": campaign.id, "title": campaign.title, "state": campaign.state,
            "starts_at": campaign.starts_at.isoformat() if campaign.starts_at else None,
            "ends_at": campaign.ends_at.isoformat() if campaign.ends_at else None,
            "rule": campaign.rule, "fragments": campaign.fragment_count, "prizes": campaign.prizes,
            "max_entries": campaign.max_entries, "rules": campaign.rules_text, "odds": campaign.odds_text,
            "alternative_entry": campaign.alternative_entry, "seed_commitment": campaign.seed_commitment,
            "merkle_root": campaign.merkle_root,
            "entries": campaign.entry_count if campaign.entry_count is not None else entry_count(session, campaign.id),
            "draw_record_url": url_for("campaigns.public_draw", campaign_id=campaign.id, _external=True)}


def draw_record(session: Session, campaign: Campaign) -> dict[str, Any]:
    """The record ``tools/verify_draw.py`` checks: commitment, root, entries (from close), seed and winners
    (from the draw), and the algorithm's name and description."""
    if campaign.state == "draft":
        raise Conflict("this campaign is not published", code="campaign_not_published")
    frozen = campaign.state in ("closed", "drawn")
    drawn = campaign.state == "drawn"
    return {"campaign_id": campaign.id, "algorithm": drawing.ALGORITHM, "description": drawing.__doc__,
            "state": campaign.state, "seed_commitment": campaign.seed_commitment,
            "merkle_root": campaign.merkle_root, "entries": entry_ids(session, campaign.id) if frozen else None,
            "prizes": campaign.prizes, "seed": campaign.secret_seed if drawn else None,
            "winners": campaign.winners if drawn else None}


def describe_campaign_for_embed(session: Session, merchant_id: str, campaign_id: str) -> dict[str, Any]:
    """A published campaign for the widget: the video to play (the processed video in overlay mode, the
    burned-in MP4 in burned mode), the fragment images (overlay), the rules and the play endpoints (relative
    to the manifest URL). Never the schedule: that is revealed per session, segment by segment."""
    campaign = get_campaign(session, merchant_id, campaign_id)
    if campaign.state not in ("published", "closed", "drawn"):
        raise Conflict("this campaign is not published yet; embed it once it is", code="not_ready")
    if campaign.mode == "burned":
        frame = campaign.plan.get("frame", [None, None])
        video = {"mp4": output_url(campaign, campaign.outputs.get("burned")), "hls": None,
                 "poster": output_url(campaign, campaign.outputs.get("poster")), "storyboard": None,
                 "width": frame[0], "height": frame[1]}
    else:
        video = describe_video_for_embed(session, merchant_id, campaign.video_id)["video"]
    fragments = [] if campaign.mode == "burned" else [
        {"fragment": i, "src": output_url(campaign, name)}
        for i, name in enumerate(campaign.outputs.get("fragments", []))]
    return {"mode": "campaign", "title": campaign.title, "campaign": {
        "id": campaign.id, "mode": campaign.mode, "state": campaign.state, "video": video, "fragments": fragments,
        "count": campaign.fragment_count, "needed": needed(campaign.rule, campaign.fragment_count),
        "rules": campaign.rules_text, "odds": campaign.odds_text, "prizes": campaign.prizes,
        "alternative_entry": campaign.alternative_entry,
        "ends_at": campaign.ends_at.isoformat() if campaign.ends_at else None,
        "endpoints": {"session": "campaign/session", "schedule": "campaign/schedule", "claims": "campaign/claims"},
        "public_url": url_for("campaigns.public_campaign", campaign_id=campaign.id, _external=True)}}
