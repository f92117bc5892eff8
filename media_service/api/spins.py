"""``/v1/spins``: 360-degree product spins from a turntable photo set or a turntable video.

``POST /v1/spins {asset_ids | video_asset_id, frames: 24|36|72, options}`` answers 202 with the spin and
its job; ``GET /v1/spins/<id>`` shows the state and, once ready, the manifest with signed URLs of every
frame (each width, WebP and JPEG) and the sprite sheet.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from media_service.api.common import created, idempotency_key, json_body, page
from media_service.api.files import signed_url
from media_service.api.panoramas import asset_id_list, image_assets, public_state
from media_service.assets import get_asset
from media_service.auth import current_merchant_id, require
from media_service.db import begin_write, get_session
from media_service.deletion import delete_job_result
from media_service.embed import embed_provider
from media_service.errors import BadRequest, Conflict, InvalidMedia, NotFound
from media_service.jobs.queue import enqueue, job_to_dict
from media_service.models import Job, Spin, new_id
from media_service.panorama.build import spin_options
from media_service.panorama.tiles import with_urls

bp = Blueprint("spins", __name__, url_prefix="/v1/spins")

MIN_SPIN_PHOTOS = 4


def _signed(prefix: str) -> Any:
    return lambda path: signed_url(f"{prefix}/{path}")


def spin_to_dict(spin: Spin, job: Job | None) -> dict[str, Any]:
    state = public_state(spin.state, job)
    body: dict[str, Any] = {
        "id": spin.id, "state": state, "source": spin.source, "asset_ids": spin.asset_ids,
        "video_asset_id": spin.video_asset_id, "frames": spin.frames, "options": spin.options,
        "created_at": spin.created_at.isoformat(),
        "finished_at": spin.finished_at.isoformat() if spin.finished_at else None,
        "job": job_to_dict(job) if job else None,
        "links": {"self": url_for("spins.get_spin", spin_id=spin.id),
                  "job": url_for("jobs.get_job", job_id=spin.job_id)},
    }
    result = spin.result if state == "ready" else None
    if result:
        sign = _signed(result["prefix"])
        body.update({"frame_count": result["frame_count"], "manifest_url": sign("manifest.json"),
                     "manifest": with_urls(result["manifest"], sign)})
    elif job is not None and job.error:
        body["error"] = {k: v for k, v in job.error.items() if k != "traceback"}
    return body


def get_spin_row(session: Session, merchant_id: str, spin_id: str) -> Spin:
    row = session.scalar(select(Spin).where(Spin.id == spin_id, Spin.merchant_id == merchant_id))
    if row is None:
        raise NotFound(f"no spin {spin_id!r}", code="spin_not_found")
    return row


@bp.post("")
@require("assets:write")
def create_spin() -> Any:
    """Start a spin: ``{"asset_ids": [...]}`` (photo set) or ``{"video_asset_id": ..., "frames": 36}``."""
    body = json_body()
    config = current_app.config
    has_photos, has_video = "asset_ids" in body, "video_asset_id" in body
    if has_photos == has_video:
        raise BadRequest("give either asset_ids (a turntable photo set) or video_asset_id (a turntable video)",
                         code="invalid_source")
    frames = body.get("frames", None if has_photos else 36)
    raw_options = body.get("options") or {}
    if not isinstance(raw_options, dict):
        raise BadRequest("options must be a JSON object", code="invalid_options")
    try:
        spin_options(frames, raw_options, config)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_options") from exc
    session = get_session()
    merchant_id = current_merchant_id()
    spin_id = new_id("spn")
    params: dict[str, Any] = {"spin_id": spin_id, "frames": frames, "options": raw_options}
    row = Spin(id=spin_id, merchant_id=merchant_id, frames=frames, options=raw_options)
    if has_photos:
        asset_ids = asset_id_list(body["asset_ids"], field="asset_ids", minimum=MIN_SPIN_PHOTOS,
                                  maximum=config["SPIN_MAX_PHOTOS"], what="a spin")
        assets = image_assets(session, merchant_id, asset_ids)
        params.update(source="photos", photos=[{"asset_id": a.id, "key": a.storage_key, "name": a.filename}
                                               for a in assets])
        row.source, row.asset_ids = "photos", asset_ids
    else:
        if not isinstance(body["video_asset_id"], str):
            raise BadRequest("video_asset_id must be an asset id (ast_...)", code="invalid_asset_ids")
        video = get_asset(session, merchant_id, body["video_asset_id"])
        if video.kind != "video":
            raise InvalidMedia(f"asset {video.id} is an {video.kind}, not a video; give a turntable video, or list "
                               "photos in asset_ids", code="not_a_video", asset_id=video.id)
        longest = config["SPIN_MAX_VIDEO_SECONDS"]
        if video.duration is not None and video.duration > longest:
            raise InvalidMedia(f"the video is {video.duration:.0f} s long; a spin is made from at most {longest:g} s: "
                               "trim it to one or two turns of the turntable", code="video_too_long")
        params.update(source="video", video={"asset_id": video.id, "key": video.storage_key, "name": video.filename})
        row.source, row.video_asset_id, row.asset_ids = "video", video.id, []
    key = idempotency_key()
    begin_write(session)
    job, was_created = enqueue(session, "spins.build", params, merchant_id=merchant_id,
                               max_attempts=config["JOB_MAX_ATTEMPTS"], idempotency_key=f"spins:{key}" if key else None)
    if was_created:
        row.job_id = job.id
        session.add(row)
        session.commit()
        spin = row
    else:
        existing = session.scalar(select(Spin).where(Spin.job_id == job.id))
        if existing is None:
            raise Conflict("this Idempotency-Key was already used for another kind of request",
                           code="idempotency_key_reused")
        spin = existing
    return created(spin_to_dict(spin, job), url_for("spins.get_spin", spin_id=spin.id), 202 if was_created else 200)


@bp.get("")
@require("assets:read")
def list_spins() -> Any:
    session = get_session()
    rows, next_cursor = page(session, select(Spin).where(Spin.merchant_id == current_merchant_id()), Spin)
    jobs = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_([r.job_id for r in rows])))}
    return {"items": [spin_to_dict(r, jobs.get(r.job_id)) for r in rows], "next_cursor": next_cursor}


@bp.get("/<spin_id>", endpoint="get_spin")
@require("assets:read")
def get_spin_view(spin_id: str) -> Any:
    session = get_session()
    spin = get_spin_row(session, current_merchant_id(), spin_id)
    return spin_to_dict(spin, session.get(Job, spin.job_id))


@bp.delete("/<spin_id>")
@require("assets:write")
def delete_spin_view(spin_id: str) -> Any:
    """Delete a spin and its outputs; embeds of it stop working. The photos or video stay."""
    session = get_session()
    delete_job_result(session, current_app.extensions["storage"], get_spin_row(session, current_merchant_id(), spin_id))
    return "", 204


@embed_provider("spin")
def describe_spin_for_embed(session: Session, merchant_id: str, spin_id: str) -> dict[str, Any]:
    """A ready spin for the viewer widget: WebP frames at the width nearest 640 px, in turning order."""
    spin = get_spin_row(session, merchant_id, spin_id)
    if spin.state != "ready" or not spin.result:
        raise Conflict("this spin is not ready yet; embed it once its state is 'ready'", code="not_ready")
    manifest = spin.result["manifest"]
    sign = _signed(spin.result["prefix"])
    size = min(manifest["sizes"], key=lambda s: abs(s["width"] - 640))
    count = manifest["frame_count"]
    return {"mode": "spin", "title": "Product spin", "spin": {
        "frames": [sign(size["paths"]["webp"].format(index=i)) for i in range(count)],
        "width": size["width"], "height": size["height"], "pixels_per_frame": max(2, round(288 / count)),
        "sprite": sign(manifest["sprite"]["path"])}}
