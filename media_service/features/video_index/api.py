"""Product extraction on videos: ``/v1/videos/<video_id>/index``, ``/tracks``, ``/taps`` and ``/cart``.

``<video_id>`` is a video asset id (``ast_...``) or a processed video id (``vid_...``, any profile); both
resolve to the uploaded asset, which is what gets indexed. Taps and cart confirmations come from the
shopper's widget: besides a merchant API key they accept the page's embed token for this video as
``?embed_token=met1...`` (CORS for the token's exact origins, preflight included).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for
from sqlalchemy import select

from media_service.db import get_session
from media_service.errors import BadRequest, Forbidden, NotFound
from media_service.features.embed.api import embed_cors, grant_for_request
from media_service.features.embed.service import require_target
from media_service.features.video_index import cart, cutouts, taps
from media_service.features.video_index import service as product_index
from media_service.features.video_index.cart import cart_webhook, delete_cart_webhook, put_cart_webhook
from media_service.models import WebhookDelivery
from media_service.security.api_keys import authenticate, current_merchant_id, require
from media_service.web.files import untrusted
from media_service.web.requests import idempotency_key, json_body

bp = Blueprint("video_index", __name__)


@bp.post("/v1/videos/<video_id>/index")
@require("jobs:write")
def start_index(video_id: str) -> Any:
    """Queue detection and tracking of the catalog's products in the video (a ``videos.index`` job)."""
    body = json_body() if request.content_length else {}
    session = get_session()
    index, _job, created = product_index.start_index(session, current_app.config, current_merchant_id(), video_id,
                                                     body, idempotency_key())
    response = current_app.json.response(product_index.index_to_dict(session, index, video_id))
    response.status_code = 202 if created else 200
    response.headers["Location"] = url_for("video_index.get_index", video_id=video_id)
    return response


@bp.get("/v1/videos/<video_id>/index")
@require("jobs:read")
def get_index(video_id: str) -> Any:
    """The newest index of the video: its state and progress, then its tracks count and contact sheet."""
    session = get_session()
    merchant_id = current_merchant_id()
    asset, _ = product_index.resolve_video(session, merchant_id, video_id)
    index = product_index.latest_index(session, merchant_id, asset.id, ready=False)
    if index is None:
        raise NotFound("this video was never indexed; POST /v1/videos/<id>/index starts it", code="not_indexed")
    return product_index.index_to_dict(session, index, video_id)


@bp.get("/v1/videos/<video_id>/tracks")
@require("assets:read")
def list_tracks(video_id: str) -> Any:
    """The product tracks (hotspots) of the newest ready index; ``?samples=1`` adds their boxes over time."""
    session = get_session()
    merchant_id = current_merchant_id()
    asset, _ = product_index.resolve_video(session, merchant_id, video_id)
    index = product_index.latest_index(session, merchant_id, asset.id, ready=True)
    with_samples = request.args.get("samples") in {"1", "true"}
    if index is None:
        return {"video_id": video_id, "index_id": None, "state": "not_indexed", "items": []}
    return {"video_id": video_id, "index_id": index.id, "state": "ready",
            "items": [product_index.track_to_dict(t, with_samples=with_samples)
                      for t in product_index.list_tracks(session, index)]}


@bp.get("/v1/videos/<video_id>/tracks/<track_id>")
@require("assets:read")
def get_track(video_id: str, track_id: str) -> Any:
    session = get_session()
    merchant_id = current_merchant_id()
    asset, _ = product_index.resolve_video(session, merchant_id, video_id)
    return product_index.track_to_dict(product_index.get_track(session, merchant_id, asset.id, track_id),
                                       with_samples=True)


@bp.patch("/v1/videos/<video_id>/tracks/<track_id>")
@require("assets:write")
def review_track(video_id: str, track_id: str) -> Any:
    """Confirm or correct a track's SKU (``{"sku": ...}``) or hide it from shoppers (``{"state": "rejected"}``)."""
    body = json_body()
    session = get_session()
    merchant_id = current_merchant_id()
    asset, _ = product_index.resolve_video(session, merchant_id, video_id)
    track = product_index.get_track(session, merchant_id, asset.id, track_id)
    return product_index.track_to_dict(product_index.review_track(session, track, body), with_samples=False)


# ------------------------------------------------------------------------------ shopper-facing endpoints


def _caller(video_id: str) -> tuple[str, str | None]:
    """The merchant a shopper's request acts for, and the origin to allow in CORS (embed tokens only)."""
    token = request.args.get("embed_token")
    if token:
        grant, origin = grant_for_request(token)
        require_target(grant, video_id)
        return grant.merchant_id, origin
    principal = authenticate()
    if principal.restriction is not None:
        principal.restriction()
    if "assets:read" not in principal.scopes:
        raise Forbidden("this API key lacks the 'assets:read' scope", code="missing_scope")
    return principal.merchant_id, None


def _cors(response: Response, origin: str | None) -> Response:
    return embed_cors(response, origin, methods="POST, OPTIONS")


@bp.route("/v1/videos/<video_id>/taps", methods=["POST", "OPTIONS"])
def tap(video_id: str) -> Response:
    """A shopper tapped ``{t, x, y}`` or circled ``{t, polygon}`` (normalised): the product there, cut out."""
    merchant_id, origin = _caller(video_id)
    if request.method == "OPTIONS":
        return _cors(Response(status=204), origin)
    tap_request = taps.parse_tap(json_body(), current_app.config)
    session = get_session()
    asset, _ = product_index.resolve_video(session, merchant_id, video_id)
    service = taps.TapService(session, current_app.extensions["storage"], current_app.config, merchant_id)
    response = current_app.json.response(service.answer(asset, video_id, tap_request))
    response.headers["Cache-Control"] = "no-store"
    return _cors(response, origin)


@bp.get("/media/cutouts/<index_id>/<int:number>/<int:frame>.png", endpoint="cutout")
def cutout(index_id: str, number: int, frame: int) -> Response:
    """A track's cut-out (PNG with transparency) behind a signed, expiring link from a tap answer."""
    expires = cutouts.check_cutout_signature(current_app.config, index_id, number, frame,
                                                   request.args.get("expires"), request.args.get("signature", ""))
    data = cutouts.render_track_cutout(get_session(), current_app.extensions["storage"], index_id, number,
                                             frame)
    response = untrusted(Response(data, mimetype="image/png"), cors=False)
    response.headers["Cache-Control"] = f"private, max-age={max(0, expires - int(time.time()))}, immutable"
    return response


@bp.route("/v1/videos/<video_id>/cart", methods=["POST", "OPTIONS"])
def add_to_cart(video_id: str) -> Response:
    """The shopper confirmed a product of a tap answer: the merchant's signed cart webhook is called."""
    merchant_id, origin = _caller(video_id)
    if request.method == "OPTIONS":
        return _cors(Response(status=204), origin)
    body = json_body(required=["cart_token", "sku"])
    session = get_session()
    asset, _ = product_index.resolve_video(session, merchant_id, video_id)
    result, status = cart.confirm_cart(session, current_app.config, merchant_id, asset, video_id, body)
    response = current_app.json.response(result)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return _cors(response, origin)


# ----------------------------------------------------------------------------------------- cart webhook


def _hook_dict(hook: Any, *, secret: bool) -> dict[str, Any]:
    deliveries = get_session().scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
                                       .order_by(WebhookDelivery.created_at.desc()).limit(20)).all()
    data = {"id": hook.id, "url": hook.url, "event": "cart.add", "created_at": hook.created_at.isoformat(),
            "recent_deliveries": [{"id": d.id, "state": d.state, "attempts": d.attempts, "last_status": d.last_status,
                                   "created_at": d.created_at.isoformat()} for d in deliveries]}
    if secret:
        data["secret"] = hook.secret
    return data


@bp.put("/v1/settings/cart-webhook")
@require("webhooks:manage")
def put_cart_webhook_setting() -> Any:
    """Where "add to cart" is sent (signed like every webhook); the secret is shown when created or rotated."""
    body = json_body(required=["url"])
    rotate = body.get("rotate_secret", False)
    if not isinstance(rotate, bool) or set(body) - {"url", "rotate_secret"}:
        raise BadRequest("send {\"url\": \"https://...\", \"rotate_secret\": false}", code="invalid_cart_webhook")
    hook, show_secret = put_cart_webhook(get_session(), current_app.config, current_merchant_id(), body["url"],
                                         rotate=rotate)
    return _hook_dict(hook, secret=show_secret)


@bp.get("/v1/settings/cart-webhook")
@require("webhooks:manage")
def get_cart_webhook_setting() -> Any:
    hook = cart_webhook(get_session(), current_merchant_id())
    if hook is None:
        raise NotFound("this shop has no cart webhook; set one with PUT /v1/settings/cart-webhook",
                       code="cart_webhook_not_found")
    return _hook_dict(hook, secret=False)


@bp.delete("/v1/settings/cart-webhook")
@require("webhooks:manage")
def delete_cart_webhook_setting() -> Any:
    delete_cart_webhook(get_session(), current_merchant_id())
    return "", 204
