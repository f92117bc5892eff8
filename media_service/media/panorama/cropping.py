"""Stage 8: the output rectangle: the largest fully covered one, or one that keeps every photo.

The largest rectangle the photos fully cover has no borders to hide, but when the photos are
staggered or tilted it can cut most of one photo away; then a rectangle that keeps (nearly) all of
every photo is chosen instead and its few uncovered pixels are filled with a smooth continuation of
the scene (:func:`frame_output`, :func:`fill_uncovered`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from media_service.media.panorama.warping import Rect

#: The exact search runs on a mask at most this many pixels on its longer side, then is refined.
SEARCH_SIDE = 200


def largest_rectangle(mask: np.ndarray) -> Rect | None:
    """The largest axis-aligned rectangle of non-zero pixels (maximal-rectangle algorithm, O(rows x cols))."""
    filled = mask > 0
    rows, columns = filled.shape
    heights = np.zeros(columns, np.int32)
    best = (0, 0, 0, 0, 0)  # area, x, y, width, height
    for row in range(rows):
        heights = np.where(filled[row], heights + 1, 0)
        stack: list[tuple[int, int]] = []  # (start column, height), heights increasing
        for column, height in enumerate([*heights.tolist(), 0]):
            start = column
            while stack and stack[-1][1] >= height:
                start, top_height = stack.pop()
                area = top_height * (column - start)
                if area > best[0]:
                    best = (area, start, row - top_height + 1, column - start, top_height)
            stack.append((start, height))
    if best[0] == 0:
        return None
    return Rect(best[1], best[2], best[3], best[4])


def _grow(filled: np.ndarray, rect: Rect) -> Rect:
    """Push each side outwards while the new row or column is fully covered."""
    x, y, right, bottom = rect.x, rect.y, rect.right, rect.bottom
    rows, columns = filled.shape
    changed = True
    while changed:
        changed = False
        if x > 0 and filled[y:bottom, x - 1].all():
            x, changed = x - 1, True
        if right < columns and filled[y:bottom, right].all():
            right, changed = right + 1, True
        if y > 0 and filled[y - 1, x:right].all():
            y, changed = y - 1, True
        if bottom < rows and filled[bottom, x:right].all():
            bottom, changed = bottom + 1, True
    return Rect(x, y, right - x, bottom - y)


def _shrink(filled: np.ndarray, rect: Rect) -> Rect:
    """Pull in the side with the most uncovered pixels until no side has any (holes are not searched)."""
    x, y, right, bottom = rect.x, rect.y, rect.right, rect.bottom
    while right > x and bottom > y:
        misses = [(~filled[y:bottom, x]).mean(), (~filled[y:bottom, right - 1]).mean(),
                  (~filled[y, x:right]).mean(), (~filled[bottom - 1, x:right]).mean()]
        side = int(np.argmax(misses))
        if misses[side] == 0:
            break
        if side == 0:
            x += 1
        elif side == 1:
            right -= 1
        elif side == 2:
            y += 1
        else:
            bottom -= 1
    return Rect(x, y, max(0, right - x), max(0, bottom - y))


def covered_rectangle(mask: np.ndarray) -> Rect | None:
    """The largest fully covered rectangle of ``mask``, searched small and refined at full size."""
    filled = mask > 0
    if not filled.any():
        return None
    factor = min(1.0, SEARCH_SIDE / max(mask.shape))
    if factor < 1.0:
        small_size = (max(1, round(mask.shape[1] * factor)), max(1, round(mask.shape[0] * factor)))
        small = cv2.resize(filled.astype(np.uint8) * 255, small_size, interpolation=cv2.INTER_AREA) == 255
        found = largest_rectangle(small)
        if found is None:
            return None
        scale_x, scale_y = mask.shape[1] / small_size[0], mask.shape[0] / small_size[1]
        rect = Rect(math.ceil(found.x * scale_x), math.ceil(found.y * scale_y),
                    math.floor(found.width * scale_x), math.floor(found.height * scale_y))
        rect = _shrink(filled, rect)
    else:
        found = largest_rectangle(filled.astype(np.uint8))
        if found is None:
            return None
        rect = found
    return _grow(filled, rect)


def trim_uncovered(coverage: np.ndarray) -> Rect:
    """The rectangle left after removing border rows and columns that contain uncovered pixels."""
    return _shrink(coverage > 0, Rect(0, 0, coverage.shape[1], coverage.shape[0]))


# -- keeping the photos: a rectangle that may include a little uncovered area, which is then filled ----

#: Every photo should keep at least this share of itself in the output (the crop may not cut more).
KEEP_TARGET = 0.9
#: At most this share of the output may be uncovered (filled in) to keep the photos.
MAX_FILL = 0.25
#: Penalties tried, strictest first: an uncovered pixel costs this many covered ones.
FILL_PENALTIES = (8.0, 4.0, 2.0, 1.0, 0.5)
#: The rectangle search runs on a mask at most this many pixels on its longer side.
FRAME_SEARCH_SIDE = 96


@dataclass(frozen=True)
class Framing:
    """The output rectangle, what share of each photo it keeps, and what share of it is filled in."""

    rect: Rect
    kept: list[float]
    filled: float


def best_scoring_rectangle(covered: np.ndarray, penalty: float) -> Rect | None:
    """The rectangle maximising (covered pixels - ``penalty`` x uncovered pixels) (max-sum submatrix).

    Every (top, bottom) row pair at once: their column sums form a (rows, rows, columns) array, and
    Kadane's maximum-subarray scan runs along the columns for all pairs together.
    """
    score = np.where(covered, 1.0, -penalty).astype(np.float32)
    rows, columns = score.shape
    cumulative = np.vstack([np.zeros((1, columns), np.float32), np.cumsum(score, axis=0)])
    sums = cumulative[None, 1:, :] - cumulative[:-1, None, :]  # [top, bottom, column]: rows top..bottom
    running = np.zeros((rows, rows), np.float32)
    start = np.zeros((rows, rows), np.int32)
    best_value, best = 0.0, None
    for column in range(columns):
        restart = running <= 0
        running = np.where(restart, sums[:, :, column], running + sums[:, :, column])
        start = np.where(restart, column, start)
        valid = np.triu(np.ones((rows, rows), bool))  # bottom >= top
        candidate = np.where(valid, running, -np.inf)
        flat = int(np.argmax(candidate))
        if candidate.flat[flat] > best_value:
            top, bottom = divmod(flat, rows)
            best_value, best = float(candidate.flat[flat]), (int(start[top, bottom]), top, column + 1, bottom + 1)
    if best is None:
        return None
    left, top, right, bottom = best
    return Rect(left, top, right - left, bottom - top)


def _as_large_as_every_photo(rect: Rect, masks: list[np.ndarray]) -> bool:
    """Whether ``rect`` is at least (nearly) as wide and as tall as every photo's footprint."""
    for mask in masks:
        rows, columns = np.any(mask, axis=1), np.any(mask, axis=0)
        if rect.height < rows.sum() or rect.width < columns.sum():
            return False
    return True


def _framing_stats(rect: Rect, union: np.ndarray, masks: list[np.ndarray]) -> tuple[list[float], float]:
    kept = [float(m[rect.y:rect.bottom, rect.x:rect.right].sum() / max(1, m.sum())) for m in masks]
    inside = union[rect.y:rect.bottom, rect.x:rect.right]
    return kept, float(1.0 - inside.mean()) if inside.size else 1.0


def frame_output(union: np.ndarray, masks: list[np.ndarray], keep_target: float = KEEP_TARGET,
                 max_fill: float = MAX_FILL) -> Framing | None:
    """Choose the output rectangle on a canvas whose photos cover ``masks`` (bool, canvas-sized each).

    The largest fully covered rectangle is used when it keeps ``keep_target`` of every photo and is no
    smaller than any photo: nothing needs filling. Otherwise (photos staggered or tilted, whose inner
    rectangle would cut much of one away) rectangles that accept some uncovered pixels are tried,
    strictest first, and the first that meets both with at most ``max_fill`` of the output uncovered
    wins (or, when none does, the one that keeps the most of the worst-kept photo within ``max_fill``).
    """
    inner = covered_rectangle(union.astype(np.uint8) * 255)
    candidates: list[Framing] = []
    if inner is not None:
        kept, filled = _framing_stats(inner, union, masks)
        candidates.append(Framing(inner, kept, 0.0))
        if min(kept) >= keep_target and _as_large_as_every_photo(inner, masks):
            return candidates[0]
    factor = min(1.0, FRAME_SEARCH_SIDE / max(union.shape))
    small_size = (max(1, round(union.shape[1] * factor)), max(1, round(union.shape[0] * factor)))
    small = cv2.resize(union.astype(np.float32), small_size, interpolation=cv2.INTER_AREA) > 0.5
    scale_x, scale_y = union.shape[1] / small_size[0], union.shape[0] / small_size[1]
    for penalty in FILL_PENALTIES:
        found = best_scoring_rectangle(small, penalty)
        if found is None:
            continue
        x, y = round(found.x * scale_x), round(found.y * scale_y)
        rect = Rect(x, y, min(union.shape[1], round(found.right * scale_x)) - x,
                    min(union.shape[0], round(found.bottom * scale_y)) - y)
        kept, filled = _framing_stats(rect, union, masks)
        if filled > max_fill:
            break  # later penalties only accept more uncovered area
        candidates.append(Framing(rect, kept, filled))
        if min(kept) >= keep_target and _as_large_as_every_photo(rect, masks):
            return candidates[-1]
    if not candidates:
        return None
    return max(candidates, key=lambda c: (round(min(c.kept), 2), -c.filled))


def fill_uncovered(canvas: np.ndarray, coverage: np.ndarray, work_pixels: float = 0.5e6,
                   band_rows: int = 256) -> float:
    """Fill uncovered pixels of ``canvas`` (in place) with a smooth continuation of the covered ones.

    Pull-push on a copy of at most ``work_pixels``: colours are averaged into coarser levels (weighted
    by coverage) until everything is covered, then pushed back to the fine levels where coverage is
    missing, which extends the nearest colours smoothly (sky stays sky, ground stays ground). Only the
    small copy is processed as a whole; the canvas is written one band of rows at a time. Returns the
    share of pixels filled.
    """
    missing_count = int(coverage.size - cv2.countNonZero(coverage))
    if missing_count == 0:
        return 0.0
    share = missing_count / coverage.size
    height, width = coverage.shape
    factor = min(1.0, math.sqrt(work_pixels / (width * height)))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    # Uncovered canvas pixels are black, so an area-average of the canvas is already coverage-weighted.
    weight = cv2.resize(coverage, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    colour = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    levels = [(colour, weight)]
    while min(levels[-1][1].shape) > 1 and levels[-1][1].min() < 0.999:
        c, w = levels[-1]
        next_size = (max(1, (w.shape[1] + 1) // 2), max(1, (w.shape[0] + 1) // 2))
        levels.append((cv2.resize(c, next_size, interpolation=cv2.INTER_AREA),
                       cv2.resize(w, next_size, interpolation=cv2.INTER_AREA)))
    c, w = levels[-1]
    filled = c / np.maximum(w, 1e-6)[:, :, None]
    for c, w in reversed(levels[:-1]):
        coarse = cv2.resize(filled, (w.shape[1], w.shape[0]), interpolation=cv2.INTER_LINEAR)
        own = c / np.maximum(w, 1e-6)[:, :, None]
        alpha = np.clip(w, 0.0, 1.0)[:, :, None]
        filled = alpha * own + (1.0 - alpha) * coarse
    for top in range(0, height, band_rows):
        bottom = min(height, top + band_rows)
        band_missing = coverage[top:bottom] == 0
        columns = np.nonzero(band_missing.any(axis=0))[0]
        if not len(columns):
            continue
        left, right = int(columns[0]), int(columns[-1]) + 1
        # Canvas pixel (x, y) sits at (x + 0.5) * factor - 0.5 in the small copy.
        to_small = np.array([[factor, 0.0, (left + 0.5) * factor - 0.5], [0.0, factor, (top + 0.5) * factor - 0.5]])
        band = cv2.warpAffine(filled, to_small, (right - left, bottom - top),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        target = canvas[top:bottom, left:right]
        where = band_missing[:, left:right]
        target[where] = np.clip(band[where] + 0.5, 0, 255).astype(np.uint8)
    return share
