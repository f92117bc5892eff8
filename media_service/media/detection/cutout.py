"""Cutting a product out of a frame: GrabCut seeded by a box, a lasso and/or a prior outline -> RGBA PNG.

The seeds say what is certainly background (outside the lasso or box), what is probably the product
(inside), and, when the detector knows the product's outline (the catalog photo's mask projected into
the frame), what is certainly the product (the outline's core). GrabCut runs on the region only, scaled
to a small working size, so a cut-out costs tens of milliseconds; the mask is scaled back and its edge
feathered by a pixel so the PNG looks clean on any background.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from media_service.media.detection.detections import MaskPrior


@dataclass
class CutOut:
    """A product cut out of a frame: RGBA pixels of its bounding box and where that box is in the frame."""

    rgba: np.ndarray  # (h, w, 4) uint8, RGBA order
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels
    mask: np.ndarray  # (H, W) bool over the whole frame

    @property
    def coverage(self) -> float:
        """Share of the box that is product."""
        x0, y0, x1, y1 = self.box
        area = max((x1 - x0) * (y1 - y0), 1)
        return float(self.mask[y0:y1, x0:x1].sum() / area)


def _polygon_mask(shape: tuple[int, int], polygon: np.ndarray, offset: tuple[float, float] = (0, 0),
                  scale: float = 1.0) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    points = ((np.asarray(polygon, np.float32) - np.array(offset, np.float32)) * scale)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32).reshape(-1, 1, 2)], 1)
    return mask.astype(bool)


def _region(frame_shape: tuple[int, int], parts: list[np.ndarray], margin: float) -> tuple[int, int, int, int]:
    points = np.concatenate([np.asarray(p, np.float32).reshape(-1, 2) for p in parts])
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    pad_x, pad_y = (x1 - x0) * margin + 4, (y1 - y0) * margin + 4
    h, w = frame_shape
    return (int(max(0, np.floor(x0 - pad_x))), int(max(0, np.floor(y0 - pad_y))),
            int(min(w, np.ceil(x1 + pad_x))), int(min(h, np.ceil(y1 + pad_y))))


def _box_polygon(box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = (float(v) for v in box)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def cut_out(frame: np.ndarray, *, box: np.ndarray | None = None, lasso: np.ndarray | None = None,
            prior: np.ndarray | None = None, mask_prior: MaskPrior | None = None, iterations: int = 3,
            work_side: int = 200, margin: float = 0.12) -> CutOut | None:
    """Cut a product out of ``frame`` (BGR). All shapes are in frame pixels.

    ``box`` (xyxy) and/or ``lasso`` (polygon the shopper drew) bound the product; ``prior`` is an outline
    believed to be the product (a detection's polygon). ``mask_prior`` is the catalog photo's mask placed
    in the frame: its core is certainly product, and what lies clearly outside it (beyond the placement's
    error) is certainly background, holes included, such as the scene seen through a tote's handles or a
    car of the cap's colour beside it. Returns None when nothing is left.
    """
    constraint = lasso if lasso is not None else (_box_polygon(box) if box is not None else None)
    if constraint is None and prior is None:
        raise ValueError("cut_out needs a box, a lasso or a prior outline")
    parts = [p for p in (constraint, prior) if p is not None]
    frame_h, frame_w = frame.shape[:2]
    x0, y0, x1, y1 = _region((frame_h, frame_w), parts, margin)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    roi = frame[y0:y1, x0:x1]
    scale = min(1.0, work_side / max(roi.shape[:2]))
    small = cv2.resize(roi, (max(4, round(roi.shape[1] * scale)), max(4, round(roi.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1.0 else roi
    shape = small.shape[:2]
    seeds = np.full(shape, cv2.GC_PR_BGD, np.uint8)
    inside = _polygon_mask(shape, constraint, (x0, y0), scale) if constraint is not None else np.ones(shape, bool)
    seeds[~inside] = cv2.GC_BGD
    seeds[inside] = cv2.GC_PR_FGD
    if prior is not None:
        prior_mask = _polygon_mask(shape, prior, (x0, y0), scale) & inside
        seeds[inside & ~prior_mask] = cv2.GC_PR_BGD
        seeds[prior_mask] = cv2.GC_PR_FGD
        size = max(1, int(0.08 * min(np.ptp(np.nonzero(prior_mask)[0]) if prior_mask.any() else 0,
                                     np.ptp(np.nonzero(prior_mask)[1]) if prior_mask.any() else 0)))
        core = cv2.erode(prior_mask.astype(np.uint8), np.ones((2 * size + 1, 2 * size + 1), np.uint8)) > 0
        seeds[core] = cv2.GC_FGD
    if mask_prior is not None:
        _seed_from_mask(seeds, mask_prior.render(shape, (x0, y0), scale) > 0.5, inside)
    if not np.any(np.isin(seeds, (cv2.GC_BGD, cv2.GC_PR_BGD))):
        seeds[[0, -1], :] = cv2.GC_PR_BGD  # product fills the region: GrabCut still needs background samples
        seeds[:, [0, -1]] = cv2.GC_PR_BGD
    fallback = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)) if prior is None or mask_prior is not None else \
        _polygon_mask(shape, prior, (x0, y0), scale) & inside
    known_background = seeds == cv2.GC_BGD
    try:
        background_model = np.zeros((1, 65), np.float64)
        foreground_model = np.zeros((1, 65), np.float64)
        cv2.grabCut(small, seeds, None, background_model, foreground_model, iterations, cv2.GC_INIT_WITH_MASK)
        foreground = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))
    except cv2.error:  # degenerate colour models (a flat region): fall back to the seeds
        foreground = fallback
    foreground = _clean(foreground, known_background if mask_prior is not None else None)
    if not foreground.any():
        foreground = fallback
        if not foreground.any():
            return None
    soft = cv2.resize(foreground.astype(np.float32), (roi.shape[1], roi.shape[0]), interpolation=cv2.INTER_LINEAR)
    soft = cv2.GaussianBlur(soft, (0, 0), 1.0)
    mask = np.zeros((frame_h, frame_w), bool)
    mask[y0:y1, x0:x1] = soft > 0.5
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    bx0, by0, bx1, by1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    alpha = np.zeros((frame_h, frame_w), np.float32)
    alpha[y0:y1, x0:x1] = soft
    rgba = np.dstack([frame[by0:by1, bx0:bx1, ::-1],
                      np.clip(alpha[by0:by1, bx0:bx1] * 255 + 0.5, 0, 255).astype(np.uint8)])
    return CutOut(rgba=np.ascontiguousarray(rgba), box=(bx0, by0, bx1, by1), mask=mask)


def _seed_from_mask(seeds: np.ndarray, product: np.ndarray, inside: np.ndarray) -> None:
    """GrabCut seeds (in place) from a placed photo mask: its core is product, its rim probably product,
    a band around it (the placement's error) probably background, and everything beyond certainly not."""
    if not product.any():
        return
    ys, xs = np.nonzero(product)
    size = max(int(np.ptp(xs)), int(np.ptp(ys)), 1)
    slack = max(2, round(0.035 * size))
    kernel = np.ones((2 * slack + 1, 2 * slack + 1), np.uint8)
    core = cv2.erode(product.astype(np.uint8), kernel) > 0
    near = cv2.dilate(product.astype(np.uint8), kernel) > 0
    seeds[:] = cv2.GC_BGD
    seeds[near & inside] = cv2.GC_PR_BGD
    seeds[product & inside] = cv2.GC_PR_FGD
    seeds[core & inside] = cv2.GC_FGD


def _clean(foreground: np.ndarray, keep_out: np.ndarray | None = None) -> np.ndarray:
    """Drop specks and fill holes: the largest region, plus regions at least a fifth of its size.

    A hole that holds pixels of ``keep_out`` (known background) stays a hole.
    """
    binary = foreground.astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return foreground
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = 1 + np.nonzero(areas >= 0.2 * areas.max())[0]
    kept = np.isin(labels, keep).astype(np.uint8)
    padded = np.pad(kept, 1)
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8), (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    if keep_out is not None and holes.any():
        _, labels = cv2.connectedComponents(holes.astype(np.uint8), connectivity=4)
        open_holes = np.unique(labels[holes & keep_out])
        holes &= ~np.isin(labels, open_holes[open_holes > 0])
    return (kept > 0) | holes


def encode_png(rgba: np.ndarray, compression: int = 3) -> bytes:
    """PNG bytes of an RGBA array (our own pixels: encoding, never decoding, with OpenCV)."""
    ok, data = cv2.imencode(".png", rgba[:, :, [2, 1, 0, 3]], [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise ValueError("could not encode the cut-out as PNG")
    return data.tobytes()


def mask_to_polygon(mask: np.ndarray, tolerance: float = 1.0) -> np.ndarray | None:
    """The outline of a mask's largest region as a polygon (pixels), or None for an empty mask."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    largest = max(contours, key=cv2.contourArea)
    return cv2.approxPolyDP(largest, tolerance, True).reshape(-1, 2).astype(np.float32)


def render_cutout(frame: np.ndarray, polygon: np.ndarray) -> CutOut | None:
    """A cut-out from a stored outline (no GrabCut): how a tap on an indexed video answers fast."""
    h, w = frame.shape[:2]
    if cv2.contourArea(np.asarray(polygon, np.float32).reshape(-1, 1, 2)) < 1.0:
        return None
    mask = _polygon_mask((h, w), polygon)
    if not mask.any():
        return None
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    alpha = cv2.GaussianBlur(mask[y0:y1, x0:x1].astype(np.float32), (0, 0), 0.8)
    rgba = np.dstack([frame[y0:y1, x0:x1, ::-1], np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)])
    return CutOut(rgba=np.ascontiguousarray(rgba), box=(x0, y0, x1, y1), mask=mask)
