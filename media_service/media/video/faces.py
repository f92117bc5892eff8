"""Optional face blurring for privacy, with OpenCV's Haar cascade for frontal faces.

Faces are found on frames sampled twice a second from the same normalised frames the ladder encodes;
each detection is grown by a margin and held for half a second around its frame, overlapping ones are
merged into regions, and every region becomes a ``crop -> boxblur -> overlay`` step in the one-pass
ladder (enabled only during its time window), so blurring costs no extra encode.

OpenCV 5 dropped the Haar ``CascadeClassifier`` from the main package and the wheel no longer ships
the XML files, so :class:`HaarCascade` evaluates OpenCV's standard cascade XML itself (integral images
and stump classifiers, vectorised with NumPy, the same arithmetic as OpenCV's ``HaarEvaluator``). The
XML comes from ``VIDEO_FACE_CASCADE``, ``cv2.data.haarcascades`` (OpenCV 4 wheels) or Debian's
``opencv-data`` package.
"""

from __future__ import annotations

import functools
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from media_service.errors import ProcessingError
from media_service.media.video.ffmpeg import FFmpegTools, run_ffmpeg, safe_input_args
from media_service.media.video.ladder import LadderInput, normalise_filters
from media_service.media.video.presets import PlannedRendition

CASCADE_NAME = "haarcascade_frontalface_default.xml"
CASCADE_FOLDERS = ("/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades")
#: Sampled frames per second for detection, and their long side in pixels.
DETECT_FPS = 2
DETECT_LONG_SIDE = 400
#: A detection is grown by this share of its size on each side, and held this long around its frame.
BOX_MARGIN = 0.25
HOLD_SECONDS = 0.5
#: Most blur regions in one filter graph (more are merged in time).
MAX_REGIONS = 24


def find_cascade(configured: str | None = None) -> Path:
    """The frontal-face cascade XML (``configured`` first: VIDEO_FACE_CASCADE), or a ProcessingError that says
    how to install it."""
    candidates: list[Path] = []
    if configured:
        candidates.append(Path(configured))
    data = getattr(cv2, "data", None)
    if data is not None and getattr(data, "haarcascades", None):
        candidates.append(Path(data.haarcascades) / CASCADE_NAME)
    candidates += [Path(folder) / CASCADE_NAME for folder in CASCADE_FOLDERS]
    for path in candidates:
        if path.is_file():
            return path
    raise ProcessingError("face blurring needs OpenCV's Haar cascade file, which is not installed: install "
                          "Debian's opencv-data package or set VIDEO_FACE_CASCADE", code="face_cascade_missing")


@dataclass(frozen=True)
class _Stage:
    threshold: float
    features: np.ndarray  # feature index per weak classifier
    thresholds: np.ndarray
    left: np.ndarray
    right: np.ndarray


class HaarCascade:
    """A boosted cascade of Haar stumps read from OpenCV's XML format (upright features only)."""

    def __init__(self, path: Path) -> None:
        root = ET.parse(path).getroot()
        cascade = root.find("cascade")
        if cascade is None or (cascade.findtext("featureType") or "").strip() != "HAAR":
            raise ProcessingError(f"{path.name} is not a Haar cascade in OpenCV's format", code="bad_cascade")
        self.width = int(cascade.findtext("width") or 0)
        self.height = int(cascade.findtext("height") or 0)
        self.features: list[list[tuple[int, int, int, int, float]]] = []
        for feature in cascade.find("features") or []:
            if (feature.findtext("tilted") or "0").strip() == "1":
                raise ProcessingError("tilted Haar features are not supported; use the frontal-face cascade",
                                      code="bad_cascade")
            rects = []
            for rect in feature.find("rects") or []:
                x, y, w, h, weight = (rect.text or "").split()
                rects.append((int(x), int(y), int(w), int(h), float(weight)))
            self.features.append(rects)
        self.stages: list[_Stage] = []
        for stage in cascade.find("stages") or []:
            indexes, thresholds, left, right = [], [], [], []
            for weak in stage.find("weakClassifiers") or []:
                nodes = (weak.findtext("internalNodes") or "").split()
                leaves = (weak.findtext("leafValues") or "").split()
                if len(nodes) != 4 or len(leaves) != 2:
                    raise ProcessingError("only stump cascades are supported", code="bad_cascade")
                indexes.append(int(nodes[2]))
                thresholds.append(float(nodes[3]))
                left.append(float(leaves[0]))
                right.append(float(leaves[1]))
            self.stages.append(_Stage(float(stage.findtext("stageThreshold") or 0), np.array(indexes),
                                      np.array(thresholds), np.array(left), np.array(right)))

    def _windows(self, gray: np.ndarray, step: int) -> np.ndarray:
        """Top-left corners (flat indexes into the integral image) of the windows that pass every stage."""
        rows, cols = gray.shape
        integral, squares = cv2.integral2(gray, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
        stride = cols + 1
        flat, flat_sq = integral.ravel(), squares.ravel()
        ys, xs = np.mgrid[0:rows - self.height + 1:step, 0:cols - self.width + 1:step]
        base = (ys * stride + xs).ravel()
        if base.size == 0:
            return base

        def box(offsets: np.ndarray, table: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
            a, b = y * stride + x, y * stride + x + w
            c, d = (y + h) * stride + x, (y + h) * stride + x + w
            return table[offsets + d] - table[offsets + b] - table[offsets + c] + table[offsets + a]

        area = (self.width - 2) * (self.height - 2)
        total = box(base, flat, 1, 1, self.width - 2, self.height - 2)
        total_sq = box(base, flat_sq, 1, 1, self.width - 2, self.height - 2)
        norm = area * total_sq - total * total
        norm = np.where(norm > 0, np.sqrt(np.maximum(norm, 0)), 1.0)
        for stage in self.stages:
            score = np.zeros(base.size)
            for index, threshold, left, right in zip(stage.features, stage.thresholds, stage.left, stage.right,
                                                     strict=True):
                value = np.zeros(base.size)
                for x, y, w, h, weight in self.features[index]:
                    value += weight * box(base, flat, x, y, w, h)
                score += np.where(value < threshold * norm, left, right)
            keep = score >= stage.threshold
            base, norm = base[keep], norm[keep]
            if base.size == 0:
                break
        return base

    def detect(self, gray: np.ndarray, *, scale_factor: float = 1.1, min_neighbors: int = 3,
               min_size: int = 24) -> list[tuple[int, int, int, int]]:
        """Faces as (x, y, w, h) in ``gray``'s pixels, grouped like OpenCV's ``groupRectangles``."""
        found: list[tuple[int, int, int, int]] = []
        factor = max(1.0, min_size / self.width)
        while True:
            rows, cols = int(gray.shape[0] / factor), int(gray.shape[1] / factor)
            if rows < self.height or cols < self.width:
                break
            scaled = cv2.resize(gray, (cols, rows), interpolation=cv2.INTER_LINEAR) if factor > 1 else gray
            step = 1 if factor > 2 else 2
            for flat in self._windows(scaled, step):
                y, x = divmod(int(flat), cols + 1)
                found.append((round(x * factor), round(y * factor), round(self.width * factor),
                              round(self.height * factor)))
            factor *= scale_factor
        return group_rectangles(found, min_neighbors)


def group_rectangles(rects: list[tuple[int, int, int, int]], min_neighbors: int,
                     eps: float = 0.2) -> list[tuple[int, int, int, int]]:
    """Cluster similar rectangles and keep the averages of clusters with enough members (OpenCV's rule)."""
    parent = list(range(len(rects)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(rects):
        for j in range(i + 1, len(rects)):
            b = rects[j]
            delta = eps * (min(a[2], b[2]) + min(a[3], b[3])) * 0.5
            if (abs(a[0] - b[0]) <= delta and abs(a[1] - b[1]) <= delta and abs(a[0] + a[2] - b[0] - b[2]) <= delta
                    and abs(a[1] + a[3] - b[1] - b[3]) <= delta):
                parent[root(i)] = root(j)
    clusters: dict[int, list[tuple[int, int, int, int]]] = {}
    for i, rect in enumerate(rects):
        clusters.setdefault(root(i), []).append(rect)
    grouped = [tuple(round(sum(r[k] for r in members) / len(members)) for k in range(4))
               for members in clusters.values() if len(members) >= min_neighbors]
    # drop rectangles lying inside a bigger one
    return [r for r in grouped if not any(o is not r and o[2] > r[2] and o[0] <= r[0] and o[1] <= r[1]
                                          and o[0] + o[2] >= r[0] + r[2] and o[1] + o[3] >= r[1] + r[3]
                                          for o in grouped)]  # type: ignore[misc]


@functools.lru_cache(maxsize=4)
def load_cascade(path: str) -> HaarCascade:
    return HaarCascade(Path(path))


@dataclass
class BlurRegion:
    start: float
    end: float
    x: int
    y: int
    w: int
    h: int

    def overlaps(self, other: BlurRegion) -> bool:
        in_time = self.start <= other.end and other.start <= self.end
        in_space = self.x < other.x + other.w and other.x < self.x + self.w and \
            self.y < other.y + other.h and other.y < self.y + self.h
        return in_time and in_space

    def merge(self, other: BlurRegion) -> None:
        x2, y2 = max(self.x + self.w, other.x + other.w), max(self.y + self.h, other.y + other.h)
        self.x, self.y = min(self.x, other.x), min(self.y, other.y)
        self.w, self.h = x2 - self.x, y2 - self.y
        self.start, self.end = min(self.start, other.start), max(self.end, other.end)


@dataclass
class FaceBlurPlan:
    filters: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    regions: list[BlurRegion] = field(default_factory=list)


def regions_from_detections(detections: list[tuple[float, tuple[int, int, int, int]]], width: int, height: int,
                            duration: float) -> list[BlurRegion]:
    """Grow, hold and merge detections (already in output pixels) into at most :data:`MAX_REGIONS` regions."""
    regions: list[BlurRegion] = []
    for time, (x, y, w, h) in detections:
        mx, my = int(w * BOX_MARGIN), int(h * BOX_MARGIN)
        x0, y0 = max(0, x - mx), max(0, y - my)
        x1, y1 = min(width, x + w + mx), min(height, y + h + my)
        regions.append(BlurRegion(max(0.0, time - HOLD_SECONDS), min(duration, time + HOLD_SECONDS),
                                  x0, y0, x1 - x0, y1 - y0))
    merged = True
    while merged:
        merged = False
        for i, region in enumerate(regions):
            for other in regions[i + 1:]:
                if region.overlaps(other):
                    region.merge(other)
                    regions.remove(other)
                    merged = True
                    break
            if merged:
                break
    while len(regions) > MAX_REGIONS:  # too many: join the two closest in time
        regions.sort(key=lambda r: r.start)
        gaps = [regions[i + 1].start - regions[i].end for i in range(len(regions) - 1)]
        i = int(np.argmin(gaps))
        regions[i].merge(regions.pop(i + 1))
    for region in regions:  # even sizes for the yuv420p crop
        region.x, region.y = region.x // 2 * 2, region.y // 2 * 2
        region.w, region.h = max(2, region.w // 2 * 2), max(2, region.h // 2 * 2)
    return sorted(regions, key=lambda r: r.start)


def blur_filters(regions: list[BlurRegion]) -> list[str]:
    """Filter-chain steps that blur each region during its window (one filter chain, no labels needed)."""
    steps = []
    for i, r in enumerate(regions):
        radius = max(4, min(r.w, r.h) // 6)
        blur = (f"split=2[fb{i}a][fb{i}b];[fb{i}b]crop={r.w}:{r.h}:{r.x}:{r.y},boxblur={radius}:2[fb{i}c];"
                f"[fb{i}a][fb{i}c]overlay={r.x}:{r.y}:enable='between(t,{r.start:.3f},{r.end:.3f})'")
        steps.append(blur)
    return steps


def plan_face_blur(source: LadderInput, top: PlannedRendition, work: Path, tools: FFmpegTools, *,
                   cascade: str | None = None, max_seconds: float | None = None, before: list[str] | None = None,
                   on_progress: Callable[[float], None] | None = None) -> FaceBlurPlan:
    """Detect faces on sampled frames and return the ladder filters that blur them."""
    detector = load_cascade(str(find_cascade(cascade)))
    scale = DETECT_LONG_SIDE / max(top.width, top.height)
    width, height = int(top.width * scale) // 2 * 2, int(top.height * scale) // 2 * 2
    frames = work / "faces"
    frames.mkdir(exist_ok=True)
    chain = ",".join([*normalise_filters(source, top, extra=before or []), f"fps={DETECT_FPS}",
                      f"scale={width}:{height}"])
    args = ["-noautorotate", *(["-t", f"{max_seconds:.3f}"] if max_seconds else []),
            *safe_input_args(source.path, source.demuxer), "-map", f"0:{source.video.index}", "-vf", chain,
            "-an", "-c:v", "mjpeg", "-q:v", "3", "-f", "image2", str(frames / "%06d.jpg")]
    run_ffmpeg(args, binary=tools.ffmpeg_binary, timeout=tools.ffmpeg_timeout_seconds,
               duration=source.duration, on_progress=(lambda f: on_progress(0.4 * f)) if on_progress else None)
    paths = sorted(frames.glob("*.jpg"))
    detections: list[tuple[float, tuple[int, int, int, int]]] = []
    for i, path in enumerate(paths):
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            continue
        gray = cv2.equalizeHist(gray)
        for x, y, w, h in detector.detect(gray, min_size=max(24, min(width, height) // 12)):
            detections.append((i / DETECT_FPS, (int(x / scale), int(y / scale), math.ceil(w / scale),
                                                math.ceil(h / scale))))
        path.unlink()
        if on_progress:
            on_progress(0.4 + 0.6 * (i + 1) / max(1, len(paths)))
    regions = regions_from_detections(detections, top.width, top.height, source.duration)
    summary = {"engine": "haar", "cascade": CASCADE_NAME, "sampled_frames": len(paths),
               "detections": len(detections), "regions": [
                   {"start": round(r.start, 2), "end": round(r.end, 2), "box": [r.x, r.y, r.w, r.h]}
                   for r in regions]}
    return FaceBlurPlan(filters=blur_filters(regions), summary=summary, regions=regions)
