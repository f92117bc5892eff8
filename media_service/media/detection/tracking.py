"""Detections across frames into product tracks (ByteTrack-style IoU association) with SKU votes.

Each frame: tracks predict their box (constant velocity), confident detections are matched to them by
IoU first, then the weak ones to the tracks still unmatched (ByteTrack's second pass: a product that
got blurry for a frame keeps its track), and confident leftovers start new tracks. A track that goes
unmatched for ``max_lost`` frames ends. Each matched detection votes for its SKU with its confidence,
so one wrong frame does not rename a product; the track's SKU is the vote winner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from media_service.media.detection.detections import CANDIDATES, CERTAIN, POLYGON, Detections, iou_matrix

#: Share of a track's samples that must name its SKU with certainty for the track's SKU to be certain.
CERTAIN_SHARE = 0.5


def certain_share(sku: str | None, samples: Sequence[Any]) -> float:
    """Share of ``samples`` (``TrackSample``s or their stored dicts) that name ``sku`` with certainty.

    Stored samples of indexes made before detections carried certainty count as certain.
    """
    if not samples or sku is None:
        return 0.0
    def sure(sample: Any) -> bool:
        if isinstance(sample, TrackSample):
            return sample.certain and sample.sku == sku
        return bool(sample.get("certain", True)) and sample.get("sku") == sku
    return sum(sure(sample) for sample in samples) / len(samples)


def is_certain_track(sku: str | None, samples: Sequence[Any]) -> bool:
    """Whether a track's SKU is sure enough to answer a tap with it alone (else: offer the candidates)."""
    return certain_share(sku, samples) >= CERTAIN_SHARE


@dataclass
class TrackSample:
    """One detection of a track: when, where (frame pixels) and what it was taken for."""

    frame_index: int
    t: float
    xyxy: np.ndarray
    score: float
    sku: str | None
    polygon: np.ndarray | None = None
    candidates: list[tuple[str, float]] = field(default_factory=list)
    certain: bool = True  # the detection named its SKU with certainty


@dataclass
class Track:
    """A product followed through the video."""

    track_id: int
    samples: list[TrackSample] = field(default_factory=list)
    votes: dict[str, float] = field(default_factory=dict)
    lost: int = 0

    @property
    def start(self) -> float:
        return self.samples[0].t

    @property
    def end(self) -> float:
        return self.samples[-1].t

    @property
    def sku(self) -> str | None:
        """The SKU with the most confidence-weighted votes."""
        if not self.votes:
            return None
        return max(self.votes.items(), key=lambda kv: (kv[1], kv[0]))[0]

    @property
    def sku_confidence(self) -> float:
        """Share of all votes held by the winning SKU, times the mean detection score (0..1)."""
        total = sum(self.votes.values())
        if not total or not self.samples:
            return 0.0
        return float(self.votes[self.sku] / total * np.mean([s.score for s in self.samples]))  # type: ignore[index]

    @property
    def certain(self) -> bool:
        """Enough of the samples name the track's SKU with certainty (see :func:`is_certain_track`)."""
        return is_certain_track(self.sku, self.samples)

    def candidates(self, limit: int = 5) -> list[tuple[str, float]]:
        """SKUs with their share of the votes, best first (what a tap offers)."""
        total = sum(self.votes.values()) or 1.0
        mean_score = float(np.mean([s.score for s in self.samples])) if self.samples else 0.0
        ranked = sorted(self.votes.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [(sku, round(votes / total * mean_score, 4)) for sku, votes in ranked]

    def predicted_box(self) -> np.ndarray:
        """Where the product should be in the next frame: last box plus the last step's motion (damped)."""
        last = self.samples[-1].xyxy
        if len(self.samples) < 2:
            return last
        previous = self.samples[-2].xyxy
        gap = max(self.samples[-1].frame_index - self.samples[-2].frame_index, 1)
        step = (last - previous) / gap
        return last + step * (1 + self.lost) * 0.5

    def add(self, sample: TrackSample) -> None:
        self.samples.append(sample)
        self.lost = 0
        for sku, score in sample.candidates or ([(sample.sku, sample.score)] if sample.sku else []):
            # the detection's own SKU votes with its score; runners-up with theirs, so a close call stays visible
            weight = sample.score if sku == sample.sku else score * 0.5
            if not sample.certain:  # a close call counts less than a sure answer
                weight *= 0.5
            self.votes[sku] = self.votes.get(sku, 0.0) + weight


class ProductTracker:
    """Associates per-frame detections into tracks. Feed frames in order with :meth:`update`."""

    def __init__(self, *, high: float = 0.55, low: float = 0.3, match_iou: float = 0.3, max_lost: int = 4,
                 min_samples: int = 2) -> None:
        self.high, self.low, self.match_iou = high, low, match_iou
        self.max_lost, self.min_samples = max_lost, min_samples
        self.active: list[Track] = []
        self.finished: list[Track] = []
        self._next_id = 1

    def update(self, detections: Detections, frame_index: int, t: float) -> Detections:
        """Assign the frame's detections to tracks; returns them with ``tracker_id`` (-1: not tracked)."""
        ids = np.full(len(detections), -1, np.int64)
        confident = np.nonzero(detections.confidence >= self.high)[0]
        weak = np.nonzero((detections.confidence >= self.low) & (detections.confidence < self.high))[0]
        unmatched_tracks = list(range(len(self.active)))
        for group in (confident, weak):
            pairs = self._associate(detections, group, unmatched_tracks)
            for det_index, track_index in pairs:
                track = self.active[track_index]
                track.add(self._sample(detections, det_index, frame_index, t))
                ids[det_index] = track.track_id
                unmatched_tracks.remove(track_index)
        for det_index in confident:
            if ids[det_index] == -1:
                track = Track(track_id=self._next_id)
                self._next_id += 1
                track.add(self._sample(detections, int(det_index), frame_index, t))
                self.active.append(track)
                ids[det_index] = track.track_id
        for track_index in unmatched_tracks:
            self.active[track_index].lost += 1
        still: list[Track] = []
        for track in self.active:
            (self.finished if track.lost > self.max_lost else still).append(track)
        self.active = still
        return Detections(xyxy=detections.xyxy, confidence=detections.confidence, class_id=detections.class_id,
                          mask=detections.mask, tracker_id=ids, data=detections.data)

    def _associate(self, detections: Detections, candidates: np.ndarray,
                   track_indices: Sequence[int]) -> list[tuple[int, int]]:
        """Greedy matching by IoU (highest first) between detections and tracks' predicted boxes."""
        if len(candidates) == 0 or not track_indices:
            return []
        predicted = np.stack([self.active[i].predicted_box() for i in track_indices])
        ious = iou_matrix(detections.xyxy[candidates], predicted)
        skus = detections.skus
        for row, det_index in enumerate(candidates):  # the same SKU as the track breaks near-ties
            for col, track_index in enumerate(track_indices):
                if ious[row, col] > 0 and skus[det_index] == self.active[track_index].sku:
                    ious[row, col] += 0.05
        pairs: list[tuple[int, int]] = []
        used_rows: set[int] = set()
        used_cols: set[int] = set()
        for flat in np.argsort(-ious, axis=None):
            row, col = divmod(int(flat), ious.shape[1])
            if ious[row, col] < self.match_iou:
                break
            if row in used_rows or col in used_cols:
                continue
            used_rows.add(row)
            used_cols.add(col)
            pairs.append((int(candidates[row]), int(track_indices[col])))
        return pairs

    @staticmethod
    def _sample(detections: Detections, index: int, frame_index: int, t: float) -> TrackSample:
        polygons = detections.data.get(POLYGON)
        candidates = detections.data.get(CANDIDATES)
        certain = detections.data.get(CERTAIN)
        polygon = polygons[index] if polygons is not None else None
        return TrackSample(frame_index=frame_index, t=t, xyxy=detections.xyxy[index].copy(),
                           score=float(detections.confidence[index]), sku=detections.skus[index],
                           polygon=None if polygon is None else np.asarray(polygon, np.float32),
                           candidates=[(str(s), float(v)) for s, v in (candidates[index] if candidates is not None
                                                                       else [])],
                           certain=True if certain is None else bool(certain[index]))

    def finish(self) -> list[Track]:
        """All tracks with at least ``min_samples`` detections, in order of appearance."""
        tracks = [t for t in self.finished + self.active if len(t.samples) >= self.min_samples]
        self.active, self.finished = [], []
        return sorted(tracks, key=lambda t: (t.start, t.track_id))


def track_to_record(track: Track, width: int, height: int) -> dict[str, Any]:
    """A track as JSON with coordinates normalised to 0..1 of the frame (resolution-independent)."""
    def norm_box(box: np.ndarray) -> list[float]:
        return [round(float(box[0]) / width, 5), round(float(box[1]) / height, 5),
                round(float(box[2]) / width, 5), round(float(box[3]) / height, 5)]

    return {
        "number": track.track_id,
        "sku": track.sku,
        "sku_confidence": round(track.sku_confidence, 4),
        "certain": track.certain,
        "candidates": [[sku, score] for sku, score in track.candidates()],
        "start": round(track.start, 3),
        "end": round(track.end, 3),
        "samples": [{"frame": s.frame_index, "t": round(s.t, 3), "box": norm_box(s.xyxy), "score": round(s.score, 4),
                     "sku": s.sku, "certain": s.certain,
                     "cut": None if s.polygon is None or not len(s.polygon) else
                     norm_box(np.concatenate([s.polygon.min(axis=0), s.polygon.max(axis=0)])),
                     "polygon": None if s.polygon is None else
                     [[round(float(x) / width, 5), round(float(y) / height, 5)] for x, y in s.polygon]}
                    for s in track.samples],
    }
