"""``/v1/campaigns``: fun-logo prize campaigns for merchants, the shopper's collecting endpoints, and the
public record of each campaign and its draw.

Merchant endpoints take an API key; the widget's endpoints live under the campaign's embed token
(``/v1/embed/<token>/campaign/...``, CORS for the token's origins); ``/v1/public/campaigns/<id>`` and
``/draw`` need nothing: anyone can read the rules, the commitments and, after the draw, recompute winners.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request, url_for
from sqlalchemy import select

from media_service.db import get_session
from media_service.errors import NotFound
from media_service.features.campaigns import play
from media_service.features.campaigns.service import (
    alternative_entry,
    campaign_to_dict,
    close,
    create_campaign,
    delete_campaign,
    draw_record,
    get_campaign,
    public_record,
    publish,
    run_draw,
    stats,
)
from media_service.features.embed.api import embed_cors, grant_for_request
from media_service.features.embed.service import require_target
from media_service.models import Campaign, Job
from media_service.security.api_keys import current_merchant_id, require
from media_service.security.ratelimit import RateLimiter, caller_key
from media_service.web.requests import created, idempotency_key, json_body, page

bp = Blueprint("campaigns", __name__)


def _view(campaign: Campaign) -> dict[str, Any]:
    session = get_session()
    return campaign_to_dict(session, campaign, session.get(Job, campaign.job_id) if campaign.job_id else None)


@bp.post("/v1/campaigns")
@require("assets:write")
def create_campaign_view() -> Any:
    """Create a campaign and queue its render (fragments, plan, previews; the burned-in video in burned mode)."""
    campaign, _job, was_created = create_campaign(get_session(), current_app.config, current_merchant_id(),
                                                  json_body(required=("video_id", "logo_asset_id", "title", "prizes",
                                                                      "rules", "odds", "alternative_entry")),
                                                  idempotency_key())
    return created(_view(campaign), url_for("campaigns.get_campaign", campaign_id=campaign.id),
                   202 if was_created else 200)


@bp.get("/v1/campaigns")
@require("assets:read")
def list_campaigns() -> Any:
    session = get_session()
    rows, next_cursor = page(session, select(Campaign).where(Campaign.merchant_id == current_merchant_id()),
                             Campaign)
    return {"items": [_view(r) for r in rows], "next_cursor": next_cursor}


@bp.get("/v1/campaigns/<campaign_id>", endpoint="get_campaign")
@require("assets:read")
def get_campaign_view(campaign_id: str) -> Any:
    """The campaign, its render state, preview links (sheet, video), plan and draw commitments."""
    return _view(get_campaign(get_session(), current_merchant_id(), campaign_id))


@bp.post("/v1/campaigns/<campaign_id>/publish")
@require("assets:write")
def publish_view(campaign_id: str) -> Any:
    """Open collecting; the SHA-256 of the draw's secret seed is published from now on."""
    session = get_session()
    return _view(publish(session, get_campaign(session, current_merchant_id(), campaign_id)))


@bp.post("/v1/campaigns/<campaign_id>/close")
@require("assets:write")
def close_view(campaign_id: str) -> Any:
    """Stop collecting; the entries are frozen and their Merkle root published."""
    session = get_session()
    return _view(close(session, get_campaign(session, current_merchant_id(), campaign_id)))


@bp.post("/v1/campaigns/<campaign_id>/draw")
@require("assets:write")
def draw_view(campaign_id: str) -> Any:
    """Reveal the seed and pick the winners; the public draw record lets anyone check them."""
    session = get_session()
    return _view(run_draw(session, get_campaign(session, current_merchant_id(), campaign_id)))


@bp.post("/v1/campaigns/<campaign_id>/entries")
@require("assets:write")
def alternative_entry_view(campaign_id: str) -> Any:
    """Record a free alternative-route entry for ``{"shopper_id"}`` (no purchase, no collecting needed)."""
    session = get_session()
    body, status = alternative_entry(session, current_app.config,
                                     get_campaign(session, current_merchant_id(), campaign_id),
                                     json_body(required=("shopper_id",)))
    response = current_app.json.response(body)
    response.status_code = status
    return response


@bp.get("/v1/campaigns/<campaign_id>/stats")
@require("assets:read")
def stats_view(campaign_id: str) -> Any:
    """Views, fragments seen, collects, claims (and rejected ones), entries, add-to-cart and conversion."""
    rejected_claims().flush()  # this process's rejected claims are counted too
    session = get_session()
    return stats(session, get_campaign(session, current_merchant_id(), campaign_id))


@bp.delete("/v1/campaigns/<campaign_id>")
@require("assets:write")
def delete_view(campaign_id: str) -> Any:
    session = get_session()
    delete_campaign(session, current_app.extensions["storage"],
                    get_campaign(session, current_merchant_id(), campaign_id))
    return "", 204


# ---------------------------------------------------------------------------------------- public record


def _published(campaign_id: str) -> Campaign:
    campaign = get_session().get(Campaign, campaign_id)
    if campaign is None or campaign.state == "draft":
        raise NotFound(f"no published campaign {campaign_id!r}", code="campaign_not_found")
    return campaign


def _public(body: dict[str, Any]) -> Response:
    response = current_app.json.response(body)
    response.headers["Access-Control-Allow-Origin"] = "*"  # public, read-only, no credentials
    response.headers["Cache-Control"] = "public, max-age=30"
    return response


@bp.get("/v1/public/campaigns/<campaign_id>", endpoint="public_campaign")
def public_campaign(campaign_id: str) -> Response:
    """Rules, odds, prizes, dates, the free entry route and the draw's commitments of a published campaign."""
    return _public(public_record(get_session(), _published(campaign_id)))


@bp.get("/v1/public/campaigns/<campaign_id>/draw", endpoint="public_draw")
def public_draw(campaign_id: str) -> Response:
    """The draw record ``tools/verify_draw.py`` recomputes: commitment, Merkle root, entries, seed, winners."""
    return _public(draw_record(get_session(), _published(campaign_id)))


# ------------------------------------------------------------------------------ the widget's endpoints


def _viewer(token: str) -> tuple[Campaign, str | None]:
    grant, origin = grant_for_request(token)
    if request.method == "OPTIONS":
        return None, origin  # type: ignore[return-value]
    if grant.kind != "campaign":
        raise NotFound("this embed token is not for a campaign", code="embed_target_mismatch")
    campaign = get_session().get(Campaign, grant.target_id)
    if campaign is None or campaign.merchant_id != grant.merchant_id:
        raise NotFound("the campaign no longer exists", code="campaign_not_found")
    require_target(grant, campaign.id)
    return campaign, origin


def _answer(body: dict[str, Any], origin: str | None, status: int = 200) -> Response:
    response = current_app.json.response(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return embed_cors(response, origin, methods="GET, POST, OPTIONS")


@bp.route("/v1/embed/<token>/campaign/session", methods=["POST", "OPTIONS"], endpoint="play_session")
def play_session(token: str) -> Response:
    """Start a viewer session: ``{shopper_id}`` (from the shop's page) or ``{device_id}`` (anonymous)."""
    campaign, origin = _viewer(token)
    if request.method == "OPTIONS":
        return _answer({}, origin, 204)
    return _answer(play.start_session(get_session(), current_app.config, campaign, json_body()), origin, 201)


@bp.route("/v1/embed/<token>/campaign/schedule", methods=["GET", "OPTIONS"], endpoint="play_schedule")
def play_schedule(token: str) -> Response:
    """The next segment of the fragment schedule for this session (``?session=...&t=...``)."""
    campaign, origin = _viewer(token)
    if request.method == "OPTIONS":
        return _answer({}, origin, 204)
    try:
        t = float(request.args.get("t", "0"))
    except ValueError:
        t = -1.0
    return _answer(play.schedule(get_session(), current_app.config, campaign, request.args.get("session"), t), origin)


def _claim_limiter() -> RateLimiter:
    config = current_app.config
    return current_app.extensions.setdefault(
        "campaign_claim_limiter", RateLimiter(config["CAMPAIGN_CLAIM_RATE_PER_MINUTE"], config["CAMPAIGN_CLAIM_BURST"]))


@bp.route("/v1/embed/<token>/campaign/claims", methods=["POST", "OPTIONS"], endpoint="play_claim")
def play_claim(token: str) -> Response:
    """One claim ``{session, fragment, t, x, y, nonce}``: accepted with progress, or 422 with a stable code."""
    campaign, origin = _viewer(token)
    if request.method == "OPTIONS":
        return _answer({}, origin, 204)
    body = json_body()
    _claim_limiter().take(caller_key(str(body.get("session", "")), request.remote_addr))
    return _answer(play.claim(get_session(), current_app.config, campaign, body, rejected_claims()), origin)


def rejected_claims() -> play.RejectedClaims:
    """This process's buffer of rejected claims (see ``play.RejectedClaims``)."""
    return current_app.extensions.setdefault("campaign_rejected_claims",
                                             play.RejectedClaims(current_app.extensions["database"]))
