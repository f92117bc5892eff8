"""Optional stabilisation of shaky phone video, as filters for the one-pass ladder.

Two engines, chosen by ``VIDEO_STABILIZER`` (``auto`` prefers the first):

* ``vidstab``: ffmpeg's libvidstab. An analysis pass (``vidstabdetect``) writes the camera motion to a
  file; the ladder applies ``vidstabtransform`` with it (smoothing, optimal static zoom).
* ``opencv``: for ffmpeg builds without libvidstab. Small grey frames are decoded once; OpenCV tracks
  corners between frames (Lucas-Kanade) and fits a similarity transform; the camera path is smoothed
  with a moving average, and the difference becomes per-frame ``crop`` offsets that ffmpeg's
  ``sendcmd`` feeds to a crop filter (a fixed zoom hides the moving border), scaled back to size.

Both analyse the same normalised frames the ladder encodes, so the motion is measured in the same
pixels it is corrected in. The summary records which engine ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from media_service.errors import ProcessingError
from media_service.media.video.ffmpeg import FFmpegTools, has_filter, run_ffmpeg, safe_input_args
from media_service.media.video.ladder import LadderInput, escape_filter_value, normalise_filters
from media_service.media.video.presets import PlannedRendition

#: Frames on each side averaged for the smoothed camera path (about a second at 30 fps).
SMOOTHING_RADIUS = 15
#: Share of width/height kept free on each side for the OpenCV engine's moving crop.
CROP_MARGIN = 0.06
#: Long side of the grey frames the OpenCV engine analyses.
OPENCV_ANALYSIS_LONG_SIDE = 320


@dataclass
class StabilizationPlan:
    filters: list[str]
    summary: dict[str, Any] = field(default_factory=dict)


def choose_engine(choice: str, tools: FFmpegTools) -> str:
    """The stabilisation engine for ``choice`` (VIDEO_STABILIZER: auto, vidstab or opencv)."""
    if choice not in {"auto", "vidstab", "opencv"}:
        raise ProcessingError("setting VIDEO_STABILIZER must be auto, vidstab or opencv", code="bad_setting")
    if choice == "opencv":
        return "opencv"
    available = has_filter(tools.ffmpeg_binary, "vidstabdetect", "vidstabdetect=result=/dev/null")
    if choice == "vidstab" and not available:
        raise ProcessingError("this ffmpeg has no vidstab filters; set VIDEO_STABILIZER=opencv or auto",
                              code="stabilizer_unavailable")
    return "vidstab" if available else "opencv"


def _pre_pass_args(source: LadderInput, max_seconds: float | None) -> list[str]:
    args = ["-noautorotate"]
    if max_seconds is not None:
        args += ["-t", f"{max_seconds:.3f}"]
    return [*args, *safe_input_args(source.path, source.demuxer)]


def plan_stabilization(source: LadderInput, top: PlannedRendition, work: Path, tools: FFmpegTools, *,
                       engine: str = "auto", max_seconds: float | None = None,
                       on_progress: Callable[[float], None] | None = None) -> StabilizationPlan:
    """Analyse the camera motion and return the filters that remove it."""
    engine = choose_engine(engine, tools)
    if engine == "vidstab":
        return _vidstab(source, top, work, tools, max_seconds, on_progress)
    return _opencv(source, top, work, tools, max_seconds, on_progress)


def _vidstab(source: LadderInput, top: PlannedRendition, work: Path, tools: FFmpegTools,
             max_seconds: float | None, on_progress: Callable[[float], None] | None) -> StabilizationPlan:
    transforms = escape_filter_value(str(work / "transforms.trf"))
    chain = ",".join([*normalise_filters(source, top), f"vidstabdetect=shakiness=6:accuracy=9:result={transforms}"])
    run_ffmpeg([*_pre_pass_args(source, max_seconds), "-map", f"0:{source.video.index}", "-vf", chain,
                "-an", "-f", "null", "-"], binary=tools.ffmpeg_binary,
               timeout=tools.ffmpeg_timeout_seconds, duration=source.duration, on_progress=on_progress)
    filters = [f"vidstabtransform=input={transforms}:smoothing={SMOOTHING_RADIUS}:optzoom=1:interpol=bilinear",
               "unsharp=5:5:0.6:3:3:0.0"]
    return StabilizationPlan(filters=filters, summary={"engine": "vidstab", "smoothing": SMOOTHING_RADIUS})


def _opencv(source: LadderInput, top: PlannedRendition, work: Path, tools: FFmpegTools,
            max_seconds: float | None, on_progress: Callable[[float], None] | None) -> StabilizationPlan:
    scale = OPENCV_ANALYSIS_LONG_SIDE / max(top.width, top.height)
    width, height = max(16, int(top.width * scale) // 2 * 2), max(16, int(top.height * scale) // 2 * 2)
    raw = work / "stabilize.gray"
    chain = ",".join([*normalise_filters(source, top), f"scale={width}:{height}", "format=gray"])
    run_ffmpeg([*_pre_pass_args(source, max_seconds), "-map", f"0:{source.video.index}", "-vf", chain, "-an",
                "-f", "rawvideo", "-pix_fmt", "gray", str(raw)], binary=tools.ffmpeg_binary,
               timeout=tools.ffmpeg_timeout_seconds, duration=source.duration,
               on_progress=(lambda f: on_progress(0.8 * f)) if on_progress else None)
    motion = estimate_motion(raw, width, height)
    raw.unlink(missing_ok=True)
    corrections = smooth_corrections(motion, SMOOTHING_RADIUS) / scale  # in top-rung pixels
    crop_w = int(top.width * (1 - 2 * CROP_MARGIN)) // 2 * 2
    crop_h = int(top.height * (1 - 2 * CROP_MARGIN)) // 2 * 2
    margin_x, margin_y = (top.width - crop_w) / 2, (top.height - crop_h) / 2
    commands = work / "stabilize.cmd"
    with commands.open("w") as out:
        for index, (dx, dy) in enumerate(corrections):
            x = min(max(margin_x + dx, 0.0), top.width - crop_w)
            y = min(max(margin_y + dy, 0.0), top.height - crop_h)
            out.write(f"{index / float(source.fps):.4f} crop@stabilize x {x:.1f}, crop@stabilize y {y:.1f};\n")
    if on_progress:
        on_progress(1.0)
    filters = [f"sendcmd=f={escape_filter_value(str(commands))}",
               f"crop@stabilize=w={crop_w}:h={crop_h}:x={margin_x:.1f}:y={margin_y:.1f}",
               f"scale={top.width}:{top.height}:flags=bicubic", "setsar=1"]
    shake = float(np.abs(corrections).mean()) if len(corrections) else 0.0
    return StabilizationPlan(filters=filters, summary={
        "engine": "opencv", "smoothing": SMOOTHING_RADIUS, "frames": len(corrections),
        "mean_correction_px": round(shake, 2), "zoom": round(top.width / crop_w, 3)})


def estimate_motion(raw: Path, width: int, height: int) -> np.ndarray:
    """Frame-to-frame camera translation (dx, dy) in pixels, read one frame at a time (flat memory)."""
    frame_bytes = width * height
    motion: list[tuple[float, float]] = [(0.0, 0.0)]
    previous: np.ndarray | None = None
    with raw.open("rb") as handle:
        while len(block := handle.read(frame_bytes)) == frame_bytes:
            frame = np.frombuffer(block, dtype=np.uint8).reshape(height, width)
            if previous is not None:
                motion.append(_translation(previous, frame))
            previous = frame
    return np.array(motion[: max(1, len(motion))], dtype=np.float64)


def _translation(previous: np.ndarray, frame: np.ndarray) -> tuple[float, float]:
    corners = cv2.goodFeaturesToTrack(previous, maxCorners=200, qualityLevel=0.01, minDistance=8, blockSize=3)
    if corners is None or len(corners) < 8:
        (dx, dy), _ = cv2.phaseCorrelate(previous.astype(np.float32), frame.astype(np.float32))
        return float(dx), float(dy)
    moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, frame, corners, None)
    good = status.reshape(-1) == 1
    if good.sum() < 8:
        return 0.0, 0.0
    matrix, _ = cv2.estimateAffinePartial2D(corners[good], moved[good])
    if matrix is None:
        return 0.0, 0.0
    return float(matrix[0, 2]), float(matrix[1, 2])


def smooth_corrections(motion: np.ndarray, radius: int) -> np.ndarray:
    """Per-frame offsets that move each frame from the shaky camera path onto its moving average."""
    if len(motion) == 0:
        return np.zeros((0, 2))
    path = np.cumsum(motion, axis=0)
    padded = np.pad(path, ((radius, radius), (0, 0)), mode="edge")
    kernel = np.ones(2 * radius + 1) / (2 * radius + 1)
    smoothed = np.stack([np.convolve(padded[:, axis], kernel, mode="valid") for axis in range(2)], axis=1)
    return path - smoothed
