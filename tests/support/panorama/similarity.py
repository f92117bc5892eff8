"""Image similarity for comparing panoramas made by different stitchers (test helper, pure OpenCV).

Two stitchers frame the same scene slightly differently (focal estimate, crop), so the candidate is
first registered onto the reference (SIFT + RANSAC homography at 400 px: coarse enough that parallax of
a few pixels between the two does not dominate), then compared with SSIM and normalised
cross-correlation over the pixels both cover.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WORK_WIDTH = 400


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM (Wang et al. 2004, Gaussian window sigma 1.5) of two grey images."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (0, 0), 1.5)

    mean_a, mean_b = blur(a), blur(b)
    var_a = blur(a * a) - mean_a ** 2
    var_b = blur(b * b) - mean_b ** 2
    covariance = blur(a * b) - mean_a * mean_b
    return ((2 * mean_a * mean_b + c1) * (2 * covariance + c2)) / (
        (mean_a ** 2 + mean_b ** 2 + c1) * (var_a + var_b + c2))


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    values = ssim_map(a, b)
    return float(values[mask > 0].mean() if mask is not None else values.mean())


def ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Zero-mean normalised cross-correlation in [-1, 1]."""
    selected = (mask > 0) if mask is not None else np.ones(a.shape, bool)
    x = a[selected].astype(np.float64)
    y = b[selected].astype(np.float64)
    x -= x.mean()
    y -= y.mean()
    return float((x * y).sum() / max(np.sqrt((x * x).sum() * (y * y).sum()), 1e-9))


def _grey(image: np.ndarray, width: int) -> np.ndarray:
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small


@dataclass(frozen=True)
class Comparison:
    ssim: float
    ncc: float
    overlap: float  # share of the reference's covered pixels that the candidate also covers
    inliers: int


def compare_panoramas(reference: np.ndarray, candidate: np.ndarray) -> Comparison:
    """Register ``candidate`` onto ``reference`` (both BGR) and measure how alike they are."""
    ref = _grey(reference, WORK_WIDTH)
    cand = _grey(candidate, WORK_WIDTH)
    ref_mask = (cv2.resize(reference.max(axis=2) if reference.ndim == 3 else reference,
                           (ref.shape[1], ref.shape[0]), interpolation=cv2.INTER_NEAREST) > 8).astype(np.uint8)
    sift = cv2.SIFT_create(4000)
    kp_ref, des_ref = sift.detectAndCompute(ref, None)
    kp_cand, des_cand = sift.detectAndCompute(cand, None)
    if des_ref is None or des_cand is None:
        return Comparison(0.0, 0.0, 0.0, 0)
    matches = [m for m, n in cv2.BFMatcher().knnMatch(des_cand, des_ref, k=2) if m.distance < 0.75 * n.distance]
    if len(matches) < 10:
        return Comparison(0.0, 0.0, 0.0, len(matches))
    src = np.float32([kp_cand[m.queryIdx].pt for m in matches])
    dst = np.float32([kp_ref[m.trainIdx].pt for m in matches])
    homography, inliers = cv2.findHomography(src, dst, cv2.RANSAC, 4.0)
    if homography is None:
        return Comparison(0.0, 0.0, 0.0, 0)
    size = (ref.shape[1], ref.shape[0])
    warped = cv2.warpPerspective(cand, homography, size)
    covered = cv2.warpPerspective(np.ones_like(cand), homography, size, flags=cv2.INTER_NEAREST)
    both = cv2.erode((covered & ref_mask).astype(np.uint8), np.ones((7, 7), np.uint8))
    overlap = float(both.sum() / max(1, ref_mask.sum()))
    return Comparison(ssim(ref, warped, both), ncc(ref, warped, both), overlap, int(inliers.sum()))
