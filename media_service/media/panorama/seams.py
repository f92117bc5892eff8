"""Stage 6: seams, and the soft weights that blending derives from them.

Seams are cut on small (about 0.1 MP per photo) warps with OpenCV's graph-cut seam finder on colour
differences, so moving people and parallax are cut around instead of ghosted. Each photo's seam mask
is then feathered at that small size; compositing only has to upsample these weights.
"""

from __future__ import annotations

import cv2
import numpy as np

from media_service.media.panorama.warping import Rect

SEAM_FINDERS = ("graphcut", "dp", "voronoi")
#: Weight given to a photo's pixels outside its seam region: tiny, so it only counts where no other
#: photo covers the pixel at full resolution (thin borders the coarse seam masks cannot resolve).
WEIGHT_FLOOR = 1e-3


def find_seams(rects: list[Rect], images: list[np.ndarray], masks: list[np.ndarray],
               method: str = "graphcut") -> list[np.ndarray]:
    """Seam masks (uint8, 255 = this photo shows here) for the warped photos."""
    if len(images) < 2:
        return [m.copy() for m in masks]
    if method == "graphcut":
        finder = cv2.detail_GraphCutSeamFinder("COST_COLOR")
    elif method == "dp":
        finder = cv2.detail_DpSeamFinder("COLOR")
    elif method == "voronoi":
        finder = cv2.detail.VoronoiSeamFinder()
    else:
        raise ValueError(f"unknown seam finder {method!r}; use one of {SEAM_FINDERS}")
    floats = [image.astype(np.float32) for image in images]
    seams = finder.find(floats, [(r.x, r.y) for r in rects], [m.copy() for m in masks])
    return [np.asarray(s.get() if hasattr(s, "get") else s, np.uint8) for s in seams]


def soft_weights(seams: list[np.ndarray], sigma: float) -> list[np.ndarray]:
    """Feathered float32 weights from seam masks: a smooth cross-fade of about 2.5 sigma across each seam."""
    weights = []
    for seam in seams:
        weight = seam.astype(np.float32) / 255.0
        if sigma > 0:
            weight = cv2.GaussianBlur(weight, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        weights.append(np.maximum(weight, WEIGHT_FLOOR))
    return weights
