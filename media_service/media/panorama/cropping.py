"""Stage 8: cropping to the largest rectangle the photos fully cover (no black borders)."""

from __future__ import annotations

import math

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
