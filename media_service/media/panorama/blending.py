"""Stage 7: compositing at full resolution, band by band, in uint8, with multi-band low frequencies.

The output is a running weighted average: for every photo, ``canvas = (wsum * canvas + w * photo) /
(wsum + w)`` (``cv2.blendLinear``) and ``wsum += w``, where ``w`` is the photo's feathered seam weight,
upsampled from seam resolution, times its exact full-resolution validity. Only the uint8 canvas and one
float weight plane are canvas-sized; maps, warped pixels and weights exist for one band of rows of one
photo at a time, so memory stays near the size of the output plus one input photo.

Feathering crosses a seam within a few dozen pixels, which is right for detail but shows a step where
the photos' exposures differ in a way the gains cannot remove (vignetting, tone curves, clipped
highlights). Multi-band blending (Burt and Adelson) blends each frequency band over a width that grows
with its wavelength. Here the coarse bands are blended where they live, at seam resolution: OpenCV's
``MultiBandBlender`` runs on the small warps, the feathered blend of the same warps is subtracted, and the
(smoothed) difference is added to the full-resolution composite band by band. Fine detail keeps its
narrow feathered seam; brightness and colour cross the seam over a fifth of a photo's width.
"""

from __future__ import annotations

import math

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

    def add_correction(self, low_correction: np.ndarray, low_rect: Rect, low_to_full: float) -> None:
        """Add a low-resolution float correction (covering ``low_rect``) to the covered canvas pixels.

        Only the columns of each band where the correction reaches a grey level are touched: it
        lives along the seams, not across the whole panorama.
        """
        inverse = 1.0 / low_to_full
        rect = self.rect
        significant = (np.abs(low_correction).max(axis=2) >= 1.0).astype(np.uint8)
        significant = cv2.dilate(significant, np.ones((3, 3), np.uint8))
        for top in range(rect.y, rect.bottom, BAND_ROWS):
            band = Rect(rect.x, top, rect.width, min(BAND_ROWS, rect.bottom - top))
            low_rows = slice(max(0, math.floor(band.y * inverse) - low_rect.y - 1),
                             max(0, math.ceil(band.bottom * inverse) - low_rect.y + 1))
            low_columns = np.nonzero(significant[low_rows].any(axis=0))[0]
            if not len(low_columns):
                continue
            left = max(band.x, math.floor((low_columns[0] + low_rect.x - 1) * low_to_full))
            right = min(band.right, math.ceil((low_columns[-1] + low_rect.x + 2) * low_to_full))
            if right <= left:
                continue
            part = Rect(left, band.y, right - left, band.height)
            to_low = np.array([[inverse, 0.0, (part.x + 0.5) * inverse - 0.5 - low_rect.x],
                               [0.0, inverse, (part.y + 0.5) * inverse - 0.5 - low_rect.y]])
            correction = cv2.warpAffine(low_correction, to_low, (part.width, part.height),
                                        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
            rows = slice(part.y - rect.y, part.bottom - rect.y)
            columns = slice(part.x - rect.x, part.right - rect.x)
            covered = cv2.compare(self.weight_sum[rows, columns], 0.0, cv2.CMP_GT)
            target = self.canvas[rows, columns]
            updated = cv2.add(target, correction, mask=covered, dtype=cv2.CV_8U)  # saturating
            np.copyto(target, updated, where=covered[:, :, None] > 0)


def multiband_correction(rects: list[Rect], images: list[np.ndarray], masks: list[np.ndarray],
                         weights: list[np.ndarray], sigma: float
                         ) -> tuple[np.ndarray, Rect]:
    """Multi-band minus feathered blend of the seam-resolution warps: the low frequencies feathering gets wrong.

    ``images`` are the gain-compensated warps at ``rects`` with validity ``masks`` and ``weights`` their
    feathered seam weights (feather width ``sigma``). The number of bands follows
    OpenCV's stitcher (5 % of the canvas's size) plus two, so exposure differences fade over about a
    fifth of the panorama's height. Returns a float32 (H, W, 3) correction over the union of ``rects``.
    """
    canvas = Rect.union(rects)
    width = max(1.0, 0.05 * math.sqrt(canvas.area))
    bands = max(1, min(8, math.ceil(math.log2(width)) + 1))
    blender = cv2.detail_MultiBandBlender(0, bands)
    blender.prepare((canvas.x, canvas.y, canvas.width, canvas.height))
    total = np.zeros((canvas.height, canvas.width, 3), np.float32)
    weight_sum = np.zeros((canvas.height, canvas.width), np.float32)
    for rect, image, mask, weight in zip(rects, images, masks, weights, strict=True):
        valid = weight * (mask > 0)
        # The feathered weights as the blender's mask: its finest band then equals the feathered blend,
        # so the difference below holds only what the coarser bands change.
        soft = np.clip(valid * 255.0 + 0.5, 0, 255).astype(np.uint8)
        blender.feed(image.astype(np.int16), soft, (rect.x, rect.y))
        rows = slice(rect.y - canvas.y, rect.bottom - canvas.y)
        columns = slice(rect.x - canvas.x, rect.right - canvas.x)
        total[rows, columns] += image.astype(np.float32) * valid[:, :, None]
        weight_sum[rows, columns] += valid
    blended, blended_mask = blender.blend(None, None)
    feathered = total / np.maximum(weight_sum, 1e-6)[:, :, None]
    covered = (weight_sum > 0) & (np.asarray(blended_mask) > 0)
    difference = np.where(covered[:, :, None], np.asarray(blended, np.float32) - feathered, 0.0).astype(np.float32)
    # Rounding noise off (normalised smoothing inside the covered area, no pull towards zero at borders).
    smooth = 0.5 * sigma
    support = cv2.GaussianBlur(covered.astype(np.float32), (0, 0), smooth)
    difference = cv2.GaussianBlur(difference, (0, 0), smooth) / np.maximum(support, 1e-3)[:, :, None]
    return np.where(covered[:, :, None], difference, 0.0).astype(np.float32), canvas
