"""What a tap on a frame finds: the detection under a point, and detection around a point on demand.

Pure functions over frames and ``Detections`` (no storage, no web): the tap service calls them for a
point tap the index has no track under, and the benchmarks call the same code.

A point tap where the index found nothing is not proof that nothing is there: the index looks at a
whole frame at a small working size, where a product 120 px high is 60 px, and keypoints of a small
product are few. Around the tap, a square of the frame is searched at a higher resolution instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from media_service.media.detection.base import Detector
from media_service.media.detection.detections import CERTAIN, MASK_PRIOR, POLYGON, Detections, _as_object_array


def detection_under(detections: Detections, point: tuple[float, float], tolerance: float = 0.0) -> int | None:
    """The detection whose box holds ``point`` (pixels; ``tolerance`` pixels of slack), the smallest box
    first (the most specific product under the finger), then the most confident; None when none does."""
    x, y = point
    best: tuple[float, float] | None = None
    found = None
    for i, (x0, y0, x1, y1) in enumerate(detections.xyxy):
        if not (x0 - tolerance <= x <= x1 + tolerance and y0 - tolerance <= y <= y1 + tolerance):
            continue
        key = (float((x1 - x0) * (y1 - y0)), -float(detections.confidence[i]))
        if best is None or key < best:
            best, found = key, i
    return found


def region_around(point: tuple[float, float], frame_size: tuple[int, int], side: float) -> tuple[int, int, int, int]:
    """A ``side`` x ``side`` square (pixels) centred on ``point`` and shifted to lie inside the frame."""
    width, height = frame_size
    side_x, side_y = min(side, width), min(side, height)
    x0 = round(min(max(point[0] - side_x / 2, 0), width - side_x))
    y0 = round(min(max(point[1] - side_y / 2, 0), height - side_y))
    return x0, y0, int(x0 + side_x), int(y0 + side_y)


def shifted(detections: Detections, dx: float, dy: float) -> Detections:
    """``detections`` moved by (dx, dy) pixels, outlines included."""
    data = dict(detections.data)
    if POLYGON in data:
        offset = np.array([dx, dy], np.float32)
        data[POLYGON] = _as_object_array([None if p is None else np.asarray(p, np.float32) + offset
                                          for p in data[POLYGON]])
    if MASK_PRIOR in data:
        data[MASK_PRIOR] = _as_object_array([None if m is None else m.shifted(dx, dy) for m in data[MASK_PRIOR]])
    return Detections(xyxy=detections.xyxy + np.array([dx, dy, dx, dy], np.float32),
                      confidence=detections.confidence, class_id=detections.class_id, tracker_id=detections.tracker_id,
                      data=data)


def detect_around(detector: Detector | Any, frame: np.ndarray, point: tuple[float, float], *,
                  share: float = 0.6) -> Detections:
    """Detections in the square around ``point`` whose side is ``share`` of the frame's longer side, in frame
    pixels. The detector scales its input to its working size, so the square is searched at a higher
    resolution than the whole frame: small products the whole-frame search missed are found here."""
    height, width = frame.shape[:2]
    side = max(share * max(width, height), min(width, height))
    x0, y0, x1, y1 = region_around(point, (width, height), side)
    found = detector.detect(np.ascontiguousarray(frame[y0:y1, x0:x1]))
    return shifted(found, x0, y0)


def is_certain(detections: Detections, index: int) -> bool:
    """Whether a detection names its SKU with certainty (detectors without that notion always do)."""
    certain: Sequence[bool] | None = detections.data.get(CERTAIN)
    return True if certain is None else bool(certain[index])
