"""Console pages for what is made from media: panoramas and spins (with diagnostics and hotspots), the
product catalog and products found in videos (tracks on a timeline, SKU review), and embed snippets.

Every action calls the owning feature's service (panoramas, spins, products, video_index, embed).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from flask import current_app, request, url_for
from sqlalchemy import select

from media_service.db import get_session
from media_service.errors import BadRequest, MediaServiceError
from media_service.features.assets.service import get_asset
from media_service.features.console.api import bp, current, done, own_origin, render_page
from media_service.features.embed.api import embed_links
from media_service.features.embed.service import (
    allowed_origins,
    describe_target,
    kind_of,
    mint_for_target,
    mint_token,
    set_allowed_origins,
)
from media_service.features.panoramas.service import (
    add_hotspot,
    create_panorama,
    get_panorama_row,
    panorama_to_dict,
    remove_hotspot,
)
from media_service.features.products.service import check_sku
from media_service.features.spins.service import create_spin, get_spin_row, spin_to_dict
from media_service.features.video_index import service as video_index
from media_service.features.video_index.cutouts import cutout_url
from media_service.jobs.resources import public_state
from media_service.models import Asset, Job, Panorama, Product, Spin, Video, VideoIndex
from media_service.web.files import signed_url

PREVIEW_TTL_SECONDS = 3600


def _jobs(job_ids: list[str | None]) -> dict[str, Job]:
    ids = [job_id for job_id in job_ids if job_id]
    return {job.id: job for job in get_session().scalars(select(Job).where(Job.id.in_(ids)))} if ids else {}


def preview_manifest(target_id: str) -> str | None:
    """A manifest URL for the console's own live preview of an item (None while it cannot be embedded).

    The token names the service's own origin only; it is not subject to the merchant's allowed origins,
    which list the shop's sites.
    """
    me = current()
    session = get_session()
    kind = kind_of(target_id)
    try:
        describe_target(session, kind, me.merchant_id, target_id)
    except MediaServiceError:  # not ready or not published: no preview yet
        return None
    token, _grant = mint_token(current_app.config["SECRET_KEY"], merchant_id=me.merchant_id, kind=kind,
                               target_id=target_id, origins=[own_origin()], ttl_seconds=PREVIEW_TTL_SECONDS)
    return url_for("embed.manifest", token=token)


# ------------------------------------------------------------------------------------ panoramas and spins


@bp.get("/studio", endpoint="studio")
def studio() -> Any:
    """Panoramas and spins, newest first, and a form to make one from selected photos."""
    me = current()
    session = get_session()
    panoramas = list(session.scalars(select(Panorama).where(Panorama.merchant_id == me.merchant_id)
                                     .order_by(Panorama.created_at.desc()).limit(50)))
    spins = list(session.scalars(select(Spin).where(Spin.merchant_id == me.merchant_id)
                                 .order_by(Spin.created_at.desc()).limit(50)))
    jobs = _jobs([row.job_id for row in [*panoramas, *spins]])
    photos = list(session.scalars(select(Asset).where(Asset.merchant_id == me.merchant_id, Asset.kind == "image")
                                  .order_by(Asset.created_at.desc()).limit(60)))
    return render_page("console/studio.html",
                       panoramas=[(p, public_state(p.state, jobs.get(p.job_id))) for p in panoramas],
                       spins=[(s, public_state(s.state, jobs.get(s.job_id))) for s in spins],
                       photos=[(a, signed_url(a.thumbnail_key) if a.thumbnail_key else None) for a in photos],
                       nonce=secrets.token_urlsafe(12))


@bp.post("/studio", endpoint="studio_create")
def studio_create() -> Any:
    """Make a panorama or a spin from the photos ticked on the studio page (the form's nonce makes a double
    submit return the first)."""
    me = current()
    me.require("edit")
    what = request.form.get("make")
    ids = request.form.getlist("asset_id")
    nonce = request.form.get("nonce", "")[:40] or None
    session = get_session()
    if what == "panorama":
        panorama, _job, _created = create_panorama(session, current_app.config, me.merchant_id,
                                                   {"asset_ids": ids}, f"console:{nonce}" if nonce else None)
        return done(f"Stitching a panorama from {len(ids)} photos.", "console.panorama_page", panorama_id=panorama.id)
    if what == "spin":
        spin, _job, _created = create_spin(session, current_app.config, me.merchant_id, {"asset_ids": ids},
                                           f"console:{nonce}" if nonce else None)
        return done(f"Building a spin from {len(ids)} photos.", "console.spin_page", spin_id=spin.id)
    raise BadRequest("choose whether to make a panorama or a spin", code="invalid_choice")


@bp.get("/panoramas/<panorama_id>", endpoint="panorama_page")
def panorama_page(panorama_id: str) -> Any:
    """The panorama in the live widget, its per-photo diagnostics, and its hotspots (click to place one)."""
    me = current()
    session = get_session()
    panorama = get_panorama_row(session, me.merchant_id, panorama_id)
    body = panorama_to_dict(panorama, session.get(Job, panorama.job_id))
    names = {a.id: a.filename for a in session.scalars(select(Asset).where(Asset.id.in_(panorama.asset_ids)))}
    return render_page("console/panorama.html", panorama=panorama, body=body, names=names,
                       manifest=preview_manifest(panorama.id) if body["state"] == "ready" else None)


@bp.post("/panoramas/<panorama_id>/hotspots", endpoint="panorama_hotspot")
def panorama_hotspot(panorama_id: str) -> Any:
    """Add a hotspot (yaw, pitch, label) or remove one (``remove`` = its id)."""
    me = current()
    me.require("edit")
    session = get_session()
    panorama = get_panorama_row(session, me.merchant_id, panorama_id)
    if request.form.get("remove"):
        remove_hotspot(session, panorama, request.form["remove"])
        return done("Hotspot removed.", "console.panorama_page", panorama_id=panorama_id)
    spot = add_hotspot(session, panorama, request.form.get("yaw"), request.form.get("pitch"),
                       request.form.get("label"))
    return done(f"Hotspot “{spot['label']}” placed.", "console.panorama_page", panorama_id=panorama_id)


@bp.get("/spins/<spin_id>", endpoint="spin_page")
def spin_page(spin_id: str) -> Any:
    me = current()
    session = get_session()
    spin = get_spin_row(session, me.merchant_id, spin_id)
    body = spin_to_dict(spin, session.get(Job, spin.job_id))
    return render_page("console/spin.html", spin=spin, body=body,
                       manifest=preview_manifest(spin.id) if body["state"] == "ready" else None)


# ------------------------------------------------------------------------------------ products and videos


@bp.get("/catalog", endpoint="catalog")
def catalog() -> Any:
    """The catalog (SKUs with their photos) and the videos, with how far finding products in them got."""
    me = current()
    session = get_session()
    products = list(session.scalars(select(Product).where(Product.merchant_id == me.merchant_id)
                                    .order_by(Product.sku).limit(200)))
    photo_ids = [image["asset_id"] for p in products for image in p.images or []]
    photos = {a.id: a for a in session.scalars(select(Asset).where(Asset.id.in_(photo_ids)))} if photo_ids else {}
    thumbs = {asset_id: signed_url(a.thumbnail_key or a.storage_key) for asset_id, a in photos.items()}
    videos = list(session.scalars(select(Asset).where(Asset.merchant_id == me.merchant_id, Asset.kind == "video")
                                  .order_by(Asset.created_at.desc()).limit(100)))
    indexes: dict[str, VideoIndex] = {}
    for index in session.scalars(select(VideoIndex).where(VideoIndex.merchant_id == me.merchant_id,
                                                          VideoIndex.asset_id.in_([v.id for v in videos]))
                                 .order_by(VideoIndex.created_at)):
        indexes[index.asset_id] = index  # the newest wins
    jobs = _jobs([i.job_id for i in indexes.values()])
    return render_page("console/catalog.html", products=products, thumbs=thumbs,
                       videos=[(v, signed_url(v.thumbnail_key) if v.thumbnail_key else None, indexes.get(v.id),
                                public_state(indexes[v.id].state, jobs.get(indexes[v.id].job_id or ""))
                                if v.id in indexes else None) for v in videos])


def timeline_svg(duration: float, tracks: list[dict[str, Any]]) -> dict[str, Any]:
    """Geometry of the tracks timeline (drawn by the template as SVG): one row per track, seconds on x."""
    width, row, left = 800, 26, 110
    span = max(duration, max((t["end"] for t in tracks), default=0.0), 0.1)
    scale = (width - left - 30) / span
    bars = [{"x": left + t["start"] * scale, "w": max(3.0, (t["end"] - t["start"]) * scale), "y": 24 + i * row,
             "label": f"#{t['number']} {t['sku'] or '?'}", "state": t["state"]} for i, t in enumerate(tracks)]
    ticks = [{"x": left + s * scale, "label": f"{s:g} s"} for s in _ticks(span)]
    return {"width": width, "height": 34 + max(1, len(tracks)) * row, "left": left, "bars": bars, "ticks": ticks}


def _ticks(span: float) -> list[float]:
    step = next(s for s in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1e9) if span / s <= 10)
    return [round(i * step, 2) for i in range(int(span // step) + 1)]


@bp.get("/videos/<asset_id>", endpoint="video_page")
def video_page(asset_id: str) -> Any:
    """An indexed video: its tracks on a timeline with cut-out thumbnails and the contact sheet; SKU review."""
    me = current()
    session = get_session()
    asset = get_asset(session, me.merchant_id, asset_id)
    index = video_index.latest_index(session, me.merchant_id, asset.id, ready=False)
    ready = video_index.latest_index(session, me.merchant_id, asset.id, ready=True)
    tracks = []
    if ready is not None:
        for track in video_index.list_tracks(session, ready):
            data = video_index.track_to_dict(track, with_samples=False)
            best = max(track.samples, key=lambda s: s.get("score", 0), default=None)
            data["thumb"] = cutout_url(current_app.config, ready.id, track.number, best["frame"]) if best else None
            tracks.append(data)
    skus = list(session.scalars(select(Product.sku).where(Product.merchant_id == me.merchant_id)
                                .order_by(Product.sku).limit(500)))
    videos = list(session.scalars(select(Video).where(Video.asset_id == asset.id)))
    return render_page("console/video.html", asset=asset, index=index, ready=ready, tracks=tracks, skus=skus,
                       videos=videos, timeline=timeline_svg(asset.duration or 0.0, tracks),
                       index_body=video_index.index_to_dict(session, index, asset.id) if index else None,
                       sheet=signed_url(ready.contact_sheet_key) if ready and ready.contact_sheet_key else None)


@bp.post("/videos/<asset_id>/index", endpoint="video_index_start")
def video_index_start(asset_id: str) -> Any:
    me = current()
    me.require("edit")
    video_index.start_index(get_session(), current_app.config, me.merchant_id, asset_id, {})
    return done("Finding products in this video; this page shows the tracks when it is done.",
                "console.video_page", asset_id=asset_id)


@bp.post("/videos/<asset_id>/tracks/<track_id>", endpoint="video_track")
def video_track(asset_id: str, track_id: str) -> Any:
    """Confirm (``action=confirm``), correct (``action=correct`` with ``sku``) or hide (``action=hide``)."""
    me = current()
    me.require("edit")
    session = get_session()
    asset = get_asset(session, me.merchant_id, asset_id)
    track = video_index.get_track(session, me.merchant_id, asset.id, track_id)
    action = request.form.get("action")
    if action == "confirm":
        body: dict[str, Any] = {"sku": track.sku}
    elif action == "correct":
        body = {"sku": check_sku(request.form.get("sku", "").strip())}
    elif action == "hide":
        body = {"state": "rejected"}
    elif action == "restore":
        body = {"state": "detected"}
    else:
        raise BadRequest("choose confirm, correct, hide or restore", code="invalid_review")
    track = video_index.review_track(session, track, body)
    words = {"confirm": "confirmed", "correct": f"set to {track.confirmed_sku}", "hide": "hidden from shoppers",
             "restore": "shown again"}[action]
    return done(f"Track #{track.number} {words}.", "console.video_page", asset_id=asset_id)


# ------------------------------------------------------------------------------------------ embeds


@bp.get("/embed", endpoint="embeds")
def embeds() -> Any:
    """The embeddable items (ready panoramas and spins, published videos, photos) and the allowed origins."""
    me = current()
    session = get_session()
    panoramas = list(session.scalars(select(Panorama).where(Panorama.merchant_id == me.merchant_id,
                                                            Panorama.state == "ready")
                                     .order_by(Panorama.created_at.desc()).limit(50)))
    spins = list(session.scalars(select(Spin).where(Spin.merchant_id == me.merchant_id, Spin.state == "ready")
                                 .order_by(Spin.created_at.desc()).limit(50)))
    videos = list(session.scalars(select(Video).where(Video.merchant_id == me.merchant_id, Video.state == "ready",
                                                      Video.moderation_status == "approved")
                                  .order_by(Video.created_at.desc()).limit(50)))
    photos = list(session.scalars(select(Asset).where(Asset.merchant_id == me.merchant_id, Asset.kind == "image")
                                  .order_by(Asset.created_at.desc()).limit(24)))
    return render_page("console/embeds.html", panoramas=panoramas, spins=spins, videos=videos, photos=photos,
                       origins=allowed_origins(session, me.merchant_id))


@bp.post("/embed/origins", endpoint="embed_origins")
def embed_origins() -> Any:
    me = current()
    me.require("edit")
    lines = [line.strip() for line in request.form.get("origins", "").splitlines() if line.strip()]
    saved = set_allowed_origins(get_session(), me.merchant_id, lines)
    return done(f"{len(saved)} allowed origin{'s' if len(saved) != 1 else ''} saved.", "console.embeds")


@bp.get("/embed/<target_id>", endpoint="embed_item")
def embed_item(target_id: str) -> Any:
    """The snippets for one item (custom element, iframe, oEmbed URL) for a chosen site, with a live preview."""
    me = current()
    session = get_session()
    origins = allowed_origins(session, me.merchant_id)
    site = request.args.get("origin") or (origins[0] if origins else "")
    links = None
    if site:
        token, grant = mint_for_target(session, current_app.config["SECRET_KEY"], me.merchant_id, target_id, [site],
                                       int(request.args.get("ttl", "86400")) if request.args.get("ttl", "86400")
                                       .isdigit() else 86400)
        links = embed_links(token, grant)
    else:
        describe_target(session, kind_of(target_id), me.merchant_id, target_id)
    expires = datetime.fromtimestamp(links["expires_at"], UTC) if links else None
    return render_page("console/embed_item.html", target_id=target_id, kind=kind_of(target_id), origins=origins,
                       site=site, links=links, expires=expires, manifest=preview_manifest(target_id))
