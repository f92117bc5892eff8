"""``Detections``: the one type every detector returns (boxes, scores, labels, optional masks).

Modelled on supervision's ``Detections``: parallel numpy arrays validated once in ``__post_init__``
(errors state the expected and the actual shapes), ``from_<framework>`` constructors that normalise a
backend's output where it enters, and small pure helpers (indexing, merge, NMS, scaling). Boxes are
``xyxy`` in pixels of the frame they were found in; ``data`` holds per-detection extras such as the
SKU (``data["sku"]``), the outline polygon of the product (``data["polygon"]``) and the runner-up SKUs
(``data["candidates"]``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SKU = "sku"
POLYGON = "polygon"
CANDIDATES = "candidates"
CERTAIN = "certain"  # bool per detection: the SKU is sure (False: a close call between candidates)
MASK_PRIOR = "mask_prior"  # MaskPrior per detection (or None): the product's photo mask and where it lies


@dataclass(frozen=True)
class MaskPrior:
    """The catalog photo's product mask and the homography that places it in the frame (photo -> frame pixels).

    Holds the photo's mask by reference and warps it only when a cut-out asks (``render``): the mask keeps
    what an outline loses, such as the background seen through a tote's handles.
    """

    alpha: np.ndarray  # (h, w) uint8 product mask of the photo
    homography: np.ndarray  # 3x3 float64, photo pixels -> frame pixels

    def scaled(self, sx: float, sy: float) -> MaskPrior:
        return MaskPrior(self.alpha, np.diag([sx, sy, 1.0]) @ self.homography)

    def shifted(self, dx: float, dy: float) -> MaskPrior:
        return MaskPrior(self.alpha, np.array([[1.0, 0, dx], [0, 1.0, dy], [0, 0, 1.0]]) @ self.homography)

    def render(self, shape: tuple[int, int], offset: tuple[float, float] = (0, 0), scale: float = 1.0) -> np.ndarray:
        """The mask (float32 0..1) on a grid of ``shape`` whose pixel (0, 0) is frame pixel ``offset`` and whose
        pixels are 1 / ``scale`` frame pixels."""
        import cv2

        to_grid = np.diag([scale, scale, 1.0]) @ self.shifted(-offset[0], -offset[1]).homography
        warped = cv2.warpPerspective(self.alpha, to_grid, (shape[1], shape[0]), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return warped.astype(np.float32) / 255.0


def _as_object_array(values: Sequence[Any]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        array[i] = value
    return array


@dataclass
class Detections:
    """N detections in one frame.

    ``xyxy`` (N, 4) float32 pixels, ``confidence`` (N,) float32 in 0..1, ``class_id`` (N,) int64,
    ``mask`` optional (N, H, W) bool, ``tracker_id`` optional (N,) int64, ``data`` per-detection arrays
    of length N (numpy object arrays for strings, polygons and lists).
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    mask: np.ndarray | None = None
    tracker_id: np.ndarray | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if self.xyxy.size == 0:
            self.xyxy = self.xyxy.reshape(0, 4)
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), got {self.xyxy.shape}")
        n = len(self.xyxy)
        self.confidence = self._vector("confidence", self.confidence, np.float32, n)
        self.class_id = self._vector("class_id", self.class_id, np.int64, n)
        if self.tracker_id is not None:
            self.tracker_id = self._vector("tracker_id", self.tracker_id, np.int64, n)
        if self.mask is not None:
            self.mask = np.asarray(self.mask, dtype=bool)
            if self.mask.ndim != 3 or self.mask.shape[0] != n:
                raise ValueError(f"mask must have shape ({n}, H, W), got {self.mask.shape}")
        checked: dict[str, np.ndarray] = {}
        for key, values in self.data.items():
            array = values if isinstance(values, np.ndarray) else _as_object_array(list(values))
            if len(array) != n:
                raise ValueError(f"data[{key!r}] must have length {n} (one entry per detection), got {len(array)}")
            checked[key] = array
        self.data = checked
        if n and not np.all(np.isfinite(self.xyxy)):
            raise ValueError("xyxy holds NaN or infinite coordinates")
        if n and np.any(self.xyxy[:, 2:] < self.xyxy[:, :2]):
            raise ValueError("xyxy must satisfy x1 >= x0 and y1 >= y0 for every box")

    @staticmethod
    def _vector(name: str, values: Any, dtype: Any, n: int) -> np.ndarray:
        array = np.asarray(values, dtype=dtype).reshape(-1) if np.size(values) else np.zeros(0, dtype=dtype)
        if array.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) to match xyxy, got {array.shape}")
        return array

    # ----------------------------------------------------------------------------------------- basics

    @classmethod
    def empty(cls) -> Detections:
        return cls(xyxy=np.zeros((0, 4), np.float32), confidence=np.zeros(0, np.float32),
                   class_id=np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __iter__(self) -> Iterator[Detections]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> Detections:
        """Select detections by position, slice, index list or boolean mask (always a ``Detections``)."""
        if isinstance(index, int | np.integer):
            index = [int(index)]
        return Detections(
            xyxy=self.xyxy[index], confidence=self.confidence[index], class_id=self.class_id[index],
            mask=self.mask[index] if self.mask is not None else None,
            tracker_id=self.tracker_id[index] if self.tracker_id is not None else None,
            data={k: v[index] for k, v in self.data.items()},
        )

    @property
    def area(self) -> np.ndarray:
        return (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])

    @property
    def skus(self) -> list[str | None]:
        """The SKU of each detection (None where the detector could not name one)."""
        values = self.data.get(SKU)
        return [None] * len(self) if values is None else [None if v is None else str(v) for v in values]

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        """Concatenate detections of the same frame (the same ``data`` keys and mask presence)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        keys = set(parts[0].data)
        if any(set(p.data) != keys for p in parts):
            raise ValueError("cannot merge detections whose data keys differ: "
                             f"{sorted({k for p in parts for k in p.data})}")
        masks = [p.mask for p in parts]
        trackers = [p.tracker_id for p in parts]
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
            mask=np.concatenate(masks) if all(m is not None for m in masks) else None,  # type: ignore[arg-type]
            tracker_id=(np.concatenate(trackers)  # type: ignore[arg-type]
                        if all(t is not None for t in trackers) else None),
            data={k: np.concatenate([p.data[k] for p in parts]) for k in keys},
        )

    def scaled(self, sx: float, sy: float) -> Detections:
        """Coordinates multiplied by (sx, sy): from a working resolution back to the frame's."""
        data = dict(self.data)
        if POLYGON in data:
            data[POLYGON] = _as_object_array([None if p is None else np.asarray(p, np.float32) * [sx, sy]
                                              for p in data[POLYGON]])
        if MASK_PRIOR in data:
            data[MASK_PRIOR] = _as_object_array([None if m is None else m.scaled(sx, sy) for m in data[MASK_PRIOR]])
        return Detections(xyxy=self.xyxy * np.array([sx, sy, sx, sy], np.float32), confidence=self.confidence,
                          class_id=self.class_id, mask=None, tracker_id=self.tracker_id, data=data)

    def with_nms(self, iou_threshold: float = 0.5, *, class_agnostic: bool = True) -> Detections:
        """Greedy non-maximum suppression, highest confidence first."""
        if len(self) == 0:
            return self
        order = np.argsort(-self.confidence, kind="stable")
        keep: list[int] = []
        for i in order:
            ok = True
            for j in keep:
                if not class_agnostic and self.class_id[i] != self.class_id[j]:
                    continue
                if box_iou(self.xyxy[i], self.xyxy[j]) > iou_threshold:
                    ok = False
                    break
            if ok:
                keep.append(int(i))
        return self[sorted(keep)]

    # ---------------------------------------------------------------------------------- constructors

    @classmethod
    def from_torchvision(cls, output: Mapping[str, Any], labels: Sequence[str | None] | None = None,
                         *, score_threshold: float = 0.0) -> Detections:
        """One image's output of a torchvision detector (``boxes``, ``scores``, ``labels``, maybe ``masks``).

        ``labels`` maps the model's class index to a SKU (index 0 is the background class); without it
        ``data["sku"]`` is not set.
        """
        def numpy(name: str) -> np.ndarray:
            value = output.get(name)
            if value is None:
                raise ValueError(f"torchvision output lacks {name!r}; expected keys boxes, scores, labels")
            if hasattr(value, "detach"):
                value = value.detach().float().cpu().numpy() if name != "labels" else value.detach().cpu().numpy()
            return np.asarray(value)

        boxes, scores, classes = numpy("boxes"), numpy("scores"), numpy("labels")
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        keep = scores >= score_threshold
        masks = output.get("masks")
        mask_array = None
        if masks is not None:
            masks = masks.detach().float().cpu().numpy() if hasattr(masks, "detach") else np.asarray(masks)
            mask_array = (masks[:, 0] if masks.ndim == 4 else masks)[keep] > 0.5
        data: dict[str, np.ndarray] = {}
        if labels is not None:
            names = [labels[int(c)] if 0 <= int(c) < len(labels) else None for c in classes[keep]]
            data[SKU] = _as_object_array(names)
        return cls(xyxy=boxes[keep], confidence=scores[keep], class_id=classes[keep], mask=mask_array, data=data)

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]]) -> Detections:
        """From plain dicts ``{"xyxy": [...], "score": s, "sku": ..., "polygon": [[x, y], ...]}`` (JSON)."""
        if not records:
            return cls.empty()
        return cls(
            xyxy=np.array([r["xyxy"] for r in records], np.float32),
            confidence=np.array([r.get("score", 1.0) for r in records], np.float32),
            class_id=np.array([r.get("class_id", 0) for r in records], np.int64),
            data={SKU: _as_object_array([r.get("sku") for r in records]),
                  POLYGON: _as_object_array([None if r.get("polygon") is None else np.asarray(r["polygon"], np.float32)
                                             for r in records]),
                  CANDIDATES: _as_object_array([list(r.get("candidates") or []) for r in records])},
        )


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two xyxy boxes."""
    ix0, iy0 = max(a[0], b[0]), max(a[1], b[1])
    ix1, iy1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix1 - ix0) * max(0.0, iy1 - iy0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4) as an (N, M) array."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)
