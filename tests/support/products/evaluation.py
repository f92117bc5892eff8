"""Scoring detections against the truths of semi-real clips: precision, recall (IoU >= 0.5) and top-1 SKU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from media_service.media.detection.detections import Detections, iou_matrix
from tests.support.products.semireal import Truth


@dataclass
class Score:
    """Counts over many frames; matching is greedy by confidence at IoU >= ``threshold``."""

    predictions: int = 0
    truths: int = 0
    matched: int = 0
    right_sku: int = 0
    misses: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)
    wrong_skus: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.matched / self.predictions if self.predictions else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.truths if self.truths else 1.0

    @property
    def top1(self) -> float:
        return self.right_sku / self.matched if self.matched else 0.0

    def add(self, detections: Detections, truths: Sequence[Truth], threshold: float = 0.5, where: str = "") -> None:
        self.predictions += len(detections)
        self.truths += len(truths)
        if not len(detections) or not truths:
            self.misses += [f"{where} {t.sku}" for t in truths]
            self.false_alarms += [f"{where} {s}" for s in detections.skus]
            return
        ious = iou_matrix(detections.xyxy, np.array([t.box for t in truths], np.float32))
        used: set[int] = set()
        matched_truths: set[int] = set()
        skus = detections.skus
        for i in np.argsort(-detections.confidence):
            candidates = [j for j in np.argsort(-ious[i]) if j not in matched_truths and ious[i, j] >= threshold]
            if not candidates:
                continue
            j = int(candidates[0])
            used.add(int(i))
            matched_truths.add(j)
            self.matched += 1
            if skus[i] == truths[j].sku:
                self.right_sku += 1
            else:
                self.wrong_skus.append(f"{where} {truths[j].sku}->{skus[i]}")
        self.misses += [f"{where} {truths[j].sku}" for j in range(len(truths)) if j not in matched_truths]
        self.false_alarms += [f"{where} {skus[i]}" for i in range(len(detections)) if i not in used]

    def summary(self) -> str:
        return (f"precision {self.precision:.3f} ({self.matched}/{self.predictions}), recall {self.recall:.3f} "
                f"({self.matched}/{self.truths}), top-1 SKU {self.top1:.3f} ({self.right_sku}/{self.matched})")


def draw_boxes(frame: np.ndarray, detections: Detections, truths: Sequence[Truth], label: str = "") -> np.ndarray:
    """A copy of ``frame`` with the true boxes (red, thin) and the detections (green, SKU and score)."""
    image = frame.copy()
    for truth in truths:
        x0, y0, x1, y1 = (int(v) for v in truth.box)
        cv2.rectangle(image, (x0, y0), (x1, y1), (0, 0, 255), 1)
        cv2.putText(image, truth.sku, (x0 + 2, y1 - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 255), 1)
    for box, sku, score in zip(detections.xyxy, detections.skus, detections.confidence, strict=True):
        x0, y0, x1, y1 = (int(v) for v in box)
        cv2.rectangle(image, (x0, y0), (x1, y1), (0, 255, 0), 2)
        cv2.putText(image, f"{sku} {score:.2f}", (x0 + 2, y0 + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 0), 1)
    if label:
        cv2.putText(image, label, (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 0), 2)
    return image


def contact_sheet(images: Sequence[np.ndarray], *, columns: int = 4, tile_height: int = 270) -> np.ndarray:
    """Images side by side, ``columns`` a row, each scaled to ``tile_height`` (portrait ones padded)."""
    tile_width = tile_height * 16 // 9
    tiles = []
    for image in images:
        scale = min(tile_height / image.shape[0], tile_width / image.shape[1])
        small = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
        tile = np.zeros((tile_height, tile_width, 3), np.uint8)
        tile[:small.shape[0], :small.shape[1]] = small
        tiles.append(tile)
    tiles += [np.zeros((tile_height, tile_width, 3), np.uint8)] * (-len(tiles) % columns)
    return np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)])
