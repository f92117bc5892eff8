"""Product spins: the rules for making a 360-degree spin from a turntable photo set or a turntable video.

Creating one checks the source (at least 4 of the merchant's photos, or one video short enough) and the
options, and queues the build job; state and signed URLs come from the row and its job (``jobs.resources``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import url_for
from sqlalchemy.orm import Session

from media_service import media_options
from media_service.errors import BadRequest, InvalidMedia
from media_service.features.assets.service import asset_id_list, get_asset, image_assets
from media_service.jobs.queue import job_to_dict
from media_service.jobs.resources import ResourceState, create_with_job, get_owned, public_state, ready_result
from media_service.media.panorama.build import spin_options
from media_service.media.panorama.tiles import with_urls
from media_service.models import Job, Spin
from media_service.web.files import prefix_signer

JOB_KIND = "spins.build"
MIN_SPIN_PHOTOS = 4


def create_spin(session: Session, settings: Mapping[str, Any], merchant_id: str, body: Mapping[str, Any],
                idempotency_key: str | None) -> tuple[Spin, Job, bool]:
    """Queue a spin: ``{"asset_ids": [...]}`` (photo set) or ``{"video_asset_id": ..., "frames": 36}``."""
    has_photos, has_video = "asset_ids" in body, "video_asset_id" in body
    if has_photos == has_video:
        raise BadRequest("give either asset_ids (a turntable photo set) or video_asset_id (a turntable video)",
                         code="invalid_source")
    frames = body.get("frames", None if has_photos else 36)
    raw_options = body.get("options") or {}
    if not isinstance(raw_options, dict):
        raise BadRequest("options must be a JSON object", code="invalid_options")
    try:
        spin_options(frames, raw_options, media_options.spin_limits(settings))
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_options") from exc
    params: dict[str, Any] = {"frames": frames, "options": raw_options}
    row = Spin(merchant_id=merchant_id, frames=frames, options=raw_options)
    if has_photos:
        asset_ids = asset_id_list(body["asset_ids"], field="asset_ids", minimum=MIN_SPIN_PHOTOS,
                                  maximum=settings["SPIN_MAX_PHOTOS"], what="a spin")
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
        longest = settings["SPIN_MAX_VIDEO_SECONDS"]
        if video.duration is not None and video.duration > longest:
            raise InvalidMedia(f"the video is {video.duration:.0f} s long; a spin is made from at most {longest:g} s: "
                               "trim it to one or two turns of the turntable", code="video_too_long")
        params.update(source="video", video={"asset_id": video.id, "key": video.storage_key, "name": video.filename})
        row.source, row.video_asset_id, row.asset_ids = "video", video.id, []
    return create_with_job(session, row, JOB_KIND, lambda spin: {**params, "spin_id": spin.id},
                           merchant_id=merchant_id, max_attempts=settings["JOB_MAX_ATTEMPTS"],
                           idempotency_key=f"spins:{idempotency_key}" if idempotency_key else None)


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
    result = spin.result if state == ResourceState.READY else None
    if result:
        sign = prefix_signer(result["prefix"])
        body.update({"frame_count": result["frame_count"], "manifest_url": sign("manifest.json"),
                     "manifest": with_urls(result["manifest"], sign)})
    elif job is not None and job.error:
        body["error"] = {k: v for k, v in job.error.items() if k != "traceback"}
    return body


def get_spin_row(session: Session, merchant_id: str, spin_id: str) -> Spin:
    return get_owned(session, Spin, spin_id, merchant_id, "spin")


def describe_spin_for_embed(session: Session, merchant_id: str, spin_id: str) -> dict[str, Any]:
    """A ready spin for the viewer widget: WebP frames at the width nearest 640 px, in turning order."""
    result = ready_result(get_spin_row(session, merchant_id, spin_id), "spin")
    manifest = result["manifest"]
    sign = prefix_signer(result["prefix"])
    size = min(manifest["sizes"], key=lambda s: abs(s["width"] - 640))
    count = manifest["frame_count"]
    return {"mode": "spin", "title": "Product spin", "spin": {
        "frames": [sign(size["paths"]["webp"].format(index=i)) for i in range(count)],
        "width": size["width"], "height": size["height"], "pixels_per_frame": max(2, round(288 / count)),
        "sprite": sign(manifest["sprite"]["path"])}}
