"""Products in videos: which video a request means, indexing jobs (create, state) and their tracks.

Coordinates in and out are normalised to 0..1 of the displayed (upright) video frame, origin top left,
and times are seconds from the start of the video: the widget never needs to know the resolution. Taps
are answered in ``taps.py``, cut-out links in ``cutouts.py``, add-to-cart in ``cart.py``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from media_service import media_options, models
from media_service.db import begin_write
from media_service.errors import BadRequest, Conflict, InvalidMedia, NotFound
from media_service.features.assets.service import get_asset
from media_service.features.products.service import (
    catalog_entries,
    catalog_fingerprint,
    check_sku,
    get_product,
)
from media_service.features.video_index.job import JOB_KIND, index_prefix
from media_service.jobs.queue import job_to_dict
from media_service.jobs.resources import Dependents, ResourceState, create_with_job, public_state
from media_service.media.detection.base import DETECTOR_NAMES
from media_service.media.detection.model_files import read_manifest
from media_service.models import Asset, Job, ProductTrack, VideoIndex, utcnow
from media_service.web.files import signed_url

TRACK_STATES = ("detected", "confirmed", "rejected")


# ------------------------------------------------------------------------------------------- videos


def resolve_video(session: Session, merchant_id: str, video_id: str) -> tuple[Asset, str | None]:
    """The video asset behind ``video_id``: a video asset (``ast_...``) or a processed video (``vid_...``).

    Processed videos (any profile: promo, buyer show ...) are indexed through their source asset, so an
    index serves every processing of the same upload. Another merchant's ids are not found.
    """
    if video_id.startswith("vid_"):
        video_model = getattr(models, "Video", None)
        video = session.scalar(select(video_model).where(video_model.id == video_id,
                                                         video_model.merchant_id == merchant_id)) \
            if video_model is not None else None
        if video is None:
            raise NotFound(f"no video {video_id!r}", code="video_not_found")
        asset = get_asset(session, merchant_id, video.asset_id)
        return asset, video_id
    if not video_id.startswith("ast_"):
        raise NotFound(f"no video {video_id!r}; use a video asset id (ast_...) or a video id (vid_...)",
                       code="video_not_found")
    asset = get_asset(session, merchant_id, video_id)
    if asset.kind != "video":
        raise InvalidMedia(f"asset {video_id} is an image; products are extracted from videos", code="not_a_video")
    return asset, None


def start_index(session: Session, settings: Mapping[str, Any], merchant_id: str, video_id: str,
                body: Mapping[str, Any], idempotency_key: str | None = None) -> tuple[VideoIndex, Job, bool]:
    """Queue a ``videos.index`` job for the video; the same request again returns the same index."""
    unknown = sorted(set(body) - {"detector", "fps", "force"})
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}; use detector, fps, force", code="unknown_fields")
    asset, video_ref = resolve_video(session, merchant_id, video_id)
    detector = body.get("detector", settings["PRODUCT_DETECTOR"])
    if detector not in DETECTOR_NAMES:
        raise BadRequest(f"detector must be one of {', '.join(DETECTOR_NAMES)}", code="invalid_detector")
    fps = body.get("fps", settings["INDEX_FPS"])
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not 0.2 <= fps <= 30:
        raise BadRequest("fps must be a number between 0.2 and 30", code="invalid_fps")
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise BadRequest("force must be true or false", code="invalid_force")
    params: dict[str, Any] = {"asset_id": asset.id, "source_key": asset.storage_key, "format": asset.format,
                              "fps": float(fps), "frame_side": int(settings["INDEX_FRAME_SIDE"]),
                              "detector": detector, "refine": bool(settings["INDEX_CUTOUTS"])}
    entries = catalog_entries(session, merchant_id)
    fingerprint = catalog_fingerprint(entries)
    if detector == "catalog":
        if not entries:
            raise Conflict("the catalog has no product with a photo: add products (POST /v1/products with "
                           "image_asset_ids) before indexing videos", code="empty_catalog")
        params["catalog"] = entries
    elif detector == "torchvision":
        params["model"] = _torchvision_model(settings, merchant_id)
    key = idempotency_key or f"videos.index:{asset.id}:{detector}:{float(fps):g}:{fingerprint[:16]}:" \
                             f"{params.get('model', '')}"
    if force and not idempotency_key:
        key += f":{time.time_ns()}"
    index = VideoIndex(merchant_id=merchant_id, asset_id=asset.id, video_id=video_ref, detector=detector,
                       fps=float(fps), catalog_fingerprint=fingerprint)
    return create_with_job(session, index, JOB_KIND, lambda row: {**params, "index_id": row.id},
                           merchant_id=merchant_id, idempotency_key=key)


def _torchvision_model(settings: Mapping[str, Any], merchant_id: str) -> str:
    name = str(settings["TORCHVISION_MODEL"]).replace("{merchant_id}", merchant_id)
    models_dir = media_options.models_dir(settings)
    if not any(entry.name == name for entry in read_manifest(models_dir)):
        raise InvalidMedia(f"no torchvision detector {name!r} in the models manifest; train one with "
                           "'media-service models train-detector' or index with detector 'catalog'",
                           code="model_missing")
    return name


def latest_index(session: Session, merchant_id: str, asset_id: str, *, ready: bool) -> VideoIndex | None:
    query = select(VideoIndex).where(VideoIndex.merchant_id == merchant_id, VideoIndex.asset_id == asset_id)
    if ready:
        query = query.where(VideoIndex.state == ResourceState.READY).order_by(VideoIndex.ready_at.desc(),
                                                                             VideoIndex.id.desc())
    else:
        query = query.order_by(VideoIndex.created_at.desc(), VideoIndex.id.desc())
    return session.scalars(query.limit(1)).first()


def index_to_dict(session: Session, index: VideoIndex, video_id: str) -> dict[str, Any]:
    job = session.get(Job, index.job_id) if index.job_id else None
    tracks = session.scalars(select(ProductTrack.id).where(ProductTrack.index_id == index.id)).all() \
        if index.state == "ready" else []
    return {
        "id": index.id, "video_id": video_id, "asset_id": index.asset_id, "state": public_state(index.state, job),
        "progress": 100.0 if index.state == "ready" else (job.progress if job else 0.0),
        "detector": index.detector, "fps": index.fps, "frame_count": index.frame_count,
        "width": index.width, "height": index.height, "duration": index.duration,
        "track_count": len(tracks),
        "contact_sheet_url": signed_url(index.contact_sheet_key) if index.contact_sheet_key else None,
        "stats": index.stats or {}, "job": job_to_dict(job) if job else None,
        "created_at": index.created_at.isoformat(),
        "ready_at": index.ready_at.isoformat() if index.ready_at else None,
    }


# ------------------------------------------------------------------------------------------- tracks


def effective_sku(track: ProductTrack) -> str | None:
    return track.confirmed_sku if track.state == "confirmed" else track.sku


def track_to_dict(track: ProductTrack, *, with_samples: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": track.id, "number": track.number, "sku": effective_sku(track), "detected_sku": track.sku,
        "sku_confidence": track.sku_confidence,
        "candidates": [{"sku": sku, "score": score} for sku, score in track.candidates],
        "state": track.state, "confirmed_sku": track.confirmed_sku, "start": track.start_t, "end": track.end_t,
        "sample_count": len(track.samples),
        "reviewed_at": track.reviewed_at.isoformat() if track.reviewed_at else None,
    }
    if with_samples:
        data["samples"] = [{k: s[k] for k in ("t", "box", "score", "sku")} for s in track.samples]
    return data


def get_track(session: Session, merchant_id: str, asset_id: str, track_id: str) -> ProductTrack:
    track = session.scalar(select(ProductTrack).join(VideoIndex, VideoIndex.id == ProductTrack.index_id).where(
        ProductTrack.id == track_id, ProductTrack.merchant_id == merchant_id, VideoIndex.asset_id == asset_id))
    if track is None:
        raise NotFound(f"no track {track_id!r} in this video", code="track_not_found")
    return track


def review_track(session: Session, track: ProductTrack, body: Mapping[str, Any]) -> ProductTrack:
    """Confirm a track's SKU, correct it (``{"sku": "..."}``) or reject the track (``{"state": "rejected"}``)."""
    unknown = sorted(set(body) - {"sku", "state"})
    if unknown or not body:
        raise BadRequest("send {\"sku\": \"...\"} to confirm or correct, or {\"state\": \"rejected\"|\"detected\"}",
                         code="invalid_review")
    state = body.get("state", "confirmed" if "sku" in body else None)
    if state not in TRACK_STATES:
        raise BadRequest(f"state must be one of {', '.join(TRACK_STATES)}", code="invalid_review")
    sku = None
    if state == "confirmed":
        sku = check_sku(body.get("sku", track.sku))
        get_product(session, track.merchant_id, sku)  # must be in the catalog
    elif "sku" in body:
        raise BadRequest("a SKU can only be given when confirming (state 'confirmed')", code="invalid_review")
    begin_write(session)
    track.state, track.confirmed_sku, track.reviewed_at = state, sku, utcnow()
    session.commit()
    return track


def tap_cutouts_prefix(merchant_id: str, asset_id: str) -> str:
    """Where the cut-outs of on-demand taps on a video asset are kept."""
    return f"taps/{merchant_id}/{asset_id}"


def indexes_of_asset(session: Session, asset: Asset) -> Dependents:
    """A video's indexes (tracks go with them by cascade), their files and the cut-outs of its taps."""
    indexes = session.scalars(select(VideoIndex).where(VideoIndex.asset_id == asset.id)).all()
    return Dependents(job_ids=[index.job_id for index in indexes if index.job_id],
                      prefixes=[tap_cutouts_prefix(asset.merchant_id, asset.id),
                                *(index_prefix(asset.merchant_id, index.id) for index in indexes)])


def list_tracks(session: Session, index: VideoIndex) -> list[ProductTrack]:
    return list(session.scalars(select(ProductTrack).where(ProductTrack.index_id == index.id)
                                .order_by(ProductTrack.start_t, ProductTrack.number)))
