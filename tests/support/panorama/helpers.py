"""Helpers for the panorama and spin tests: the real photo sets, OpenCV's stitcher as the reference,
and a folder of artifacts (git-ignored) to look at what the code produces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from media_service.media.panorama.stitcher import Photo
from tests.conftest import REPO, media
from tests.support.options import ingest_limits, spin_limits

ARTIFACTS = REPO / "test-artifacts" / "panorama"
SETS = {"hill": ("1.JPG", "2.JPG", "3.JPG"), "pier": ("1.JPG", "2.JPG", "3.JPG"),
        "berlin": ("01.jpg", "02.jpg", "03.jpg")}
#: The photo limits (and spin limits) of these tests: the defaults, with room for 8 MP phone photos.
INGEST = ingest_limits(MAX_IMAGE_PIXELS=100_000_000, MAX_GIF_FRAMES=1000)
SPINS = spin_limits(MAX_IMAGE_PIXELS=100_000_000, MAX_GIF_FRAMES=1000)


def photo_paths(name: str) -> list[Path]:
    return [media(f"panorama/{name}/{file}") for file in SETS[name]]


def photos(name: str) -> list[Photo]:
    return [Photo(path, path.name) for path in photo_paths(name)]


def opencv_reference(paths: list[Path], seeds: int = 10) -> np.ndarray:
    """What ``cv2.Stitcher_create(PANORAMA)`` makes of the photos with its default settings (BGR).

    OpenCV's stitcher is not deterministic (RANSAC in parallel threads): on ``berlin`` it fails with
    "need more images" in about half of its runs and its successful outputs differ by up to 40 % in
    width. To compare against a fixed reference it runs single-threaded with a seeded RNG, trying
    seeds in order until one succeeds (seed 0 does for every set here).
    """
    images = [cv2.imread(str(p)) for p in paths]
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        for seed in range(seeds):
            cv2.setRNGSeed(seed)
            status, result = cv2.Stitcher_create(cv2.Stitcher_PANORAMA).stitch(images)
            if status == cv2.Stitcher_OK:
                return result
    finally:
        cv2.setNumThreads(threads)
    pytest.skip(f"OpenCV's stitcher failed with {seeds} seeds (status {status}); nothing to compare with")


def save_artifact(name: str, bgr: np.ndarray, width: int | None = 1600) -> Path:
    """Write a PNG (what the image viewer shows) under test-artifacts/panorama/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if width and bgr.shape[1] > width:
        bgr = cv2.resize(bgr, (width, round(bgr.shape[0] * width / bgr.shape[1])), interpolation=cv2.INTER_AREA)
    path = ARTIFACTS / f"{name}.png"
    cv2.imwrite(str(path), bgr)
    return path


def side_by_side(left: np.ndarray, right: np.ndarray, height: int = 500) -> np.ndarray:
    def fit(image: np.ndarray) -> np.ndarray:
        width = round(image.shape[1] * height / image.shape[0])
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)

    gap = np.full((height, 12, 3), 255, np.uint8)
    return np.hstack([fit(left), gap, fit(right)])
