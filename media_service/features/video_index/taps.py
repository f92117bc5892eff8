"""Answering a shopper's tap (a point) or circle (a lasso) on a video with the product there.

A tap at ``t`` first looks at the newest ready index's tracks (their box at ``t`` interpolated between
samples); a hit answers from storage only (the stored frame and outline are cropped into a PNG once,
then reused). Without a track there (or without an index) the frame is detected on demand, and cut out
with GrabCut seeded by the detection and the shopper's lasso. Nothing found is an empty answer, not an
error. Every answer with a product carries a signed cart token (``cart.py``).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from media_service import media_options
from media_service.errors import BadRequest, Conflict, InvalidMedia
from media_service.features.products.service import (
    cached_catalog_detector,
    catalog_entries,
    product_card,
    products_by_sku,
)
from media_service.features.video_index.cart import cart_token
from media_service.features.video_index.cutouts import cutout_url
from media_service.features.video_index.job import read_packed_frame
from media_service.features.video_index.service import (
    effective_sku,
    latest_index,
    start_index,
    tap_cutouts_prefix,
)
from media_service.media.detection.cutout import CutOut, cut_out, encode_png
from media_service.media.detection.detections import CANDIDATES, MASK_PRIOR, POLYGON, Detections
from media_service.media.detection.frames import VideoGeometry, decode_frame_at
from media_service.media.detection.taps import detect_around, detection_under, is_certain
from media_service.media.detection.tracking import is_certain_track
from media_service.models import Asset, ProductTrack, VideoIndex
from media_service.storage import Storage
from media_service.web.files import signed_url

POINT_TOLERANCE = 0.015  # a tap this close to a box (share of the frame) still hits it
HIDDEN = "hidden"


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
                                    max_side=int(self.settings["INDEX_FRAME_SIDE"]),
                                    limits=media_options.ingest_limits(self.settings))
        return (frame, t) if frame is not None else None

    def _geometry_of(self, asset: Asset, path: Path) -> VideoGeometry:
        with self._lock:
            cached = self._geometry.get(asset.id)
        if cached is None:
            cached = VideoGeometry.probe(path, asset.format, media_options.ingest_limits(self.settings))
            with self._lock:
                self._geometry[asset.id] = cached
                while len(self._geometry) > 256:
                    self._geometry.popitem(last=False)
        return cached

    def _on_demand(self, asset: Asset, index: VideoIndex | None, tap: Tap,
                   entries: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
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
        lasso = tap.polygon * [width, height] if tap.polygon is not None else None
        mask_prior = detections.data[MASK_PRIOR][best] if MASK_PRIOR in detections.data else None
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
        cart = cart_token(self.settings["SECRET_KEY"], self.merchant_id, asset.id, [sku for sku, _ in offered],
                           tap.t, track_id, int(self.settings["CART_TOKEN_SECONDS"]))
        return {"video_id": video_id, "tap": tap.as_dict(), "hit": True, "source": source,
                "product": cards[0] if certain else None, "candidates": cards, "box": [round(float(v), 5) for v in box],
                "cutout": cutout, "track_id": track_id, "frame_t": round(float(frame_t), 3), "cart": cart,
                "confidence": cards[0]["score"], "uncertain": not certain,
                "reason": None if certain else "not sure which product this is: choose one of the candidates"}
