"""``/v1/jobs``: the state, progress and outcome of long-running work."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from sqlalchemy import select

from media_service.db import get_session
from media_service.errors import BadRequest
from media_service.jobs import queue
from media_service.jobs.base import STATES
from media_service.models import Job
from media_service.security.api_keys import current_merchant_id, require
from media_service.web.requests import page

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")


@bp.get("")
@require("jobs:read")
def list_jobs() -> Any:
    query = select(Job).where(Job.merchant_id == current_merchant_id())
    state = request.args.get("state")
    if state:
        if state not in STATES:
            raise BadRequest(f"state must be one of {', '.join(STATES)}", code="invalid_state")
        query = query.where(Job.state == state)
    kind = request.args.get("kind")
    if kind:
        query = query.where(Job.kind == kind)
    rows, next_cursor = page(get_session(), query, Job)
    return {"items": [queue.job_to_dict(job) for job in rows], "next_cursor": next_cursor}


@bp.get("/<job_id>")
@require("jobs:read")
def get_job(job_id: str) -> Any:
    return queue.job_to_dict(queue.get_job(get_session(), job_id, current_merchant_id()))


@bp.post("/<job_id>/cancel")
@require("jobs:write")
def cancel_job(job_id: str) -> Any:
    return queue.job_to_dict(queue.cancel(get_session(), job_id, current_merchant_id())), 202


@bp.post("/<job_id>/retry")
@require("jobs:write")
def retry_job(job_id: str) -> Any:
    return queue.job_to_dict(queue.retry(get_session(), job_id, current_merchant_id())), 202
