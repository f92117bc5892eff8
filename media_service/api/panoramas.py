"""``/v1/panoramas``: stitch a merchant's overlapping photos into a 360-degree panorama.

``POST /v1/panoramas {asset_ids, options}`` checks what can be checked at once (2 or more of the
merchant's own image assets, valid options) and answers 202 with the panorama and its job; the job
does the stitching. ``GET /v1/panoramas/<id>`` shows the state, the per-photo diagnostics and, once
ready, signed URLs of the image, preview, tiles and the viewer manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, current_app, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from media_service.api.common import created, idempotency_key, json_body, page
from media_service.api.files import signed_url
from media_service.assets import get_asset
from media_service.auth import current_merchant_id, require
from media_service.db import begin_write, get_session
from media_service.deletion import delete_job_result
from media_service.embed import embed_provider
from media_service.errors import BadRequest, Conflict, InvalidMedia, NotFound
from media_service.jobs.base import CANCELLED, FAILED, QUEUED, SUCCEEDED
from media_service.jobs.queue import enqueue, job_to_dict
from media_service.models import Asset, Job, Panorama, new_id
from media_service.panorama.build import panorama_options
from media_service.panorama.tiles import with_urls

bp = Blueprint("panoramas", __name__, url_prefix="/v1/panoramas")

STATES = ("queued", "processing", "ready", "failed", "cancelled")


def asset_id_list(value: Any, *, field: str, minimum: int, maximum: int, what: str) -> list[str]:
    """A list of distinct asset ids of the right length (400 otherwise)."""
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 40 for v in value):
        raise BadRequest(f"{field} must be a list of asset ids (ast_...)", code="invalid_asset_ids")
    if len(value) < minimum:
        raise BadRequest(f"{what} needs at least {minimum} photos, got {len(value)}; upload the overlapping "
                         "photos and list all of them", code="too_few_photos")
    if len(value) > maximum:
        raise BadRequest(f"at most {maximum} photos can go into {what}, got {len(value)}", code="too_many_photos")
    seen: set[str] = set()
    for asset_id in value:
        if asset_id in seen:
            raise BadRequest(f"asset {asset_id} is listed twice; list each photo once", code="duplicate_asset")
        seen.add(asset_id)
    return list(value)


def image_assets(session: Session, merchant_id: str, asset_ids: list[str]) -> list[Asset]:
    """The merchant's assets (404 for unknown or foreign ids), all of them images (422 otherwise)."""
    assets = [get_asset(session, merchant_id, asset_id) for asset_id in asset_ids]
    for asset in assets:
        if asset.kind != "image":
            raise InvalidMedia(f"asset {asset.id} is a {asset.kind}, not a photo; list only image assets",
                               code="not_an_image", asset_id=asset.id)
    return assets


def public_state(stored_state: str, job: Job | None) -> str:
    """The resource's state as clients see it, from its own row and its job."""
    if stored_state == "ready":
        return "ready"
    if job is None:
        return "processing"
    return {QUEUED: "queued", FAILED: "failed", CANCELLED: "cancelled", SUCCEEDED: "ready"}.get(job.state, "processing")


def _signed(prefix: str) -> Any:
    return lambda path: signed_url(f"{prefix}/{path}")


def panorama_to_dict(panorama: Panorama, job: Job | None) -> dict[str, Any]:
    state = public_state(panorama.state, job)
    body: dict[str, Any] = {
        "id": panorama.id, "state": state, "asset_ids": panorama.asset_ids, "options": panorama.options,
        "created_at": panorama.created_at.isoformat(),
        "finished_at": panorama.finished_at.isoformat() if panorama.finished_at else None,
        "job": job_to_dict(job) if job else None,
        "links": {"self": url_for("panoramas.get_panorama", panorama_id=panorama.id),
                  "job": url_for("jobs.get_job", job_id=panorama.job_id)},
    }
    result = panorama.result if state == "ready" else None
    if result:
        sign = _signed(result["prefix"])
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
    row = session.scalar(select(Panorama).where(Panorama.id == panorama_id, Panorama.merchant_id == merchant_id))
    if row is None:
        raise NotFound(f"no panorama {panorama_id!r}", code="panorama_not_found")
    return row


@bp.post("")
@require("assets:write")
def create_panorama() -> Any:
    """Start stitching: ``{"asset_ids": [...], "options": {"projection": "auto", ...}}``."""
    body = json_body(required=("asset_ids",))
    config = current_app.config
    asset_ids = asset_id_list(body["asset_ids"], field="asset_ids", minimum=2,
                              maximum=config["PANORAMA_MAX_PHOTOS"], what="a panorama")
    raw_options = body.get("options") or {}
    if not isinstance(raw_options, dict):
        raise BadRequest("options must be a JSON object", code="invalid_options")
    try:
        panorama_options(raw_options, config)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_options") from exc
    session = get_session()
    merchant_id = current_merchant_id()
    assets = image_assets(session, merchant_id, asset_ids)
    key = idempotency_key()
    begin_write(session)
    panorama_id = new_id("pan")
    params = {"panorama_id": panorama_id, "options": raw_options,
              "photos": [{"asset_id": a.id, "key": a.storage_key, "name": a.filename} for a in assets]}
    job, was_created = enqueue(session, "panoramas.stitch", params, merchant_id=merchant_id,
                               max_attempts=config["JOB_MAX_ATTEMPTS"],
                               idempotency_key=f"panoramas:{key}" if key else None)
    if was_created:
        panorama = Panorama(id=panorama_id, merchant_id=merchant_id, job_id=job.id, asset_ids=asset_ids,
                            options=raw_options)
        session.add(panorama)
        session.commit()
    else:
        existing = session.scalar(select(Panorama).where(Panorama.job_id == job.id))
        if existing is None:
            raise Conflict("this Idempotency-Key was already used for another kind of request",
                           code="idempotency_key_reused")
        panorama = existing
    return created(panorama_to_dict(panorama, job), url_for("panoramas.get_panorama", panorama_id=panorama.id),
                   202 if was_created else 200)


@bp.get("")
@require("assets:read")
def list_panoramas() -> Any:
    session = get_session()
    query = select(Panorama).where(Panorama.merchant_id == current_merchant_id())
    rows, next_cursor = page(session, query, Panorama)
    jobs = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_([r.job_id for r in rows])))}
    return {"items": [panorama_to_dict(r, jobs.get(r.job_id)) for r in rows], "next_cursor": next_cursor}


@bp.get("/<panorama_id>", endpoint="get_panorama")
@require("assets:read")
def get_panorama_view(panorama_id: str) -> Any:
    session = get_session()
    panorama = get_panorama_row(session, current_merchant_id(), panorama_id)
    return panorama_to_dict(panorama, session.get(Job, panorama.job_id))


@bp.delete("/<panorama_id>")
@require("assets:write")
def delete_panorama_view(panorama_id: str) -> Any:
    """Delete a panorama and its outputs; embeds of it stop working. The photos stay."""
    session = get_session()
    delete_job_result(session, current_app.extensions["storage"],
                      get_panorama_row(session, current_merchant_id(), panorama_id))
    return "", 204


@embed_provider("panorama")
def describe_panorama_for_embed(session: Session, merchant_id: str, panorama_id: str) -> dict[str, Any]:
    """A ready panorama for the viewer widget: equirectangular with its coverage, or a flat image."""
    panorama = get_panorama_row(session, merchant_id, panorama_id)
    if panorama.state != "ready" or not panorama.result:
        raise Conflict("this panorama is not ready yet; embed it once its state is 'ready'", code="not_ready")
    result = panorama.result
    sign = _signed(result["prefix"])
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
    return {"mode": "panorama", "title": "Panorama", "panorama": described}
