"""Stage 5: exposure compensation.

Gains per photo and colour channel are estimated on the small seam-resolution warps (OpenCV's channels
compensator: least squares over the overlaps) and applied at full resolution through a 256-entry lookup
table, which costs almost nothing compared with multiplying every pixel by a float gain map.
"""

from __future__ import annotations

import cv2
import numpy as np

from media_service.media.panorama.warping import Rect

#: Gains are clamped to this range: a larger correction means the photos do not belong together.
GAIN_RANGE = (0.5, 2.0)


def estimate_gains(rects: list[Rect], images: list[np.ndarray], masks: list[np.ndarray]) -> list[np.ndarray]:
    """Per-photo (3,) channel gains that equalise brightness and colour over the overlaps."""
    if len(images) < 2:
        return [np.ones(3) for _ in images]
    compensator = cv2.detail_ChannelsCompensator(1)
    compensator.feed([(r.x, r.y) for r in rects], images, masks)
    gains = []
    for matrix in compensator.getMatGains():
        values = np.asarray(matrix, np.float64).ravel()[:3]
        if values.size < 3 or not np.all(np.isfinite(values)) or np.any(values <= 0):
            values = np.ones(3)
        gains.append(np.clip(values, *GAIN_RANGE))
    return gains


def gain_table(gains: np.ndarray) -> np.ndarray:
    """A (1, 256, 3) uint8 lookup table for ``cv2.LUT`` that applies ``gains`` to an RGB image."""
    levels = np.arange(256, dtype=np.float64)[:, None] * np.asarray(gains, np.float64)[None, :]
    return np.clip(np.rint(levels), 0, 255).astype(np.uint8).reshape(1, 256, 3)


def apply_gains(image: np.ndarray, gains: np.ndarray) -> np.ndarray:
    if np.allclose(gains, 1.0, atol=1e-3):
        return image
    return cv2.LUT(image, gain_table(gains))
