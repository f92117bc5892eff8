"""Stage 7: compositing at full resolution, band by band, in uint8.

The output is a running weighted average: for every photo, ``canvas = (wsum * canvas + w * photo) /
(wsum + w)`` (``cv2.blendLinear``) and ``wsum += w``, where ``w`` is the photo's feathered seam weight,
upsampled from seam resolution, times its exact full-resolution validity. Only the uint8 canvas and one
float weight plane are canvas-sized; maps, warped pixels and weights exist for one band of rows of one
photo at a time, so memory stays near the size of the output plus one input photo.
"""

from __future__ import annotations

import cv2
import numpy as np

from media_service.media.panorama.warping import Camera, Projection, Rect, valid_mask

BAND_ROWS = 256


class Compositor:
    """Accumulates warped photos into the output rectangle ``canvas_rect``."""

    def __init__(self, canvas_rect: Rect, projection: Projection) -> None:
        self.rect = canvas_rect
        self.projection = projection
        self.canvas = np.zeros((canvas_rect.height, canvas_rect.width, 3), np.uint8)
        self.weight_sum = np.zeros((canvas_rect.height, canvas_rect.width), np.float32)

    def add(self, image: np.ndarray, camera: Camera, roi: Rect, low_weight: np.ndarray, low_rect: Rect,
            low_to_full: float) -> None:
        """Blend ``image`` (its camera at this resolution, its output ``roi``) into the canvas.

        ``low_weight`` covers ``low_rect`` at a resolution ``low_to_full`` times smaller.
        """
        target = roi.intersect(self.rect)
        if target is None:
            return
        inverse = 1.0 / low_to_full
        for top in range(target.y, target.bottom, BAND_ROWS):
            band = Rect(target.x, top, target.width, min(BAND_ROWS, target.bottom - top))
            map_x, map_y = self.projection.maps(camera, band)
            valid = valid_mask(map_x, map_y, camera.size)
            if not valid.any():
                continue
            warped = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            # Output pixel (x, y) of the band sits at (x + 0.5) / f - 0.5 in the low-resolution weights.
            to_low = np.array([[inverse, 0.0, (band.x + 0.5) * inverse - 0.5 - low_rect.x],
                               [0.0, inverse, (band.y + 0.5) * inverse - 0.5 - low_rect.y]])
            weight = cv2.warpAffine(low_weight, to_low, (band.width, band.height),
                                    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                    borderMode=cv2.BORDER_REPLICATE)
            weight = cv2.multiply(weight, valid.astype(np.float32), scale=1.0 / 255.0)
            rows = slice(band.y - self.rect.y, band.bottom - self.rect.y)
            columns = slice(band.x - self.rect.x, band.right - self.rect.x)
            canvas = self.canvas[rows, columns]
            weight_sum = self.weight_sum[rows, columns]
            self.canvas[rows, columns] = cv2.blendLinear(canvas, warped, weight_sum, weight)
            weight_sum += weight

    def coverage(self) -> np.ndarray:
        """uint8 mask: 255 where at least one photo contributed."""
        return cv2.compare(self.weight_sum, 0.0, cv2.CMP_GT)
