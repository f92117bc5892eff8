"""How much of each input photo a panorama shows, measured the same way for any stitcher (test helper).

Each photo is registered onto the panorama (SIFT + RANSAC homography fitted on the matches; over a
single photo's field of view the spherical warp is close to a homography), then a grid over the photo
is mapped into the panorama: the photo's kept fraction is the share of grid points that land inside
the image on covered (not black-border) pixels. It needs nothing from the stitcher but its output, so
our diagnostics and OpenCV's ``cv2.Stitcher`` are measured alike.
"""

from __future__ import annotations

import cv2
import numpy as np

WORK_SIDE = 900


def _small(image: np.ndarray) -> tuple[np.ndarray, float]:
    factor = min(1.0, WORK_SIDE / max(image.shape[:2]))
    if factor < 1.0:
        image = cv2.resize(image, (round(image.shape[1] * factor), round(image.shape[0] * factor)),
                           interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return grey, factor


def covered_mask(bgr: np.ndarray) -> np.ndarray:
    """Pixels a stitcher filled: not part of a black border (closed, so dark scene pixels still count)."""
    filled = (bgr.max(axis=2) > 4).astype(np.uint8) * 255
    return cv2.morphologyEx(filled, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))


def photo_to_panorama(photo: np.ndarray, panorama: np.ndarray) -> np.ndarray | None:
    """Homography from photo pixels to panorama pixels (both BGR), or None when they do not match."""
    photo_grey, photo_factor = _small(photo)
    pano_grey, pano_factor = _small(panorama)
    # Local contrast normalisation: matching must not depend on either stitcher's exposure handling.
    clahe = cv2.createCLAHE(2.0, (8, 8))
    photo_grey, pano_grey = clahe.apply(photo_grey), clahe.apply(pano_grey)
    sift = cv2.SIFT_create(6000)
    kp_photo, des_photo = sift.detectAndCompute(photo_grey, None)
    kp_pano, des_pano = sift.detectAndCompute(pano_grey, None)
    if des_photo is None or des_pano is None or len(kp_pano) < 2:
        return None
    matches = [m for m, n in cv2.BFMatcher().knnMatch(des_photo, des_pano, k=2) if m.distance < 0.8 * n.distance]
    if len(matches) < 12:
        return None
    src = np.float32([kp_photo[m.queryIdx].pt for m in matches]) / photo_factor
    dst = np.float32([kp_pano[m.trainIdx].pt for m in matches]) / pano_factor
    cv2.setRNGSeed(7)
    homography, inliers = cv2.findHomography(src, dst, cv2.RANSAC, 0.01 * np.hypot(*panorama.shape[:2]))
    if homography is None or inliers.sum() < 12:
        return None
    return homography


def kept_fraction(photo: np.ndarray, panorama: np.ndarray, samples: int = 60) -> float:
    """Share of ``photo`` (BGR) that ``panorama`` (BGR, black borders allowed) shows; 0 when not found."""
    homography = photo_to_panorama(photo, panorama)
    if homography is None:
        return 0.0
    height, width = photo.shape[:2]
    xs, ys = np.meshgrid(np.linspace(0, width - 1, samples), np.linspace(0, height - 1, samples))
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1).reshape(1, -1, 2)
    mapped = cv2.perspectiveTransform(grid, homography)[0]
    columns, rows = np.round(mapped[:, 0]).astype(int), np.round(mapped[:, 1]).astype(int)
    inside = (columns >= 0) & (columns < panorama.shape[1]) & (rows >= 0) & (rows < panorama.shape[0])
    covered = covered_mask(panorama)
    shown = np.zeros(len(mapped), bool)
    shown[inside] = covered[rows[inside], columns[inside]] > 0
    return float(shown.mean())
