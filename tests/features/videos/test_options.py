"""Optional processing: stabilisation (vidstab and the OpenCV fallback) and face blurring."""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from media_service.media.video.faces import HaarCascade, find_cascade, group_rectangles, regions_from_detections
from tests.conftest import media
from tests.support.videos import FFMPEG, ffprobe, shaky_clip

Run = Callable[..., dict[str, Any]]


def gray_frames(path: Path, width: int = 320) -> list[np.ndarray]:
    probe = ffprobe(path)["streams"][0]
    height = round(probe["height"] * width / probe["width"] / 2) * 2
    raw = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-vf", f"scale={width}:{height}", "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], check=True, capture_output=True).stdout
    frames = np.frombuffer(raw, dtype=np.uint8).reshape(-1, height, width)
    return [f.astype(np.float32) for f in frames]


def jitter(frames: list[np.ndarray]) -> float:
    """Mean frame-to-frame shift in pixels after removing the smooth part (what a viewer sees as shake)."""
    shifts = np.array([cv2.phaseCorrelate(a, b)[0] for a, b in itertools.pairwise(frames)])
    path = np.cumsum(shifts, axis=0)
    kernel = np.ones(9) / 9
    smooth = np.stack([np.convolve(np.pad(path[:, i], 4, mode="edge"), kernel, mode="valid") for i in range(2)], 1)
    return float(np.abs(path - smooth).mean())


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["vidstab", "opencv"])
def test_stabilisation_removes_most_of_the_shake(clips: Path, run_pipeline: Run, engine: str) -> None:
    source = shaky_clip(clips)
    result = run_pipeline(source, profile="promo", options={"stabilize": True}, VIDEO_STABILIZER=engine)
    assert result["stabilization"]["engine"] == engine
    before, after = jitter(gray_frames(source)), jitter(gray_frames(result["out"] / "video.mp4"))
    assert after < 0.5 * before, (before, after)
    stream = ffprobe(result["out"] / "video.mp4")["streams"][0]
    assert (stream["width"], stream["height"]) == (640, 360)


def test_haar_cascade_finds_the_faces_of_a_real_film() -> None:
    cascade = HaarCascade(find_cascade())
    raw = subprocess.run([FFMPEG, "-v", "error", "-ss", "2", "-i", str(media("video/friday.mp4")), "-frames:v", "3",
                          "-r", "1", "-vf", "scale=480:-2", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         check=True, capture_output=True).stdout
    frames = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 360, 480)
    faces = [face for frame in frames for face in cascade.detect(cv2.equalizeHist(frame), min_size=30)]
    # the woman standing at the counter: her face is around (280-330, 55-105) in these frames
    assert any(260 <= x + w / 2 <= 340 and 50 <= y + h / 2 <= 110 for x, y, w, h in faces), faces


def test_face_regions_are_grown_merged_and_even() -> None:
    detections = [(0.0, (100, 100, 40, 40)), (0.5, (104, 98, 40, 42)), (3.0, (10, 10, 20, 20))]
    regions = regions_from_detections(detections, 320, 240, 4.0)
    assert len(regions) == 2
    first = regions[0]
    assert first.start == 0.0 and first.end == pytest.approx(1.0) and first.x < 100 and first.w > 40
    assert all(v % 2 == 0 for r in regions for v in (r.x, r.y, r.w, r.h))
    assert group_rectangles([(10, 10, 20, 20)] * 3 + [(200, 200, 20, 20)], 3) == [(10, 10, 20, 20)]


@pytest.mark.slow
def test_faces_are_blurred_in_the_outputs(run_pipeline: Run, tmp_path: Path) -> None:
    clip = tmp_path / "friday_3s.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-ss", "3", "-t", "3", "-i", str(media("video/friday.mp4")), "-c:v",
                    "libx264", "-c:a", "aac", str(clip)], check=True)
    plain = run_pipeline(clip, options={"blur_faces": False})
    blurred = run_pipeline(clip, options={"blur_faces": True})
    regions = blurred["faces"]["regions"]
    assert regions, blurred["faces"]
    x, y, w, h = regions[0]["box"]
    at = (regions[0]["start"] + regions[0]["end"]) / 2

    def sharpness(path: Path) -> float:
        frames = gray_frames(path, width=640)
        index = min(len(frames) - 1, int(at * blurred["fps"]))
        return float(cv2.Laplacian(frames[index][y:y + h, x:x + w], cv2.CV_32F).var())

    assert sharpness(blurred["out"] / "video.mp4") < 0.3 * sharpness(plain["out"] / "video.mp4")
