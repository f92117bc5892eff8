"""``/v1/videos``: process an uploaded video with a profile, read it, approve or reject it; serve its files.

``POST /v1/videos {asset_id, profile, options}`` answers 202 with the video and its job (200 with the
existing one when that asset was already processed the same way). Outputs are served under
``/media/videos/...`` with prefix-signed URLs (see :mod:`media_service.features.videos.service`).
"""

from __future__ import annotations

import mimetypes
import re
import time
from typing import Any

from flask import Blueprint, current_app, request, url_for
from sqlalchemy import select

from media_service.db import get_session
from media_service.errors import BadRequest, Forbidden, NotFound
from media_service.features.assets.service import get_asset
from media_service.features.videos.service import (
    MODERATION_STATES,
    POLICIES,
    PURPOSES,
    VIDEO_STATES,
    base_url,
    create_video,
    delete_video,
    file_link_parts,
    get_video,
    moderate,
    set_policy,
    video_to_dict,
)
from media_service.jobs.base import FAILED, QUEUED, RUNNING
from media_service.media.video.presets import PROFILES
from media_service.models import Job, Video, VideoPolicy
from media_service.security.api_keys import current_merchant_id, require
from media_service.security.links import check_link
from media_service.storage import check_key
from media_service.web.files import send_stored
from media_service.web.requests import created, idempotency_key, json_body, page

bp = Blueprint("videos", __name__)

#: The only file names a video's signed prefix serves.
SERVABLE = re.compile(r"^(hls/master\.m3u8|hls/[0-9]{1,5}/(index\.m3u8|init(_[0-9]{1,3})?\.mp4|seg_[0-9]{4,6}\.m4s)"
                      r"|video\.mp4|poster\.jpg|storyboard\.(jpg|vtt)|preview\.webp)$")
MIME_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".m4s": "video/iso.segment", ".mp4": "video/mp4",
              ".vtt": "text/vtt", ".webp": "image/webp", ".jpg": "image/jpeg"}


def render(video: Video) -> dict[str, Any]:
    """A video as JSON for the current request (URLs signed for this instance)."""
    job = get_session().get(Job, video.job_id) if video.job_id else None
    config = current_app.config
    return video_to_dict(video, job, secret=config["SECRET_KEY"], base_url=base_url(),
                         public_seconds=config["SIGNED_URL_SECONDS"], review_seconds=config["VIDEO_REVIEW_URL_SECONDS"])


@bp.post("/v1/videos")
@require("assets:write")
def create_video_view() -> Any:
    """Start processing an asset: ``{"asset_id": ..., "profile": "buyer_show", "options": {...}}``."""
    body = json_body(required=("asset_id", "profile"))
    if not isinstance(body["asset_id"], str):
        raise BadRequest("asset_id must be a string (ast_...)", code="invalid_asset_id")
    session = get_session()
    merchant_id = current_merchant_id()
    asset = get_asset(session, merchant_id, body["asset_id"])
    video, was_created = create_video(session, current_app.config, merchant_id=merchant_id, asset=asset,
                                      profile_name=body["profile"], options=body.get("options"),
                                      idempotency_key=idempotency_key())
    return created(render(video), url_for("videos.get_video_view", video_id=video.id), 202 if was_created else 200)


@bp.get("/v1/videos")
@require("assets:read")
def list_videos() -> Any:
    """Videos newest first; filter with ``state``, ``moderation``, ``profile`` or ``asset_id``."""
    merchant_id = current_merchant_id()
    query = select(Video).where(Video.merchant_id == merchant_id)
    moderation = request.args.get("moderation")
    if moderation:
        if moderation not in MODERATION_STATES:
            raise BadRequest(f"moderation must be one of {', '.join(MODERATION_STATES)}", code="invalid_filter")
        query = query.where(Video.moderation_status == moderation)
    profile = request.args.get("profile")
    if profile:
        if profile not in PROFILES:
            raise BadRequest(f"profile must be one of {', '.join(PROFILES)}", code="invalid_filter")
        query = query.where(Video.profile == profile)
    if request.args.get("asset_id"):
        query = query.where(Video.asset_id == request.args["asset_id"])
    state = request.args.get("state")
    if state:
        if state not in VIDEO_STATES:
            raise BadRequest(f"state must be one of {', '.join(VIDEO_STATES)}", code="invalid_filter")
        if state == "ready":
            query = query.where(Video.state == "ready")
        else:
            job_state = {"queued": QUEUED, "processing": RUNNING, "failed": FAILED, "cancelled": "cancelled"}[state]
            query = query.where(Video.state != "ready", Video.job_id.in_(
                select(Job.id).where(Job.merchant_id == merchant_id, Job.state == job_state)))
    rows, next_cursor = page(get_session(), query, Video)
    return {"items": [render(video) for video in rows], "next_cursor": next_cursor}


@bp.get("/v1/videos/<video_id>")
@require("assets:read")
def get_video_view(video_id: str) -> Any:
    return render(get_video(get_session(), current_merchant_id(), video_id))


@bp.delete("/v1/videos/<video_id>")
@require("assets:write")
def delete_video_view(video_id: str) -> Any:
    """Delete a video and its outputs; its public links stop working. The asset it was made from stays."""
    session = get_session()
    delete_video(session, current_app.extensions["storage"], get_video(session, current_merchant_id(), video_id))
    return "", 204


def _decide(video_id: str, decision: str) -> Any:
    reason = None
    if request.content_length:
        body = json_body()
        reason = body.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 1000):
            raise BadRequest("reason must be a string of at most 1000 characters", code="invalid_reason")
    session = get_session()
    video = get_video(session, current_merchant_id(), video_id)
    return render(moderate(session, video, decision, reason))


@bp.post("/v1/videos/<video_id>/approve")
@require("assets:write")
def approve_video(video_id: str) -> Any:
    """Publish a processed video (its public URLs start working)."""
    return _decide(video_id, "approve")


@bp.post("/v1/videos/<video_id>/reject")
@require("assets:write")
def reject_video(video_id: str) -> Any:
    """Refuse a video (optional ``{"reason": ...}``); its public URLs stop working at once."""
    return _decide(video_id, "reject")


def _policy_dict(policy: str) -> dict[str, Any]:
    return {"buyer_show_auto_approve": policy, "choices": list(POLICIES)}


@bp.get("/v1/video-policy")
@require("assets:read")
def get_policy() -> Any:
    policy = get_session().get(VideoPolicy, current_merchant_id())
    return _policy_dict(policy.buyer_show_auto_approve if policy else "never")


@bp.put("/v1/video-policy")
@require("assets:write")
def put_policy() -> Any:
    """``{"buyer_show_auto_approve": "never" | "always" | "if_clean"}``; pending videos follow the new rule."""
    body = json_body(required=("buyer_show_auto_approve",))
    choice = set_policy(get_session(), current_merchant_id(), body["buyer_show_auto_approve"])
    return _policy_dict(choice)


# ------------------------------------------------------------------------------------------ serving files


@bp.get("/media/videos/<video_id>/<purpose>/<int:expires>/<signature>/<path:name>")
def serve_file(video_id: str, purpose: str, expires: int, signature: str, name: str) -> Any:
    """One output file of a video, if the prefix signature is valid and (public links) it is approved."""
    if purpose not in PURPOSES or not SERVABLE.match(name):
        raise NotFound("no such video file", code="file_not_found")
    check_link(current_app.config["SECRET_KEY"], file_link_parts(video_id, purpose), expires, signature)
    session = get_session()
    video = session.get(Video, video_id)
    if video is None or video.state != "ready" or not video.output_prefix:
        raise NotFound("the video no longer exists", code="file_not_found")
    if purpose == "public" and video.moderation_status != "approved":
        raise Forbidden("this video is not published (awaiting approval or rejected)", code="video_not_published")
    key = check_key(f"{video.output_prefix}/{name}")
    storage = current_app.extensions["storage"]
    if not storage.exists(key):
        raise NotFound("the file no longer exists", code="file_not_found")
    suffix = "." + name.rsplit(".", 1)[-1]
    mime = MIME_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = send_stored(storage, key, mimetype=mime, max_age=max(0, min(expires - int(time.time()), 86400)))
    if purpose == "review":
        response.headers["Cache-Control"] = "private, no-store"
    return response
