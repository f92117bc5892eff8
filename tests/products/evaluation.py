"""Scoring detections against the truths of semi-real clips: precision, recall (IoU >= 0.5) and top-1 SKU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from media_service.detection.detections import Detections, iou_matrix
from tests.products.semireal import Truth


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
