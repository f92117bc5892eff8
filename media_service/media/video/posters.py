"""Poster, storyboard and perceptual hashes from the frames the ladder sampled (2 per second).

Frames are read one at a time (memory stays flat however long the video is) and scored: sharp
(variance of the Laplacian), well exposed, not black, not in the middle of a transition (unlike both
of its neighbours). The best frame's time picks the poster, which is then cut at full size from the top
rendition. The storyboard is a JPEG sprite of small tiles with a WebVTT index (``#xywh=``) that players
use for scrubbing previews.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from media_service.media.video.ffmpeg import FFmpegTools, run_ffmpeg, safe_input_args

#: Most tiles in a storyboard sprite; longer videos get a longer interval between tiles.
MAX_STORYBOARD_TILES = 100
STORYBOARD_COLUMNS = 10
STORYBOARD_TILE_LONG_SIDE = 160
#: Frames hashed for near-duplicate detection.
SIGNATURE_FRAMES = 16


@dataclass(frozen=True)
class FrameScore:
    """Measurements of one sampled frame (luma in 0..255)."""

    index: int
    time: float
    mean_luma: float
    contrast: float  # standard deviation of luma
    sharpness: float  # variance of the Laplacian
    black: bool
    diff_prev: float  # mean absolute luma difference to the previous sampled frame
    transition: bool = False
    score: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def sampled_frames(frames_dir: Path) -> list[Path]:
    return sorted(frames_dir.glob("*.jpg"))


def _gray(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"cannot read sampled frame {path.name}")
    return image


def score_frames(paths: Sequence[Path], fps: float) -> list[FrameScore]:
    """Measure every sampled frame, then mark transitions and compute each frame's poster score."""
    measured: list[FrameScore] = []
    previous: np.ndarray | None = None
    for index, path in enumerate(paths):
        gray = _gray(path)
        mean, std = cv2.meanStdDev(gray)
        sharpness = float(cv2.Laplacian(gray, cv2.CV_64F).var())
        bright_fraction = float(np.count_nonzero(gray > 32)) / gray.size
        diff = float(np.mean(cv2.absdiff(gray, previous))) if previous is not None and \
            previous.shape == gray.shape else 0.0
        measured.append(FrameScore(index=index, time=index / fps, mean_luma=float(mean[0][0]),
                                   contrast=float(std[0][0]), sharpness=sharpness, black=bright_fraction < 0.02,
                                   diff_prev=diff))
        previous = gray
    if not measured:
        return measured
    diffs = [f.diff_prev for f in measured[1:]]
    typical = float(np.median(diffs)) if diffs else 0.0
    threshold = max(15.0, 2.5 * typical)
    scored = []
    for i, frame in enumerate(measured):
        after = measured[i + 1].diff_prev if i + 1 < len(measured) else 0.0
        transition = frame.diff_prev > threshold and after > threshold
        scored.append(_with_score(frame, transition, len(measured)))
    return scored


def _with_score(frame: FrameScore, transition: bool, count: int) -> FrameScore:
    exposure = max(0.0, 1.0 - abs(frame.mean_luma - 118.0) / 118.0)
    contrast = min(1.0, frame.contrast / 40.0)
    score = math.log1p(frame.sharpness) * (0.3 + 0.7 * exposure) * (0.4 + 0.6 * contrast)
    if frame.black:
        score *= 0.01
    if transition:
        score *= 0.2
    if count > 4 and (frame.index == 0 or frame.index >= count - 1):
        score *= 0.8  # first and last frames are often a fade or a thumb on the lens
    return FrameScore(**{**asdict(frame), "transition": transition, "score": score})


def choose_poster(scores: Sequence[FrameScore]) -> FrameScore | None:
    """The best-scoring frame (earliest on ties)."""
    return max(scores, key=lambda f: (f.score, -f.index)) if scores else None


# ------------------------------------------------------------------------------------------ storyboard


@dataclass(frozen=True)
class Storyboard:
    interval: float
    tile_width: int
    tile_height: int
    columns: int
    tiles: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def build_storyboard(frames: Sequence[Path], fps: float, duration: float, sprite_path: Path, vtt_path: Path,
                     sprite_name: str) -> Storyboard | None:
    """Write the sprite (JPEG) and its WebVTT index; ``sprite_name`` is how the VTT refers to the sprite."""
    if not frames or duration <= 0:
        return None
    step = 1.0 / fps
    interval = max(step, duration / MAX_STORYBOARD_TILES)
    interval = math.ceil(interval / step - 1e-9) * step
    tiles = max(1, min(len(frames), math.ceil(duration / interval - 1e-9)))
    with Image.open(frames[0]) as first:
        width, height = first.size
    scale = STORYBOARD_TILE_LONG_SIDE / max(width, height)
    tile_w, tile_h = max(2, round(width * scale)), max(2, round(height * scale))
    columns = min(STORYBOARD_COLUMNS, tiles)
    rows = math.ceil(tiles / columns)
    sprite = Image.new("RGB", (columns * tile_w, rows * tile_h), (0, 0, 0))
    cues = ["WEBVTT", ""]
    for i in range(tiles):
        frame_index = min(len(frames) - 1, round(i * interval * fps))
        with Image.open(frames[frame_index]) as frame:
            tile = frame.convert("RGB").resize((tile_w, tile_h), Image.Resampling.LANCZOS)
        x, y = (i % columns) * tile_w, (i // columns) * tile_h
        sprite.paste(tile, (x, y))
        start, end = i * interval, min(duration, (i + 1) * interval)
        cues += [f"{_timestamp(start)} --> {_timestamp(end)}", f"{sprite_name}#xywh={x},{y},{tile_w},{tile_h}", ""]
    sprite.save(sprite_path, "JPEG", quality=80, optimize=True)
    vtt_path.write_text("\n".join(cues))
    return Storyboard(interval=round(interval, 3), tile_width=tile_w, tile_height=tile_h, columns=columns,
                      tiles=tiles)


# ----------------------------------------------------------------------------------- perceptual hashes


def perceptual_hash(gray: np.ndarray) -> int:
    """64-bit DCT hash (pHash): robust to re-encoding, scaling and small colour changes."""
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()[1:]  # drop the DC term (overall brightness)
    bits = low > np.median(low)
    return int("".join("1" if b else "0" for b in bits), 2)


def video_signature(frames: Sequence[Path], scores: Sequence[FrameScore]) -> list[str]:
    """Hashes of up to :data:`SIGNATURE_FRAMES` evenly spaced frames, skipping flat (black, blank) ones."""
    usable = [s.index for s in scores if not s.black and s.contrast >= 8.0]
    if not usable:
        return []
    count = min(SIGNATURE_FRAMES, len(usable))
    picks = [usable[int(i * len(usable) / count)] for i in range(count)]
    return [f"{perceptual_hash(_gray(frames[i])):016x}" for i in picks]


def signature_match(a: Sequence[str], b: Sequence[str], max_distance: int) -> float:
    """Share of the shorter signature's frames that have a near-identical frame in the other (0..1)."""
    if not a or not b:
        return 0.0
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    other = np.array([int(h, 16) for h in long], dtype=np.uint64)
    matched = 0
    for value in short:
        xor = np.bitwise_xor(other, np.uint64(int(value, 16)))
        distances = np.unpackbits(xor.view(np.uint8)).reshape(len(other), 64).sum(axis=1)
        matched += int(distances.min() <= max_distance)
    return matched / len(short)


# ------------------------------------------------------------------------------- from the renditions


def extract_poster(rendition_mp4: Path, at: float, target: Path, tools: FFmpegTools) -> None:
    """Cut one full-size frame at ``at`` seconds from a rendition (our own, already upright, SDR)."""
    args = ["-ss", f"{max(0.0, at):.3f}", *safe_input_args(rendition_mp4, "mov"), "-map", "0:v:0",
            "-frames:v", "1", "-map_metadata", "-1", "-c:v", "mjpeg", "-q:v", "2", "-f", "image2",
            "-update", "1", str(target)]
    run_ffmpeg(args, binary=tools.ffmpeg_binary, timeout=min(300.0, tools.ffmpeg_timeout_seconds))
    if not target.exists():  # seeking past the last keyframe of a very short clip: take the first frame
        args[1] = "0"
        run_ffmpeg(args, binary=tools.ffmpeg_binary, timeout=min(300.0, tools.ffmpeg_timeout_seconds))


def animated_preview(rendition_mp4: Path, start: float, seconds: float, target: Path,
                     tools: FFmpegTools, *, long_side: int = 320, fps: int = 10) -> None:
    """A short looping animated WebP (no audio, no metadata) starting at ``start``."""
    scale = f"scale='if(gte(iw,ih),{long_side},-2)':'if(gte(iw,ih),-2,{long_side})'"
    args = ["-ss", f"{max(0.0, start):.3f}", "-t", f"{seconds:.3f}", *safe_input_args(rendition_mp4, "mov"),
            "-map", "0:v:0", "-vf", f"fps={fps},{scale}", "-an", "-map_metadata", "-1",
            "-c:v", "libwebp_anim", "-loop", "0", "-quality", "60", "-compression_level", "4",
            "-f", "webp", str(target)]
    run_ffmpeg(args, binary=tools.ffmpeg_binary, timeout=min(300.0, tools.ffmpeg_timeout_seconds))
