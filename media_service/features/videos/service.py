"""``Video`` rows: starting a processing, reading its state, moderation decisions, and URLs of outputs.

Shared by the API (``/v1/videos``, ``/v1/batches``, buyer upload tokens) and the ``batch videos``
command, so the rules (one video per asset/profile/options, approval before publishing) live once.

Outputs are served by prefix-signed URLs: ``/media/videos/<id>/<purpose>/<expires>/<signature>/<name>``.
The signature covers the video, the purpose and the expiry but not the file name, so the relative
references inside HLS playlists (``720/index.m3u8``, ``seg_0001.m4s``) and the storyboard's WebVTT
resolve to URLs that carry the same signature. ``public`` links work only while the video is approved;
``review`` links (short-lived) let the merchant watch a video before deciding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import current_app, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from media_service.db import begin_write
from media_service.errors import BadRequest, Conflict, InvalidMedia
from media_service.jobs.base import job_output_root
from media_service.jobs.queue import job_to_dict
from media_service.jobs.resources import (
    Dependents,
    ResourceState,
    create_with_job,
    delete_with_files,
    get_owned,
    public_state,
)
from media_service.media.video import posters
from media_service.media.video.presets import PROFILES, get_profile, parse_options
from media_service.models import Asset, Job, UploadToken, Video, VideoPolicy, utcnow
from media_service.security.links import link_expiry, link_signature
from media_service.storage import Storage

JOB_KIND = "videos.process"
POLICIES = ("never", "always", "if_clean")
PURPOSES = ("public", "review")
MODERATION_STATES = ("pending", "approved", "rejected")
VIDEO_STATES = tuple(ResourceState)


def options_key(options: Mapping[str, Any]) -> str:
    return json.dumps(dict(options), sort_keys=True, separators=(",", ":"))


def find_video(session: Session, merchant_id: str, asset_id: str, profile: str,
               options: Mapping[str, Any]) -> Video | None:
    return session.scalar(select(Video).where(Video.merchant_id == merchant_id, Video.asset_id == asset_id,
                                              Video.profile == profile, Video.options_key == options_key(options)))


def create_video(session: Session, settings: Mapping[str, Any], *, merchant_id: str, asset: Asset,
                 profile_name: object, options: object = None,
                 idempotency_key: str | None = None) -> tuple[Video, bool]:
    """Start processing ``asset`` with a profile; the same asset, profile and options give the same video.

    Returns ``(video, created)``. Raises 400 for a bad profile/options and 422 when the asset is not a video.
    """
    profile = get_profile(profile_name)
    parsed = parse_options(options)
    if asset.kind != "video":
        raise InvalidMedia(f"asset {asset.id} is an image; videos can only be made from video assets",
                           code="not_a_video")
    existing = find_video(session, merchant_id, asset.id, profile.name, parsed)
    if existing is not None:
        return existing, False
    token = session.scalar(select(UploadToken).where(UploadToken.asset_id == asset.id,
                                                     UploadToken.merchant_id == merchant_id))
    video = Video(merchant_id=merchant_id, asset_id=asset.id, profile=profile.name, options=parsed,
                  options_key=options_key(parsed), state=ResourceState.PROCESSING,
                  order_id=token.order_id if token else None, sku=token.sku if token else None)
    params = {"asset_id": asset.id, "source_key": asset.storage_key, "profile": profile.name, "options": parsed,
              "duplicates": duplicate_settings(settings)}
    try:
        video, _job, created = create_with_job(
            session, video, JOB_KIND, lambda row: {"video_id": row.id, **params}, merchant_id=merchant_id,
            max_attempts=settings["JOB_MAX_ATTEMPTS"], idempotency_key=idempotency_key)
    except IntegrityError:  # the same asset, profile and options raced us (a unique constraint)
        session.rollback()
        existing = find_video(session, merchant_id, asset.id, profile.name, parsed)
        if existing is None:
            raise
        return existing, False
    return video, created


def get_video(session: Session, merchant_id: str, video_id: str) -> Video:
    """A merchant's video; another merchant's id is simply not found."""
    return get_owned(session, Video, video_id, merchant_id, "video")


def delete_video(session: Session, storage: Storage, video: Video) -> None:
    """Delete a video with its renditions, poster and previews (the asset it came from stays)."""
    delete_with_files(session, storage, [video], job_ids=[video.job_id], prefixes=[_video_files(video)])


def _video_files(video: Video) -> str | None:
    """Where a video's outputs are (or will be): its job's output folder (``output_prefix`` once ready)."""
    return job_output_root(video.merchant_id, video.job_id) if video.job_id else video.output_prefix


def videos_of_asset(session: Session, asset: Asset) -> Dependents:
    videos = session.scalars(select(Video).where(Video.asset_id == asset.id)).all()
    return Dependents(job_ids=[video.job_id for video in videos if video.job_id],
                      prefixes=[prefix for video in videos if (prefix := _video_files(video))])


def moderate(session: Session, video: Video, decision: str, reason: str | None, by: str = "api") -> Video:
    """Approve or reject a processed video (a decision can be changed later)."""
    if video.state != "ready":
        raise Conflict(f"video {video.id} is not processed yet; approve or reject it once its state is 'ready'",
                       code="video_not_ready")
    begin_write(session)
    video.moderation_status = "approved" if decision == "approve" else "rejected"
    video.moderation_reason = reason
    video.moderated_by, video.moderated_at = by, utcnow()
    session.commit()
    return video


def set_policy(session: Session, merchant_id: str, choice: object) -> str:
    """Set the merchant's buyer-show auto-approval (``never``, ``always``, ``if_clean``); pending videos
    follow the new rule at once. Returns the choice."""
    if choice not in POLICIES:
        raise BadRequest(f"buyer_show_auto_approve must be one of {', '.join(POLICIES)}", code="invalid_policy")
    pending = list(session.scalars(select(Video).where(Video.merchant_id == merchant_id, Video.state == "ready",
                                                       Video.moderation_status == "pending")))
    begin_write(session)
    policy = session.get(VideoPolicy, merchant_id) or VideoPolicy(merchant_id=merchant_id)
    policy.buyer_show_auto_approve, policy.updated_at = str(choice), utcnow()
    session.add(policy)
    session.flush()
    for video in pending:
        reapply_policy(session, video)
    session.commit()
    return str(choice)


def reapply_policy(session: Session, video: Video) -> None:
    """Used when a merchant changes policy: pending videos get the new rule (decided ones stay)."""
    if video.state == "ready" and video.moderation_status == "pending":
        apply_policy(session, video)


# ------------------------------------------------------------------------------------- signed file URLs


def file_link_parts(video_id: str, purpose: str) -> tuple[str, ...]:
    """What a signed folder link of a video's outputs names (see ``media_service.security.links``)."""
    return ("video-files", video_id, purpose)


def file_urls(video: Video, *, purpose: str, secret: str, base_url: str, seconds: int) -> dict[str, Any]:
    """URLs of every output of a ready video, all under one signed prefix."""
    expires = link_expiry(seconds)
    prefix = (f"{base_url.rstrip('/')}/media/videos/{video.id}/{purpose}/{expires}/"
              f"{link_signature(secret, *file_link_parts(video.id, purpose), expires)}")
    files = (video.outputs or {}).get("files") or {}

    def url(name: str | None) -> str | None:
        return f"{prefix}/{name}" if name else None

    return {
        "expires_at": expires,
        "hls": url(files.get("hls")), "mp4": url(files.get("mp4")), "poster": url(files.get("poster")),
        "preview": url(files.get("preview")),
        "storyboard": {"vtt": url(files.get("storyboard_vtt")), "sprite": url(files.get("storyboard_sprite"))},
        "renditions": [{"name": r["name"], "playlist": url(r["playlist"])}
                       for r in (video.outputs or {}).get("renditions") or []],
    }


def video_to_dict(video: Video, job: Job | None, *, secret: str, base_url: str, public_seconds: int,
                  review_seconds: int) -> dict[str, Any]:
    """The API's view of a video. Public URLs only once approved; review URLs while it is not."""
    state = public_state(video.state, job)
    outputs = video.outputs or {}
    published = state == "ready" and video.moderation_status == "approved"
    body: dict[str, Any] = {
        "id": video.id, "asset_id": video.asset_id, "profile": video.profile, "options": video.options,
        "state": state, "progress": job.progress if job is not None else (100.0 if state == "ready" else 0.0),
        "published": published,
        "moderation": {"status": video.moderation_status, "reason": video.moderation_reason,
                       "decided_by": video.moderated_by,
                       "decided_at": video.moderated_at.isoformat() if video.moderated_at else None},
        "flags": video.flags or [],
        "duration": video.duration, "width": video.width, "height": video.height,
        "renditions": [{k: r[k] for k in ("name", "width", "height", "bandwidth", "average_bandwidth", "codecs")}
                       for r in outputs.get("renditions") or []],
        "poster": outputs.get("poster"), "storyboard": outputs.get("storyboard"),
        "loudness": video.loudness, "source": outputs.get("source"),
        "processing": {k: outputs.get(k) for k in ("fps", "tonemap", "stabilization", "faces", "trimmed_from",
                                                   "fallback")} if state == "ready" else None,
        "order_id": video.order_id, "sku": video.sku,
        "urls": None, "review_urls": None,
        "job": job_to_dict(job) if job is not None else None,
        "created_at": video.created_at.isoformat(),
        "ready_at": video.ready_at.isoformat() if video.ready_at else None,
    }
    if published:
        body["urls"] = file_urls(video, purpose="public", secret=secret, base_url=base_url, seconds=public_seconds)
    elif state == "ready":
        body["review_urls"] = file_urls(video, purpose="review", secret=secret, base_url=base_url,
                                        seconds=review_seconds)
    return body


#: Near-duplicate thresholds; the API copies the instance's settings into each job's parameters, because
#: the success hook sees only the database session and the job.
DUPLICATE_DEFAULTS: dict[str, Any] = {"VIDEO_DUPLICATE_MAX_DISTANCE": 10, "VIDEO_DUPLICATE_MIN_MATCH": 0.75,
                                      "VIDEO_DUPLICATE_LOOKBACK": 5000}


def duplicate_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The near-duplicate settings to store in a job's parameters."""
    return {name: settings[name] for name in DUPLICATE_DEFAULTS}


def find_near_duplicate(session: Session, video: Video, signature: list[str],
                        settings: Mapping[str, Any]) -> tuple[str, float] | None:
    """The best-matching earlier video of the same merchant (another asset), if it matches enough."""
    if not signature:
        return None
    rows = session.execute(
        select(Video.id, Video.signature).where(Video.merchant_id == video.merchant_id, Video.id != video.id,
                                                Video.asset_id != video.asset_id, Video.state == ResourceState.READY)
        .order_by(Video.created_at.desc()).limit(int(settings["VIDEO_DUPLICATE_LOOKBACK"]))).all()
    best: tuple[str, float] | None = None
    for other_id, other_signature in rows:
        match = posters.signature_match(signature, other_signature or [],
                                        int(settings["VIDEO_DUPLICATE_MAX_DISTANCE"]))
        if match >= float(settings["VIDEO_DUPLICATE_MIN_MATCH"]) and (best is None or match > best[1]):
            best = (other_id, match)
    return best


def merchant_policy(session: Session, merchant_id: str) -> str:
    policy = session.get(VideoPolicy, merchant_id)
    return policy.buyer_show_auto_approve if policy else "never"


def apply_policy(session: Session, video: Video) -> None:
    """Decide moderation for a freshly processed video (an earlier human decision is kept)."""
    if video.moderated_by and not video.moderated_by.startswith(("policy:", "profile")):
        return
    profile = PROFILES.get(video.profile)
    if profile is None or not profile.needs_approval:
        video.moderation_status, video.moderated_by, video.moderated_at = "approved", "profile", utcnow()
        return
    policy = merchant_policy(session, video.merchant_id)
    if policy == "always" or (policy == "if_clean" and not video.flags):
        video.moderation_status, video.moderated_by, video.moderated_at = "approved", f"policy:{policy}", utcnow()
    else:
        video.moderation_status = "pending"


def base_url() -> str:
    """The public origin links are made for: the PUBLIC_URL setting, else the request's own host."""
    return current_app.config["PUBLIC_URL"].rstrip("/") or request.host_url.rstrip("/")


def describe_video_for_embed(session: Session, merchant_id: str, video_id: str) -> dict[str, Any]:
    """A published video for the widget: HLS with the MP4 fallback, poster and storyboard."""
    video = get_video(session, merchant_id, video_id)
    if video.state != ResourceState.READY or video.moderation_status != "approved":
        raise Conflict("this video is not published yet; embed it once it is ready and approved", code="not_ready")
    config = current_app.config
    urls = file_urls(video, purpose="public", secret=config["SECRET_KEY"], base_url=base_url(),
                     seconds=config["SIGNED_URL_SECONDS"])
    return {"mode": "video", "title": video.sku or "", "video": {
        "hls": urls["hls"], "mp4": urls["mp4"], "poster": urls["poster"], "storyboard": urls["storyboard"]["vtt"],
        "width": video.width, "height": video.height, "duration": video.duration,
        "muted": video.profile == "homepage"}}
