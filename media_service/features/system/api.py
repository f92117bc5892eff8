"""Service-level endpoints: the landing page, health, the OpenAPI document and its docs page."""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, current_app, render_template, request
from sqlalchemy import func, select

from media_service.db import get_db, get_session
from media_service.errors import BadRequest
from media_service.jobs.base import JobState
from media_service.jobs.queue import live_workers
from media_service.media.video.ffmpeg import ffmpeg_version
from media_service.models import Job
from media_service.web.openapi import openapi_document

bp = Blueprint("system", __name__)


@bp.get("/")
def index() -> Any:
    return render_template("index.html")


@functools.cache
def _ffmpeg_version(binary: str) -> str | None:
    return ffmpeg_version(binary)


@bp.get("/v1/health")
def health() -> Any:
    """Database, storage, ffmpeg and worker status; 503 when a required part is down.

    No live worker makes the status ``degraded`` (the API answers, jobs wait); ``?require=workers`` makes it
    a 503, for a deployment whose health means "jobs get done" (the container's HEALTHCHECK).
    """
    required = {part for part in request.args.get("require", "").split(",") if part}
    if required - {"workers"}:
        raise BadRequest("require may only name 'workers'", code="invalid_require")
    checks: dict[str, Any] = {}
    healthy = True
    try:
        get_db().ping()
        checks["database"] = {"ok": True}
    except Exception as exc:  # report, don't crash: this is what monitoring polls
        healthy = False
        checks["database"] = {"ok": False, "error": str(exc)[:300]}
    try:
        current_app.extensions["storage"].check_writable()
        checks["storage"] = {"ok": True, "backend": current_app.config["STORAGE_BACKEND"]}
    except OSError as exc:
        healthy = False
        checks["storage"] = {"ok": False, "error": str(exc)[:300]}
    version = _ffmpeg_version(current_app.config["FFMPEG_BINARY"])
    checks["ffmpeg"] = {"ok": version is not None, "version": version}
    healthy = healthy and version is not None
    if checks["database"]["ok"]:
        session = get_session()
        alive = live_workers(session, within_seconds=max(10.0, current_app.config["JOB_LEASE_SECONDS"]))
        queued = session.scalar(select(func.count()).select_from(Job).where(Job.state == JobState.QUEUED)) or 0
        running = session.scalar(select(func.count()).select_from(Job).where(Job.state == JobState.RUNNING)) or 0
        checks["workers"] = {"ok": alive > 0, "alive": alive, "queued_jobs": queued, "running_jobs": running}
    workers_ok = checks.get("workers", {}).get("ok", False)
    status = "unhealthy" if not healthy else "ok" if workers_ok else "degraded"
    answered = 503 if not healthy or ("workers" in required and not workers_ok) else 200
    return {"status": status, "checks": checks}, answered


@bp.get("/v1/openapi.json")
def openapi() -> Any:
    return openapi_document()


@bp.get("/docs")
def docs() -> Any:
    return render_template("docs.html", spec=openapi_document())
