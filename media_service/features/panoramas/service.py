"""Panoramas: the rules for stitching a merchant's overlapping photos into a 360-degree panorama.

Creating one checks what can be checked at once (2 or more of the merchant's own image assets, valid
options) and queues the stitching job; the panorama's state and, once ready, its signed URLs come from
the row and its job (``jobs.resources``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from flask import url_for
from sqlalchemy.orm import Session

from media_service import media_options
from media_service.db import begin_write
from media_service.errors import BadRequest, NotFound
from media_service.features.assets.service import asset_id_list, image_assets
from media_service.jobs.queue import job_to_dict
from media_service.jobs.resources import ResourceState, create_with_job, get_owned, public_state, ready_result
from media_service.media.panorama.build import panorama_options
from media_service.media.panorama.tiles import with_urls
from media_service.models import Job, Panorama
from media_service.web.files import prefix_signer

JOB_KIND = "panoramas.stitch"


def create_panorama(session: Session, settings: Mapping[str, Any], merchant_id: str, body: Mapping[str, Any],
                    idempotency_key: str | None) -> tuple[Panorama, Job, bool]:
    """Queue stitching of ``{"asset_ids": [...], "options": {...}}``; a repeated key returns the first."""
    asset_ids = asset_id_list(body["asset_ids"], field="asset_ids", minimum=2,
                              maximum=settings["PANORAMA_MAX_PHOTOS"], what="a panorama")
    raw_options = body.get("options") or {}
    if not isinstance(raw_options, dict):
        raise BadRequest("options must be a JSON object", code="invalid_options")
    try:
        panorama_options(raw_options, media_options.panorama_limits(settings))
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_options") from exc
    assets = image_assets(session, merchant_id, asset_ids)
    photos = [{"asset_id": a.id, "key": a.storage_key, "name": a.filename} for a in assets]
    return create_with_job(
        session, Panorama(merchant_id=merchant_id, asset_ids=asset_ids, options=raw_options), JOB_KIND,
        lambda row: {"panorama_id": row.id, "options": raw_options, "photos": photos},
        merchant_id=merchant_id, max_attempts=settings["JOB_MAX_ATTEMPTS"],
        idempotency_key=f"panoramas:{idempotency_key}" if idempotency_key else None)


def panorama_to_dict(panorama: Panorama, job: Job | None) -> dict[str, Any]:
    state = public_state(panorama.state, job)
    body: dict[str, Any] = {
        "id": panorama.id, "state": state, "asset_ids": panorama.asset_ids, "options": panorama.options,
        "created_at": panorama.created_at.isoformat(),
        "finished_at": panorama.finished_at.isoformat() if panorama.finished_at else None,
        "job": job_to_dict(job) if job else None, "hotspots": panorama_hotspots(panorama),
        "links": {"self": url_for("panoramas.get_panorama", panorama_id=panorama.id),
                  "job": url_for("jobs.get_job", job_id=panorama.job_id)},
    }
    result = panorama.result if state == ResourceState.READY else None
    if result:
        sign = prefix_signer(result["prefix"])
        manifest = result["manifest"]
        body.update({
            "width": result["width"], "height": result["height"], "projection": result["projection"],
            "field_of_view": result["field_of_view"], "diagnostics": result["diagnostics"],
            "image_url": sign(manifest["image"]["path"]), "preview_url": sign(manifest["preview"]["path"]),
            "manifest_url": sign("manifest.json"), "viewer": with_urls(manifest, sign),
        })
    elif job is not None and job.error:
        body["error"] = {k: v for k, v in job.error.items() if k not in {"traceback", "diagnostics"}}
        if isinstance(job.error.get("diagnostics"), Mapping):
            body["diagnostics"] = job.error["diagnostics"]
    return body


def get_panorama_row(session: Session, merchant_id: str, panorama_id: str) -> Panorama:
    return get_owned(session, Panorama, panorama_id, merchant_id, "panorama")


def describe_panorama_for_embed(session: Session, merchant_id: str, panorama_id: str) -> dict[str, Any]:
    """A ready panorama for the viewer widget: equirectangular with its coverage, or a flat image."""
    row = get_panorama_row(session, merchant_id, panorama_id)
    result = ready_result(row, "panorama")
    sign = prefix_signer(result["prefix"])
    manifest = result["manifest"]
    image = {"src": sign(manifest["image"]["path"]), "width": result["width"], "height": result["height"]}
    if result["projection"] == "plane":
        return {"mode": "image", "title": "Panorama", "image": image}
    fov = result["field_of_view"]
    described = {**image, "preview": sign(manifest["preview"]["path"]), "hfov": fov["horizontal"],
                 "vfov": fov["vertical"], "v_offset": fov["pitch"], "full_360": fov["full_360"],
                 "projection": manifest["projection"]["type"]}
    if manifest.get("tiles"):  # the widget streams the tiles the view needs instead of the whole image
        described["tiles"] = with_urls({"tiles": manifest["tiles"]}, sign)["tiles"]
    described["hotspots"] = panorama_hotspots(row)
    return {"mode": "panorama", "title": "Panorama", "panorama": described}


MAX_HOTSPOTS = 50


def panorama_hotspots(panorama: Panorama) -> list[dict[str, Any]]:
    """The panorama's hotspots as the widget reads them: ``{"id", "yaw", "pitch", "label"}`` in degrees."""
    return list(panorama.hotspots or [])


def add_hotspot(session: Session, panorama: Panorama, yaw: object, pitch: object, label: object) -> dict[str, Any]:
    """Place a hotspot at ``yaw``/``pitch`` (degrees from the image centre, as the widget's view) with a label.

    It must lie on the stitched image (within the panorama's field of view); 409 before the panorama is ready.
    """
    result = ready_result(panorama, "panorama")
    fov = result["field_of_view"]
    try:
        yaw_value, pitch_value = float(yaw), float(pitch)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadRequest("yaw and pitch must be numbers (degrees)", code="invalid_hotspot") from None
    half_h, half_v = fov["horizontal"] / 2, fov["vertical"] / 2
    if not (abs(yaw_value) <= half_h and abs(pitch_value - fov["pitch"]) <= half_v):
        raise BadRequest(f"the hotspot must lie on the panorama: yaw within ±{half_h:.0f}°, pitch within "
                         f"{fov['pitch'] - half_v:.0f}° to {fov['pitch'] + half_v:.0f}°", code="invalid_hotspot")
    text = label.strip() if isinstance(label, str) else ""
    if not 1 <= len(text) <= 80:
        raise BadRequest("give the hotspot a label of 1 to 80 characters", code="invalid_hotspot")
    if len(panorama.hotspots or []) >= MAX_HOTSPOTS:
        raise BadRequest(f"a panorama holds at most {MAX_HOTSPOTS} hotspots", code="too_many_hotspots")
    spot = {"id": secrets.token_hex(4), "yaw": round(yaw_value, 2), "pitch": round(pitch_value, 2), "label": text}
    begin_write(session)
    panorama.hotspots = [*(panorama.hotspots or []), spot]
    session.commit()
    return spot


def remove_hotspot(session: Session, panorama: Panorama, hotspot_id: str) -> None:
    """Take a hotspot off the panorama (404 for an unknown id)."""
    if not any(spot.get("id") == hotspot_id for spot in panorama.hotspots or []):
        raise NotFound(f"no hotspot {hotspot_id!r} on this panorama", code="hotspot_not_found")
    begin_write(session)
    panorama.hotspots = [spot for spot in panorama.hotspots or [] if spot.get("id") != hotspot_id]
    session.commit()
