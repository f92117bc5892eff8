"""``/v1/spins``: 360-degree product spins from a turntable photo set or a turntable video.

``POST /v1/spins {asset_ids | video_asset_id, frames: 24|36|72, options}`` answers 202 with the spin and
its job; ``GET /v1/spins/<id>`` shows the state and, once ready, the manifest with signed URLs of every
frame (each width, WebP and JPEG) and the sprite sheet. The rules are in ``service.py``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, url_for
from sqlalchemy import select

from media_service.db import get_session
from media_service.features.spins.service import create_spin, get_spin_row, spin_to_dict
from media_service.jobs.resources import delete_job_result
from media_service.models import Job, Spin
from media_service.security.api_keys import current_merchant_id, require
from media_service.web.requests import created, idempotency_key, json_body, page

bp = Blueprint("spins", __name__, url_prefix="/v1/spins")


@bp.post("", endpoint="create_spin")
@require("assets:write")
def create_spin_view() -> Any:
    """Start a spin: ``{"asset_ids": [...]}`` (photo set) or ``{"video_asset_id": ..., "frames": 36}``."""
    spin, job, was_created = create_spin(get_session(), current_app.config, current_merchant_id(), json_body(),
                                         idempotency_key())
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


