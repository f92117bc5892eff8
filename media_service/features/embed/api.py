"""Embedding: tokens minted by the merchant's backend, the manifest the widget reads, the iframe page,
interaction events and oEmbed.

Every response under ``/v1/embed/<token>`` answers CORS only for the exact origins named in the token;
the iframe page sends ``Content-Security-Policy: frame-ancestors`` with the same origins.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, Response, current_app, g, render_template, request, url_for

from media_service.db import get_session
from media_service.errors import BadRequest, MediaServiceError, NotFound
from media_service.features.embed.service import (
    EmbedGrant,
    allowed_origins,
    check_origin,
    count_events,
    describe_target,
    event_counts,
    mint_for_target,
    normalise_origin,
    read_token,
    require_target,
    set_allowed_origins,
)
from media_service.security.api_keys import current_merchant_id, require
from media_service.security.ratelimit import RateLimiter, caller_key
from media_service.web.requests import ascii_digits, json_body

bp = Blueprint("embed", __name__)

EVENT_TYPES = {"view", "interact", "drag", "gyro", "zoom", "spin", "play", "tap", "add_to_cart", "fullscreen", "error"}
MAX_EVENTS_PER_BATCH = 50


def _own_origin() -> str:
    base = current_app.config["PUBLIC_URL"] or request.host_url
    return normalise_origin(base.rstrip("/")) if base else ""


def grant_for_request(token: str) -> tuple[EmbedGrant, str | None]:
    """The token's grant and the origin to echo in CORS; 401/403 for a bad token or a foreign origin,
    429 for a viewer over its rate (``SHOPPER_RATE_*``)."""
    grant = read_token(current_app.config["SECRET_KEY"], token)
    origin = check_origin(grant, request.headers.get("Origin"), _own_origin())
    g.embed_origin = origin  # errors from here on are readable by the page too (see _errors_readable)
    if request.method != "OPTIONS":
        current_app.extensions["shopper_limiter"].take(caller_key(token, request.remote_addr))
    return grant, origin


@bp.after_app_request
def _errors_readable(response: Response) -> Response:
    """A request with a valid embed token gets its CORS headers on every answer, errors included."""
    origin = g.get("embed_origin")
    if origin and "Access-Control-Allow-Origin" not in response.headers:
        embed_cors(response, origin)
    return response


def embed_cors(response: Response, origin: str | None, methods: str = "GET, POST, OPTIONS") -> Response:
    """Exact-origin CORS for requests made with an embed token (nothing for same-origin calls)."""
    response.headers["Vary"] = "Origin"
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = methods
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


@bp.put("/v1/embed-settings")
@require("assets:write")
def put_embed_settings() -> Any:
    """The exact origins (https://shop.example) where this merchant's media may be embedded."""
    body = json_body(required=["allowed_origins"])
    return {"allowed_origins": set_allowed_origins(get_session(), current_merchant_id(), body["allowed_origins"])}


@bp.get("/v1/embed-settings")
@require("assets:read")
def get_embed_settings() -> Any:
    return {"allowed_origins": allowed_origins(get_session(), current_merchant_id())}


@bp.post("/v1/embed-tokens")
@require("assets:read")
def create_embed_token() -> Any:
    """Mint a short-lived token for one item and the origins that may show it."""
    body = json_body(required=["target_id", "origins"])
    target_id = body["target_id"]
    token, grant = mint_for_target(get_session(), current_app.config["SECRET_KEY"], current_merchant_id(),
                                   target_id, body["origins"], body.get("ttl_seconds", 3600))
    return embed_links(token, grant), 201


def embed_links(token: str, grant: EmbedGrant) -> dict[str, Any]:
    """What a page needs to show an item: the manifest, iframe, script and ready-to-paste HTML (and oEmbed)."""
    manifest_url = url_for("embed.manifest", token=token, _external=True)
    iframe_url = url_for("embed.iframe_page", target_id=grant.target_id, token=token, _external=True)
    script_url = url_for("static", filename="media-viewer.js", _external=True)
    return {
        "token": token, "expires_at": grant.expires_at, "origins": list(grant.origins),
        "manifest_url": manifest_url, "iframe_url": iframe_url, "script_url": script_url,
        "html": f'<script type="module" src="{script_url}"></script>\n'
                f'<media-viewer src="{manifest_url}"></media-viewer>',
        "oembed_url": url_for("embed.oembed", url=iframe_url, _external=True),
    }


@bp.route("/v1/embed/<token>", methods=["GET", "OPTIONS"], endpoint="manifest")
def manifest(token: str) -> Response:
    """What the widget renders: the mode (image, panorama, spin, video) and its URLs."""
    grant, origin = grant_for_request(token)
    if request.method == "OPTIONS":
        return embed_cors(Response(status=204), origin)
    described = describe_target(get_session(), grant.kind, grant.merchant_id, grant.target_id)
    body = {"version": 1, "target": {"kind": grant.kind, "id": grant.target_id}, "expires_at": grant.expires_at,
            "events_url": url_for("embed.events", token=token, _external=True), **described}
    if described.get("mode") == "video" and "video_index.tap" in current_app.view_functions:
        # shoppers tap products in the video (one-tap extraction), with this token as their credential
        body["taps_url"] = url_for("video_index.tap", video_id=grant.target_id, embed_token=token, _external=True)
        body["cart_url"] = url_for("video_index.add_to_cart", video_id=grant.target_id, embed_token=token,
                                   _external=True)
    response = current_app.json.response(body)
    response.headers["Cache-Control"] = "private, max-age=60"
    return embed_cors(response, origin)


@bp.route("/v1/embed/<token>/events", methods=["POST", "OPTIONS"], endpoint="events")
def events(token: str) -> Response:
    """A batch of interaction events from the widget (views, spins, taps, adds to cart)."""
    grant, origin = grant_for_request(token)
    if request.method == "OPTIONS":
        return embed_cors(Response(status=204), origin)
    body = json_body(required=["events"])
    batch = body["events"]
    if not isinstance(batch, list) or not 1 <= len(batch) <= MAX_EVENTS_PER_BATCH:
        raise BadRequest(f"events must be a list of 1-{MAX_EVENTS_PER_BATCH} events", code="invalid_events")
    types: Counter[str] = Counter()
    for event in batch:
        if not isinstance(event, dict) or event.get("type") not in EVENT_TYPES:
            raise BadRequest(f"each event needs a type among {', '.join(sorted(EVENT_TYPES))}", code="invalid_events")
        data = event.get("data", {})
        if not isinstance(data, dict) or len(str(data)) > 2000:
            raise BadRequest("event data must be a small JSON object", code="invalid_events")
        types[event["type"]] += 1
    viewer_events, token_events = _event_limiters()
    viewer_events.take(caller_key(token, request.remote_addr), len(batch), what="events from this viewer")
    token_events.take(caller_key(token, None), len(batch), what="events for this embed")
    session = get_session()
    count_events(session, grant, types)
    session.commit()
    response = current_app.json.response({"accepted": len(batch)})
    response.status_code = 202
    return embed_cors(response, origin)


def _event_limiters() -> tuple[RateLimiter, RateLimiter]:
    """Event budgets (counted in events, not requests): one per viewer, one per token for all its viewers."""
    limiters = current_app.extensions.get("embed_event_limiters")
    if limiters is None:
        config = current_app.config
        limiters = current_app.extensions.setdefault("embed_event_limiters", (
            RateLimiter(config["EMBED_EVENTS_PER_MINUTE"], max(config["EMBED_EVENTS_BURST"], MAX_EVENTS_PER_BATCH)),
            RateLimiter(config["EMBED_TOKEN_EVENTS_PER_MINUTE"],
                        max(config["EMBED_TOKEN_EVENTS_BURST"], MAX_EVENTS_PER_BATCH))))
    return limiters


@bp.get("/v1/embed-stats/<target_id>")
@require("assets:read")
def embed_stats(target_id: str) -> Any:
    """Interaction counts of one embedded item, by event type."""
    counts = event_counts(get_session(), current_merchant_id(), target_id)
    return {"target_id": target_id, "counts": dict(counts), "total": sum(counts.values())}


@bp.get("/embed/<target_id>")
def iframe_page(target_id: str) -> Response:
    """The widget in a page of its own, for hosts that prefer an iframe."""
    token = request.args.get("token", "")
    try:
        grant = read_token(current_app.config["SECRET_KEY"], token)
        require_target(grant, target_id)
    except MediaServiceError as exc:
        policy = "frame-ancestors *; default-src 'none'; style-src 'unsafe-inline'"  # a readable refusal anywhere
        return Response(render_template("embed_error.html", message=exc.detail), status=exc.status,
                        headers={"Content-Security-Policy": policy})
    html = render_template("embed.html", manifest_url=url_for("embed.manifest", token=token),
                           origins=" ".join(grant.origins))
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        f"frame-ancestors {' '.join(grant.origins)}; default-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'")
    response.headers["Referrer-Policy"] = "strict-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _size_arg(name: str, default: int) -> int:
    value = request.args.get(name) or str(default)
    if not ascii_digits(value, 6) or not 1 <= int(value) <= 100_000:
        raise BadRequest(f"{name} must be a whole number of pixels", code="invalid_size")
    return min(int(value), 1920)


@bp.get("/oembed")
def oembed() -> Any:
    """oEmbed 1.0 for links to ``/embed/<id>?token=...``, so a pasted link becomes an embed in a CMS."""
    url = request.args.get("url", "")
    if request.args.get("format", "json") != "json":
        raise MediaServiceError("only format=json is served", code="oembed_format", status=501)
    try:
        parts = urlsplit(url)
        origin = normalise_origin(f"{parts.scheme}://{parts.netloc}")
    except (ValueError, BadRequest):
        raise NotFound("this URL is not an embed of this service", code="not_an_embed") from None
    if origin != _own_origin() or not parts.path.startswith("/embed/"):
        raise NotFound("this URL is not an embed of this service", code="not_an_embed")
    target_id = parts.path.removeprefix("/embed/")
    token = parse_qs(parts.query).get("token", [""])[0]
    grant = read_token(current_app.config["SECRET_KEY"], token)
    require_target(grant, target_id)
    width, height = _size_arg("maxwidth", 640), _size_arg("maxheight", 480)
    src = url_for("embed.iframe_page", target_id=target_id, token=token, _external=True)
    return {"version": "1.0", "type": "rich", "provider_name": "media-service", "width": width, "height": height,
            "html": f'<iframe src="{src}" width="{width}" height="{height}" allow="fullscreen; gyroscope; '
                    f'accelerometer" loading="lazy" style="border:0"></iframe>'}
