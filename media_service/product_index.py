"""Product extraction from videos, as a service: indexing jobs, tracks and their review, taps, add to cart.

Coordinates in and out are normalised to 0..1 of the displayed (upright) video frame, origin top left,
and times are seconds from the start of the video: the widget never needs to know the resolution.

A tap at ``t`` first looks at the newest ready index's tracks (their box at ``t`` interpolated between
samples); a hit answers from storage only (the stored frame and outline are cropped into a PNG once,
then reused). Without a track there (or without an index) the frame is detected on demand, and cut out
with GrabCut seeded by the detection and the shopper's lasso. Nothing found is an empty answer, not an
error. Every answer with a product carries a signed cart token; confirming the cart with it calls the
merchant's signed cart webhook.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from media_service.assets import get_asset
from media_service.db import begin_write
from media_service.deletion import Dependents, asset_dependents
from media_service.detection.base import DETECTOR_NAMES
from media_service.detection.cutout import CutOut, cut_out, encode_png, render_cutout
from media_service.detection.detections import CANDIDATES, MASK_PRIOR, POLYGON, Detections
from media_service.detection.frames import VideoGeometry, decode_frame_at
from media_service.detection.taps import detect_around, detection_under, is_certain
from media_service.detection.tracking import is_certain_track
from media_service.errors import BadRequest, Conflict, Forbidden, InvalidMedia, NotFound
from media_service.jobs.base import FINISHED_STATES
from media_service.jobs.queue import enqueue, job_to_dict
from media_service.jobs.webhooks import check_webhook_url, new_secret, sign
from media_service.links import check_link, link_expiry, link_signature
from media_service.models import Asset, Job, ProductTrack, VideoIndex, Webhook, WebhookDelivery, utcnow
from media_service.pipelines.video_index import JOB_KIND, index_prefix, read_packed_frame
from media_service.products import (
    catalog_entries,
    catalog_fingerprint,
    check_sku,
    get_product,
    product_card,
    products_by_sku,
)
from media_service.storage import Storage

CART_EVENT = "cart.add"
CART_TOKEN_PREFIX = "mct1"
TRACK_STATES = ("detected", "confirmed", "rejected")
POINT_TOLERANCE = 0.015  # a tap this close to a box (share of the frame) still hits it
HIDDEN = "hidden"


# ------------------------------------------------------------------------------------------- videos


def resolve_video(session: Session, merchant_id: str, video_id: str) -> tuple[Asset, str | None]:
    """The video asset behind ``video_id``: a video asset (``ast_...``) or a processed video (``vid_...``).

    Processed videos (any profile: promo, buyer show ...) are indexed through their source asset, so an
    index serves every processing of the same upload. Another merchant's ids are not found.
    """
    if video_id.startswith("vid_"):
        from media_service import models

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


def _index_state(index: VideoIndex, job: Job | None) -> str:
    if index.state == "ready":
        return "ready"
    if job is None:
        return index.state
    return job.state if job.state in FINISHED_STATES or job.state == "running" else "queued"


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
    existing = session.scalar(select(Job).where(Job.merchant_id == merchant_id, Job.idempotency_key == key))
    if existing is not None:
        index = session.scalar(select(VideoIndex).where(VideoIndex.job_id == existing.id))
        if index is not None:
            return index, existing, False
    begin_write(session)
    index = VideoIndex(merchant_id=merchant_id, asset_id=asset.id, video_id=video_ref, detector=detector,
                       fps=float(fps), catalog_fingerprint=fingerprint)
    session.add(index)
    session.flush()
    params["index_id"] = index.id
    job, created = enqueue(session, JOB_KIND, params, merchant_id=merchant_id, idempotency_key=key)
    if not created:  # the same request raced us
        session.rollback()
        index = session.scalar(select(VideoIndex).where(VideoIndex.job_id == job.id))
        if index is None:
            raise Conflict("the same index request is being created; retry", code="index_in_progress")
        return index, job, False
    index.job_id = job.id
    session.commit()
    return index, job, True


def _torchvision_model(settings: Mapping[str, Any], merchant_id: str) -> str:
    from media_service.model_files import models_dir_for, read_manifest

    name = str(settings["TORCHVISION_MODEL"]).replace("{merchant_id}", merchant_id)
    models_dir = models_dir_for(settings)
    if not any(entry.name == name for entry in read_manifest(models_dir)):
        raise InvalidMedia(f"no torchvision detector {name!r} in the models manifest; train one with "
                           "'media-service models train-detector' or index with detector 'catalog'",
                           code="model_missing")
    return name


def latest_index(session: Session, merchant_id: str, asset_id: str, *, ready: bool) -> VideoIndex | None:
    query = select(VideoIndex).where(VideoIndex.merchant_id == merchant_id, VideoIndex.asset_id == asset_id)
    if ready:
        query = query.where(VideoIndex.state == "ready").order_by(VideoIndex.ready_at.desc(), VideoIndex.id.desc())
    else:
        query = query.order_by(VideoIndex.created_at.desc(), VideoIndex.id.desc())
    return session.scalars(query.limit(1)).first()


def index_to_dict(session: Session, index: VideoIndex, video_id: str) -> dict[str, Any]:
    from media_service.api.files import signed_url

    job = session.get(Job, index.job_id) if index.job_id else None
    tracks = session.scalars(select(ProductTrack.id).where(ProductTrack.index_id == index.id)).all() \
        if index.state == "ready" else []
    return {
        "id": index.id, "video_id": video_id, "asset_id": index.asset_id, "state": _index_state(index, job),
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


@asset_dependents
def _indexes_of_asset(session: Session, asset: Asset) -> Dependents:
    """A video's indexes (tracks go with them by cascade), their files and the cut-outs of its taps."""
    indexes = session.scalars(select(VideoIndex).where(VideoIndex.asset_id == asset.id)).all()
    return Dependents(job_ids=[index.job_id for index in indexes if index.job_id],
                      prefixes=[tap_cutouts_prefix(asset.merchant_id, asset.id),
                                *(index_prefix(asset.merchant_id, index.id) for index in indexes)])


# --------------------------------------------------------------------------------------------- taps


@dataclass(frozen=True)
class Tap:
    """A shopper's tap (a point) or circle (a lasso polygon) at ``t`` seconds, normalised coordinates."""

    t: float
    point: tuple[float, float] | None = None
    polygon: np.ndarray | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.point is not None:
            return {"t": self.t, "x": self.point[0], "y": self.point[1]}
        return {"t": self.t, "polygon": [[float(x), float(y)] for x, y in self.polygon]}  # type: ignore[union-attr]


def _unit(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise BadRequest(f"{name} must be a number from 0 to 1 (a share of the frame's width or height)",
                         code="invalid_tap")
    return float(value)


def parse_tap(body: Mapping[str, Any], settings: Mapping[str, Any]) -> Tap:
    """``{t, x, y}`` or ``{t, polygon: [[x, y], ...]}``, validated once."""
    t = body.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or not 0 <= t <= 86400:
        raise BadRequest("t must be the playback time in seconds (a number >= 0)", code="invalid_tap")
    unknown = sorted(set(body) - {"t", "x", "y", "polygon"})
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}; send {{t, x, y}} or {{t, polygon}}",
                         code="invalid_tap")
    has_point = "x" in body or "y" in body
    if has_point == ("polygon" in body):
        raise BadRequest("send either a point {t, x, y} or a lasso {t, polygon}", code="invalid_tap")
    if has_point:
        return Tap(t=float(t), point=(_unit(body.get("x"), "x"), _unit(body.get("y"), "y")))
    polygon = body["polygon"]
    limit = int(settings["TAP_MAX_POLYGON_POINTS"])
    if not isinstance(polygon, list) or not 3 <= len(polygon) <= limit \
            or not all(isinstance(p, list) and len(p) == 2 for p in polygon):
        raise BadRequest(f"polygon must be a list of 3-{limit} [x, y] points", code="invalid_tap")
    points = np.array([[_unit(x, "polygon x"), _unit(y, "polygon y")] for x, y in polygon], np.float32)
    if cv2.contourArea(points.reshape(-1, 1, 2)) < 1e-5:
        raise BadRequest("the polygon encloses no area", code="invalid_tap")
    return Tap(t=float(t), polygon=points)


def _box_at(track: ProductTrack, t: float, fps: float) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The track's box at ``t`` (linear between samples) and the nearest sample, or None if absent then."""
    samples = track.samples
    half = 0.5 / fps
    if not samples or t < samples[0]["t"] - half or t > samples[-1]["t"] + half:
        return None
    times = [s["t"] for s in samples]
    position = int(np.searchsorted(times, t))
    before = samples[max(position - 1, 0)]
    after = samples[min(position, len(samples) - 1)]
    nearest = before if abs(before["t"] - t) <= abs(after["t"] - t) else after
    if after["t"] - before["t"] > 3.0 / fps:  # a gap in the track: only near its samples
        if abs(nearest["t"] - t) > half:
            return None
        return np.array(nearest["box"], np.float32), nearest
    if after["t"] == before["t"]:
        return np.array(nearest["box"], np.float32), nearest
    u = (t - before["t"]) / (after["t"] - before["t"])
    box = (1 - u) * np.array(before["box"], np.float32) + u * np.array(after["box"], np.float32)
    return box.astype(np.float32), nearest


def _hit_score(box: np.ndarray, tap: Tap) -> float | None:
    """How well a (normalised) box matches the tap; None when it does not."""
    if tap.point is not None:
        x, y = tap.point
        tol = POINT_TOLERANCE
        if not (box[0] - tol <= x <= box[2] + tol and box[1] - tol <= y <= box[3] + tol):
            return None
        area = float((box[2] - box[0]) * (box[3] - box[1]))
        return 1.0 / (1.0 + 10 * area)  # the smallest box under the finger is the most specific
    return _coverage(box, tap.polygon)  # type: ignore[arg-type]


def _coverage(box: np.ndarray, polygon: np.ndarray) -> float | None:
    """Overlap of a box and a lasso, rasterised on a 128 x 128 grid of the frame; None below half."""
    grid = 128
    lasso = np.zeros((grid, grid), np.uint8)
    cv2.fillPoly(lasso, [np.round(polygon * grid).astype(np.int32).reshape(-1, 1, 2)], 1)
    x0, y0, x1, y1 = (int(np.clip(round(v * grid), 0, grid)) for v in box)
    inside = float(lasso[y0:y1, x0:x1].sum())
    box_area = max((x1 - x0) * (y1 - y0), 1)
    lasso_area = max(float(lasso.sum()), 1.0)
    score = max(inside / box_area, inside / lasso_area)
    return score if score >= 0.5 else None


def _cart_token(secret: str, merchant_id: str, asset_id: str, skus: Sequence[str], t: float,
                track_id: str | None, seconds: int) -> dict[str, Any]:
    expires = int(time.time()) + seconds
    payload = json.dumps({"m": merchant_id, "a": asset_id, "s": list(skus), "t": round(t, 3), "k": track_id,
                          "e": expires}, separators=(",", ":")).encode()
    body = f"{CART_TOKEN_PREFIX}.{base64.urlsafe_b64encode(payload).rstrip(b'=').decode()}"
    signature = hmac.new(_cart_key(secret), body.encode(), hashlib.sha256).hexdigest()
    return {"token": f"{body}.{signature}", "expires_at": expires}


def _cart_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"media-service cart token v1", hashlib.sha256).digest()


def read_cart_token(secret: str, token: Any) -> dict[str, Any]:
    """The payload of a valid, unexpired cart token; 403 for anything else."""
    parts = token.split(".") if isinstance(token, str) and len(token) <= 4096 else []
    if len(parts) != 3 or parts[0] != CART_TOKEN_PREFIX:
        raise Forbidden("cart_token is not valid; tap the product again", code="invalid_cart_token")
    expected = hmac.new(_cart_key(secret), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts[2]):
        raise Forbidden("cart_token is not valid; tap the product again", code="invalid_cart_token")
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        raise Forbidden("cart_token is not valid", code="invalid_cart_token") from None
    if payload.get("e", 0) < time.time():
        raise Forbidden("cart_token expired; tap the product again", code="cart_token_expired")
    return payload


class TapService:
    """Answers taps. Holds the per-process caches (video geometry) and nothing else between requests."""

    _geometry: OrderedDict[str, VideoGeometry] = OrderedDict()
    _lock = threading.Lock()

    def __init__(self, session: Session, storage: Storage, settings: Mapping[str, Any], merchant_id: str) -> None:
        self.session, self.storage, self.settings, self.merchant_id = session, storage, settings, merchant_id

    def answer(self, asset: Asset, video_id: str, tap: Tap) -> dict[str, Any]:
        index = latest_index(self.session, self.merchant_id, asset.id, ready=True)
        entries = catalog_entries(self.session, self.merchant_id)
        if index is not None:
            found = self._from_tracks(index, tap)
            if found == HIDDEN:
                return self._empty(video_id, tap, "the merchant hid the product found here")
            if found is not None:
                return self._respond(asset, video_id, tap, **found)
            # No track under the tap: the index may have missed a small product (it searches whole frames at
            # a small working size), so a point tap, like a lasso, gets a closer look on demand.
        if index is None and entries and self.settings["TAP_AUTO_INDEX"]:
            self._queue_index(asset)
        if self.settings["TAP_ON_DEMAND"] and entries:
            found = self._on_demand(asset, index, tap, entries)
            if found is not None:
                return self._respond(asset, video_id, tap, **found)
        return self._empty(video_id, tap, "no product of the catalog at this place and time")

    def _queue_index(self, asset: Asset) -> None:
        """Index a video shoppers tap on (once per video and catalog: the job is idempotent)."""
        if latest_index(self.session, self.merchant_id, asset.id, ready=False) is not None:
            return  # one is queued or running (or failed: the merchant decides about retrying)
        try:
            start_index(self.session, self.settings, self.merchant_id, asset.id, {})
        except (Conflict, InvalidMedia, BadRequest):
            self.session.rollback()

    @staticmethod
    def _empty(video_id: str, tap: Tap, reason: str, **known: Any) -> dict[str, Any]:
        return {"video_id": video_id, "tap": tap.as_dict(), "hit": False, "source": None, "product": None,
                "candidates": [], "box": None, "cutout": None, "track_id": None, "frame_t": None, "cart": None,
                "confidence": None, "uncertain": False, **known, "reason": reason}

    # -- hits on tracks: storage reads only

    def _from_tracks(self, index: VideoIndex, tap: Tap) -> dict[str, Any] | str | None:
        """The best track under the tap (``HIDDEN`` when the merchant rejected it), or None."""
        margin = 0.5 / index.fps
        tracks = self.session.scalars(select(ProductTrack).where(
            ProductTrack.index_id == index.id,
            ProductTrack.start_t <= tap.t + margin, ProductTrack.end_t >= tap.t - margin)).all()
        hits = []
        for track in tracks:
            placed = _box_at(track, tap.t, index.fps)
            if placed is None:
                continue
            score = _hit_score(placed[0], tap)
            if score is not None:
                hits.append((score, track.sku_confidence, track, placed))
        if not hits:
            return None
        hits.sort(key=lambda h: (-h[0], -h[1]))
        if hits[0][2].state == "rejected":
            return HIDDEN
        hits = [hit for hit in hits if hit[2].state != "rejected"]
        _, _, track, (box, sample) = hits[0]
        candidates = [(track.confirmed_sku, 1.0)] if track.state == "confirmed" else []
        candidates += [(sku, score) for sku, score in track.candidates if sku != track.confirmed_sku]
        for _, _, other, _ in hits[1:]:  # other products under the finger are runners-up
            sku = effective_sku(other)
            if sku and all(sku != c[0] for c in candidates):
                candidates.append((sku, round(other.sku_confidence * 0.5, 4)))
        cutout = self._track_cutout(index, track, sample)
        certain = track.state == "confirmed" or is_certain_track(track.sku, track.samples)
        return {"source": "track", "candidates": candidates, "box": box, "cutout": cutout, "track_id": track.id,
                "frame_t": sample["t"], "certain": certain}

    def _track_cutout(self, index: VideoIndex, track: ProductTrack, sample: Mapping[str, Any]) -> dict[str, Any] | None:
        """A signed URL that renders the cut-out when first fetched (the tap itself stays a lookup)."""
        cut = sample.get("cut")
        if not cut or not index.output_prefix:
            return None
        width, height = index.width or 1, index.height or 1
        box = (int(np.floor(cut[0] * width)), int(np.floor(cut[1] * height)), int(np.ceil(cut[2] * width)),
               int(np.ceil(cut[3] * height)))
        url = cutout_url(self.settings, index.id, track.number, int(sample["frame"]))
        return self._cutout_dict(url, box, width, height, signed=True)

    # -- no track: detect now

    def _frame_for(self, asset: Asset, index: VideoIndex | None, t: float) -> tuple[np.ndarray, float] | None:
        if index is not None and index.output_prefix and index.frame_count:
            frame_index = min(max(round(t * index.fps), 0), index.frame_count - 1)
            if abs(frame_index / index.fps - t) <= 1.0 / index.fps:
                with self.storage.open(f"{index.output_prefix}/frames.pack") as handle:
                    frame = read_packed_frame(handle, frame_index)
                if frame is not None:
                    return frame, frame_index / index.fps
        if asset.duration is not None and t > asset.duration + 0.5:
            return None
        with self.storage.local_path(asset.storage_key) as path:
            geometry = self._geometry_of(asset, path)
            frame = decode_frame_at(path, t, demuxer=asset.format, geometry=geometry,
                                    max_side=int(self.settings["INDEX_FRAME_SIDE"]), settings=self.settings)
        return (frame, t) if frame is not None else None

    def _geometry_of(self, asset: Asset, path: Path) -> VideoGeometry:
        with self._lock:
            cached = self._geometry.get(asset.id)
        if cached is None:
            cached = VideoGeometry.probe(path, asset.format, self.settings)
            with self._lock:
                self._geometry[asset.id] = cached
                while len(self._geometry) > 256:
                    self._geometry.popitem(last=False)
        return cached

    def _on_demand(self, asset: Asset, index: VideoIndex | None, tap: Tap,
                   entries: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        from media_service.products import cached_catalog_detector

        located = self._frame_for(asset, index, tap.t)
        if located is None:
            return None
        frame, frame_t = located
        height, width = frame.shape[:2]
        detector = cached_catalog_detector(self.storage, self.settings, self.merchant_id, entries)
        if tap.point is not None:  # around the finger, at a higher resolution than the whole frame
            point = (tap.point[0] * width, tap.point[1] * height)
            detections = detect_around(detector, frame, point)
            best = detection_under(detections, point, tolerance=POINT_TOLERANCE * max(width, height))
        else:
            detections = detector.detect(frame)
            best = self._best_detection(detections, tap, width, height)
        if best is None:
            return None
        box = detections.xyxy[best]
        prior = detections.data[POLYGON][best] if POLYGON in detections.data else None
        mask_prior = detections.data[MASK_PRIOR][best] if MASK_PRIOR in detections.data else None
        lasso = tap.polygon * [width, height] if tap.polygon is not None else None
        cut = cut_out(frame, box=None if lasso is not None else box, lasso=lasso, prior=prior, mask_prior=mask_prior)
        cutout = self._store_cutout(asset, tap, cut, width, height) if cut is not None else None
        candidates = [(str(s), float(v)) for s, v in detections.data[CANDIDATES][best]] \
            if CANDIDATES in detections.data else [(detections.skus[best], float(detections.confidence[best]))]
        return {"source": "on_demand", "candidates": candidates, "box": box / [width, height, width, height],
                "cutout": cutout, "track_id": None, "frame_t": frame_t, "certain": is_certain(detections, best)}

    @staticmethod
    def _best_detection(detections: Detections, tap: Tap, width: int, height: int) -> int | None:
        best, best_score = None, -1.0
        for i in range(len(detections)):
            box = detections.xyxy[i] / [width, height, width, height]
            score = _hit_score(box.astype(np.float32), tap)
            if score is not None and (score, detections.confidence[i]) > (best_score, -1):
                best, best_score = i, score
        return best

    def _store_cutout(self, asset: Asset, tap: Tap, cut: CutOut, width: int, height: int) -> dict[str, Any]:
        digest = hashlib.sha256(json.dumps(tap.as_dict(), sort_keys=True).encode()).hexdigest()[:24]
        key = f"{tap_cutouts_prefix(self.merchant_id, asset.id)}/{digest}.png"
        self.storage.put_stream(key, io.BytesIO(encode_png(cut.rgba)))
        return self._cutout_dict(key, cut.box, width, height)

    @staticmethod
    def _cutout_dict(key: str, box: Sequence[int], width: int, height: int, signed: bool = False) -> dict[str, Any]:
        from media_service.api.files import signed_url

        x0, y0, x1, y1 = box
        return {"url": key if signed else signed_url(key), "width": int(x1 - x0), "height": int(y1 - y0),
                "box": [round(x0 / width, 5), round(y0 / height, 5), round(x1 / width, 5), round(y1 / height, 5)]}

    # -- the answer

    def _respond(self, asset: Asset, video_id: str, tap: Tap, *, source: str, candidates: list[tuple[str, float]],
                 box: np.ndarray, cutout: dict[str, Any] | None, track_id: str | None,
                 frame_t: float, certain: bool = True) -> dict[str, Any]:
        """The answer with a product. When the SKU is not certain (variants of one design, a view the catalog
        lacks), ``product`` is None, ``uncertain`` is true and ``candidates`` are offered to choose from: a
        wrong product in a shopper's cart is worse than a question."""
        products = products_by_sku(self.session, self.merchant_id, [sku for sku, _ in candidates if sku])
        offered = [(sku, score) for sku, score in candidates if sku in products]
        if not offered:  # detected SKUs that left the catalog since
            return self._empty(video_id, tap, "the product found here is no longer in the catalog", source=source,
                               track_id=track_id, frame_t=frame_t)
        cards = [{**product_card(self.session, products[sku]), "score": round(float(score), 4)}
                 for sku, score in offered]
        cart = _cart_token(self.settings["SECRET_KEY"], self.merchant_id, asset.id, [sku for sku, _ in offered],
                           tap.t, track_id, int(self.settings["CART_TOKEN_SECONDS"]))
        return {"video_id": video_id, "tap": tap.as_dict(), "hit": True, "source": source,
                "product": cards[0] if certain else None, "candidates": cards, "box": [round(float(v), 5) for v in box],
                "cutout": cutout, "track_id": track_id, "frame_t": round(float(frame_t), 3), "cart": cart,
                "confidence": cards[0]["score"], "uncertain": not certain,
                "reason": None if certain else "not sure which product this is: choose one of the candidates"}


def cutout_url(settings: Mapping[str, Any], index_id: str, number: int, frame: int) -> str:
    """A signed, expiring URL of a track's cut-out in one indexed frame (rendered on first fetch)."""
    from flask import url_for

    expires = link_expiry(settings["SIGNED_URL_SECONDS"])
    signature = link_signature(settings["SECRET_KEY"], "cutout", index_id, number, frame, expires)
    values = {"index_id": index_id, "number": number, "frame": frame, "expires": expires, "signature": signature}
    base = str(settings.get("PUBLIC_URL") or "").rstrip("/")
    return base + url_for("video_index.cutout", **values) if base else \
        url_for("video_index.cutout", _external=True, **values)


def check_cutout_signature(settings: Mapping[str, Any], index_id: str, number: int, frame: int, expires: Any,
                           signature: str) -> int:
    """The expiry of a valid cut-out link; 403 otherwise."""
    return check_link(settings["SECRET_KEY"], ("cutout", index_id, number, frame), expires, signature,
                      fresh="tap again for a fresh one")


def render_track_cutout(session: Session, storage: Storage, index_id: str, number: int, frame: int) -> bytes:
    """PNG bytes of a track's cut-out in one indexed frame: from storage, or cropped and stored once."""
    index = session.get(VideoIndex, index_id)
    if index is None or not index.output_prefix:
        raise NotFound("this cut-out no longer exists", code="cutout_not_found")
    key = f"{index.output_prefix}/cutouts/{number}-{frame}.png"
    if storage.exists(key):
        with storage.open(key) as handle:
            return handle.read()
    track = session.scalar(select(ProductTrack).where(ProductTrack.index_id == index_id,
                                                      ProductTrack.number == number))
    position = next((i for i, s in enumerate(track.samples if track else []) if s["frame"] == frame), None)
    polygon = track.outlines[position] if track is not None and position is not None \
        and position < len(track.outlines or []) else None
    if not polygon:
        raise NotFound("this cut-out no longer exists", code="cutout_not_found")
    with storage.open(f"{index.output_prefix}/frames.pack") as handle:
        image = read_packed_frame(handle, frame)
    cut = render_cutout(image, np.array(polygon, np.float32) * [image.shape[1], image.shape[0]]) \
        if image is not None else None
    if cut is None:
        raise NotFound("this cut-out is empty", code="cutout_not_found")
    data = encode_png(cut.rgba)
    storage.put_stream(key, io.BytesIO(data))
    return data


# --------------------------------------------------------------------------------------------- cart


def cart_webhook(session: Session, merchant_id: str) -> Webhook | None:
    hooks = session.scalars(select(Webhook).where(Webhook.merchant_id == merchant_id)).all()
    return next((hook for hook in hooks if hook.events == [CART_EVENT]), None)


def put_cart_webhook(session: Session, settings: Mapping[str, Any], merchant_id: str, url: Any,
                     rotate: bool = False) -> tuple[Webhook, bool]:
    """Create or change the merchant's cart webhook (a webhook row subscribed to ``cart.add`` only)."""
    if not isinstance(url, str) or len(url) > 2000:
        raise BadRequest("url must be a string of at most 2000 characters", code="invalid_webhook_url")
    check_webhook_url(url, allow_private=settings["WEBHOOK_ALLOW_PRIVATE_NETWORKS"])
    hook = cart_webhook(session, merchant_id)
    begin_write(session)
    fresh = hook is None
    if hook is None:
        hook = Webhook(merchant_id=merchant_id, url=url, events=[CART_EVENT], secret=new_secret())
        session.add(hook)
    else:
        hook.url = url
        if rotate:
            hook.secret = new_secret()
    session.commit()
    return hook, fresh or rotate


def confirm_cart(session: Session, settings: Mapping[str, Any], merchant_id: str, asset: Asset, video_id: str,
                 body: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The shopper confirmed "add to cart": call the merchant's cart webhook (signed) and say how it went.

    The delivery is written to the webhook outbox first, so a merchant endpoint that is down gets it
    later (retried by the workers); the shopper's answer says ``delivered`` or ``queued``.
    """
    unknown = sorted(set(body) - {"cart_token", "sku", "quantity", "shopper_ref"})
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}", code="unknown_fields")
    claims = read_cart_token(settings["SECRET_KEY"], body.get("cart_token"))
    if claims.get("m") != merchant_id or claims.get("a") != asset.id:
        raise Forbidden("cart_token was issued for another video", code="invalid_cart_token")
    sku = check_sku(body.get("sku"))
    if sku not in claims.get("s", []):
        raise BadRequest(f"SKU {sku!r} was not offered by this tap; choose one of its candidates",
                         code="sku_not_offered")
    quantity = body.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 999:
        raise BadRequest("quantity must be a whole number from 1 to 999", code="invalid_quantity")
    shopper_ref = body.get("shopper_ref")
    if shopper_ref is not None and (not isinstance(shopper_ref, str) or len(shopper_ref) > 200):
        raise BadRequest("shopper_ref must be a string of at most 200 characters", code="invalid_shopper_ref")
    product = get_product(session, merchant_id, sku)
    card = product_card(session, product)
    hook = cart_webhook(session, merchant_id)
    if hook is None:
        return {"state": "no_webhook", "product": card, "delivery_id": None,
                "detail": "this shop has no cart webhook; send the shopper to the product's url"}, 200
    payload = {"event": CART_EVENT, "created_at": utcnow().isoformat(), "data": {
        **{k: card[k] for k in ("sku", "title", "price", "currency", "url")}, "quantity": quantity,
        "video_id": video_id, "asset_id": asset.id, "t": claims.get("t"), "track_id": claims.get("k"),
        "shopper_ref": shopper_ref}}
    begin_write(session)
    timeout = float(settings["WEBHOOK_TIMEOUT_SECONDS"])
    # Leased for this request (next_attempt_at in the future), so a worker does not send it meanwhile.
    delivery = WebhookDelivery(webhook_id=hook.id, event=CART_EVENT, payload=payload,
                               next_attempt_at=utcnow() + timedelta(seconds=timeout * 3))
    session.add(delivery)
    session.commit()
    status, error, reply = _post_now(hook, delivery, settings)
    delivery.attempts = 1
    delivery.last_status, delivery.last_error = status, error
    delivered = status is not None and 200 <= status < 300
    if delivered:
        delivery.state, delivery.delivered_at = "delivered", utcnow()
    else:
        delivery.next_attempt_at = utcnow() + timedelta(seconds=float(settings["WEBHOOK_BACKOFF_SECONDS"]))
    session.commit()
    return {"state": "delivered" if delivered else "queued", "product": card, "delivery_id": delivery.id,
            "merchant_status": status, "merchant_response": reply}, 200 if delivered else 202


def _post_now(hook: Webhook, delivery: WebhookDelivery, settings: Mapping[str, Any]
              ) -> tuple[int | None, str | None, Any]:
    """Deliver once, the same way (body, signature) the outbox retries would."""
    from media_service.jobs.webhooks import SIGNATURE_HEADER

    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "media-service-webhooks/1",
               "Media-Service-Event": delivery.event, "Media-Service-Delivery": delivery.id,
               "Idempotency-Key": delivery.id, SIGNATURE_HEADER: sign(hook.secret, body, int(time.time()))}
    try:
        check_webhook_url(hook.url, allow_private=settings["WEBHOOK_ALLOW_PRIVATE_NETWORKS"])
        response = requests.post(hook.url, data=body, headers=headers, timeout=settings["WEBHOOK_TIMEOUT_SECONDS"],
                                 allow_redirects=False)
    except (requests.RequestException, BadRequest) as exc:
        return None, str(exc)[:500], None
    reply = None
    if response.headers.get("Content-Type", "").startswith("application/json") and len(response.content) <= 8192:
        try:
            reply = response.json()
        except ValueError:
            reply = None
    return response.status_code, None if response.ok else response.text[:500], reply


def delete_cart_webhook(session: Session, merchant_id: str) -> None:
    hook = cart_webhook(session, merchant_id)
    if hook is None:
        raise NotFound("this shop has no cart webhook", code="cart_webhook_not_found")
    begin_write(session)
    session.delete(hook)
    session.commit()


def list_tracks(session: Session, index: VideoIndex) -> list[ProductTrack]:
    return list(session.scalars(select(ProductTrack).where(ProductTrack.index_id == index.id)
                                .order_by(ProductTrack.start_t, ProductTrack.number)))

