"""Console pages for logo prize campaigns: the list, a form to create one, and the campaign page (its render,
fragments and placement preview sheet, publish / close / draw, stats, and after the draw the public proof
with the command that verifies it).

Every rule lives in the campaigns feature's service; these views turn form fields into the body its API
takes and show what its API answers (``campaign_to_dict``), so the console and the API never disagree.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from flask import current_app, request
from sqlalchemy import select

from media_service.db import get_session
from media_service.errors import BadRequest
from media_service.features.campaigns.service import (
    campaign_to_dict,
    close,
    create_campaign,
    draw_record,
    get_campaign,
    output_url,
    publish,
    run_draw,
    stats,
)
from media_service.features.console.api import bp, current, done, render_page
from media_service.jobs.resources import ResourceState
from media_service.models import Asset, Campaign, Job, Video
from media_service.web.files import signed_url

#: What each button does, in the words of its notice after the form.
ACTIONS = {
    "publish": (publish, "Published: shoppers can collect now, and the draw's seed commitment is public."),
    "close": (close, "Closed: the entries are frozen and their Merkle root is public."),
    "draw": (run_draw, "Drawn: the seed is revealed and the winners are picked; anyone can verify them."),
}
STATE_WORDS = {
    "draft": "Draft: not visible to shoppers yet.",
    "published": "Published: shoppers collect fragments and enter.",
    "closed": "Closed: no more entries; ready for the draw.",
    "drawn": "Drawn: the winners are picked and the proof is public.",
}
PRIZE_LINE = re.compile("^\\s*(\\d+)\\s*[x\u00d7*]\\s*(.+?)\\s*$", re.IGNORECASE)
OFFSET = re.compile(r"^[+-](?:[01]\d|2[0-3]):[0-5]\d$")


# ---------------------------------------------------------------------------------------- form -> body


def _whole(value: str, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise BadRequest(f"{what} must be a whole number", code="invalid_campaign") from None


def parse_prizes(text: str) -> list[dict[str, Any]]:
    """One prize a line, ``2 x Gift card`` (or just ``Gift card`` for one of it)."""
    prizes = []
    for line in text.splitlines():
        if not line.strip():
            continue
        found = PRIZE_LINE.match(line)
        prizes.append({"name": found.group(2), "quantity": int(found.group(1))} if found
                      else {"name": line.strip(), "quantity": 1})
    return prizes


def _time(form: Any, name: str) -> str | None:
    """A ``datetime-local`` field and the form's UTC offset, as the ISO 8601 time the service takes."""
    value = form.get(name, "").strip()
    if not value:
        return None
    offset = form.get("utc_offset", "+00:00").strip() or "+00:00"
    if not OFFSET.match(offset):
        raise BadRequest("the time zone must be an offset from UTC such as +08:00 or -05:00", code="invalid_campaign")
    return f"{value}:00{offset}" if len(value) == 16 else f"{value}{offset}"


def campaign_body(form: Any) -> dict[str, Any]:
    """The create form's fields as the body ``POST /v1/campaigns`` takes (the service checks every value)."""
    count = _whole(form.get("fragments", "5"), "the fragment count")
    rule: dict[str, Any] = {"kind": form.get("rule", "all")}
    if rule["kind"] == "n":
        rule["n"] = _whole(form.get("rule_n", ""), "the number of fragments to collect")
    limit = form.get("max_entries", "").strip()
    return {"video_id": form.get("video_id", ""), "logo_asset_id": form.get("logo_asset_id", ""),
            "title": form.get("title", ""), "mode": form.get("mode", "overlay"), "fragments": count, "rule": rule,
            "starts_at": _time(form, "starts_at"), "ends_at": _time(form, "ends_at"),
            "prizes": parse_prizes(form.get("prizes", "")),
            "max_entries": _whole(limit, "the entry limit") if limit else None,
            "rules": form.get("rules", ""), "odds": form.get("odds", ""),
            "alternative_entry": form.get("alternative_entry", "")}


# ---------------------------------------------------------------------------------------------- views


def _view(campaign: Campaign) -> dict[str, Any]:
    session = get_session()
    return campaign_to_dict(session, campaign, session.get(Job, campaign.job_id) if campaign.job_id else None)


@bp.get("/campaigns", endpoint="campaigns")
def campaigns() -> Any:
    """The merchant's campaigns, newest first, and (for owners and editors) the form that creates one."""
    me = current()
    session = get_session()
    rows = list(session.scalars(select(Campaign).where(Campaign.merchant_id == me.merchant_id)
                                .order_by(Campaign.created_at.desc()).limit(100)))
    videos = session.execute(select(Video, Asset.filename).join(Asset, Asset.id == Video.asset_id)
                             .where(Video.merchant_id == me.merchant_id, Video.state == ResourceState.READY)
                             .order_by(Video.created_at.desc()).limit(100)).all()
    logos = list(session.scalars(select(Asset).where(Asset.merchant_id == me.merchant_id, Asset.kind == "image")
                                 .order_by(Asset.created_at.desc()).limit(60)))
    return render_page("console/campaigns.html", items=[_view(c) for c in rows], videos=videos,
                       logos=[(a, signed_url(a.thumbnail_key) if a.thumbnail_key else None) for a in logos],
                       nonce=secrets.token_urlsafe(12))


@bp.post("/campaigns", endpoint="campaigns_create")
def campaigns_create() -> Any:
    """Create a campaign and queue its render; the form's nonce makes a double submit return the first."""
    me = current()
    me.require("edit")
    nonce = request.form.get("nonce", "")[:40] or None
    campaign, _job, _created = create_campaign(get_session(), current_app.config, me.merchant_id,
                                               campaign_body(request.form), f"console:{nonce}" if nonce else None)
    return done(f"Rendering the fragments of {campaign.title}.", "console.campaigns_page", campaign_id=campaign.id)


@bp.get("/campaigns/<campaign_id>", endpoint="campaigns_page")
def campaigns_page(campaign_id: str) -> Any:
    """One campaign: state, render, fragments and preview sheet, the buttons its state allows, stats, proof."""
    me = current()
    session = get_session()
    campaign = get_campaign(session, me.merchant_id, campaign_id)
    body = _view(campaign)
    placements = {p["index"]: p for p in (body.get("plan") or {}).get("placements", [])}
    fragments = [{"index": i, "src": output_url(campaign, name), "placement": placements.get(i)}
                 for i, name in enumerate((campaign.outputs or {}).get("fragments", []))]
    record = draw_record(session, campaign) if campaign.state == "drawn" else None
    return render_page("console/campaign.html", campaign=campaign, body=body, fragments=fragments,
                       stats=stats(session, campaign) if campaign.state != "draft" else None, record=record,
                       state_words=STATE_WORDS.get(campaign.state, campaign.state),
                       logo=session.get(Asset, campaign.logo_asset_id))


@bp.post("/campaigns/<campaign_id>/<action>", endpoint="campaigns_action")
def campaigns_action(campaign_id: str, action: str) -> Any:
    """Publish, close or draw (owners and editors); the service refuses a step the state does not allow."""
    me = current()
    me.require("edit")
    if action not in ACTIONS:
        raise BadRequest("the action must be publish, close or draw", code="invalid_action")
    step, words = ACTIONS[action]
    session = get_session()
    step(session, get_campaign(session, me.merchant_id, campaign_id))
    return done(words, "console.campaigns_page", campaign_id=campaign_id)

