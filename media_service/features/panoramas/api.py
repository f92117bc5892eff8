"""``/v1/panoramas``: stitch a merchant's overlapping photos into a 360-degree panorama.

``POST /v1/panoramas {asset_ids, options}`` answers 202 with the panorama and its job; the job does the
stitching. ``GET /v1/panoramas/<id>`` shows the state, the per-photo diagnostics and, once ready, signed
URLs of the image, preview, tiles and the viewer manifest. The rules are in ``service.py``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, url_for
from sqlalchemy import select

from media_service.db import get_session
from media_service.features.panoramas.service import create_panorama, get_panorama_row, panorama_to_dict
from media_service.jobs.resources import delete_job_result
from media_service.models import Job, Panorama
from media_service.security.api_keys import current_merchant_id, require
from media_service.web.requests import created, idempotency_key, json_body, page

bp = Blueprint("panoramas", __name__, url_prefix="/v1/panoramas")


@bp.post("", endpoint="create_panorama")
@require("assets:write")
def create_panorama_view() -> Any:
    """Start stitching: ``{"asset_ids": [...], "options": {"projection": "auto", ...}}``."""
    panorama, job, was_created = create_panorama(get_session(), current_app.config, current_merchant_id(),
                                                 json_body(required=("asset_ids",)), idempotency_key())
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


