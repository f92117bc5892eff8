"""Product spins (360-degree turntable views) from a photo set or a turntable video.

Photo sets are put in order by EXIF capture time when every photo has one, otherwise by natural name
order (``2.png`` before ``10.png``). From a video, one full revolution is found as the lag at which the
view repeats (the frame where the product shows its starting side again), and N frames are taken at
even angles. Every frame is then framed on the product found against the background (centred, one
consistent scale), brought to one exposure, optionally put on a clean background, and published at
several widths in WebP and JPEG with a sprite sheet and a manifest.


Over 500 lines: ordering, revolution finding, framing and publishing share the frame types and the
product-box helpers; next step when it grows: a ``spin/`` package with one module per stage."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps

from media_service.errors import MediaServiceError
from media_service.media.ingest.facts import IngestLimits
from media_service.media.ingest.images import open_image_safely
from media_service.media.ingest.sniff import sniff_file
from media_service.media.panorama.errors import StitchingError
from media_service.media.panorama.tiles import resize_to_width, save_image
from media_service.media.video.ffmpeg import FFmpegTools, run_ffmpeg, safe_input_args
from media_service.media.video.probe import probe_video

Progress = Callable[[float], None]

FRAME_COUNTS = (24, 36, 72)
MANIFEST_VERSION = 1
#: Width of the greyscale frames used to find the revolution.
ANALYSIS_WIDTH = 128
#: A revolution is accepted when the view at one turn matches the start at least this well
#: (0 = no better than the least similar lag, 1 = identical).
MIN_REVOLUTION_CONFIDENCE = 0.5
#: At most this many frames are analysed for the revolution (80 s at 30 fps): bounds time and memory
#: whatever frame rate a file claims.
MAX_ANALYSED_FRAMES = 2400
#: Margin around the product, as a fraction of its size.
FRAMING_MARGIN = 0.12
#: A turn may be up to this share short of the frames asked for: the missing views repeat a neighbour.
MAX_REPEATED_SHARE = 0.1
#: A photo set on a plain backdrop counts as taken with a fixed camera when the product's box keeps its
#: height within this share of the median and its centre within this share of the frame width...
FIXED_HEIGHT_SPREAD = 0.15
FIXED_CENTRE_SPREAD = 0.12
#: ...and, on a backdrop with detail, when the backdrop changes by less than this (mean grey levels).
FIXED_BACKDROP_CHANGE = 6.0


@dataclass(frozen=True)
class SpinLimits:
    """The service's limits of spins (its SPIN_* settings) and of the files they are made from."""

    widths: tuple[int, ...]
    sprite_frame_width: int
    quality: int
    max_video_seconds: float
    max_frame_side: int
    max_photos: int
    ingest: IngestLimits


@dataclass(frozen=True)
class SpinOptions:
    """How to build a spin."""

    frames: int | None = None  # 24 | 36 | 72; photo sets default to all photos
    clean_background: bool = False
    background_color: tuple[int, int, int] = (255, 255, 255)
    widths: tuple[int, ...] = (320, 640, 1280)
    sprite_frame_width: int = 160
    quality: int = 85

    def __post_init__(self) -> None:
        if self.frames is not None and self.frames not in FRAME_COUNTS:
            raise ValueError(f"frames must be one of {', '.join(map(str, FRAME_COUNTS))}")


@dataclass(frozen=True)
class SpinPhoto:
    path: Path
    name: str


@dataclass
class SpinFrames:
    """Frames in spin order (RGB uint8, or RGBA when the source had transparency) and where they came from."""

    images: list[np.ndarray]
    sources: list[dict[str, Any]]
    source: str  # "photos" | "video"
    details: dict[str, Any] = field(default_factory=dict)


# -- photo sets -----------------------------------------------------------------------------------------


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders embedded numbers by value: ``2.png`` < ``10.png``."""
    return tuple(int(part) if part.isdecimal() else part.lower() for part in re.split(r"(\d+)", name))


def capture_time(image: Image.Image) -> datetime | None:
    """EXIF DateTimeOriginal (with sub-seconds), or None."""
    try:
        exif = image.getexif().get_ifd(0x8769)
        text = exif.get(0x9003) or image.getexif().get(0x0132)
        if not text:
            return None
        moment = datetime.strptime(str(text).strip("\x00 "), "%Y:%m:%d %H:%M:%S")
        sub = str(exif.get(0x9291) or "").strip("\x00 ")
        return moment.replace(microsecond=int((sub + "000000")[:6])) if sub.isdigit() else moment
    except (ValueError, TypeError, KeyError, OSError):
        return None


def order_photos(names: Sequence[str], times: Sequence[datetime | None]) -> tuple[list[int], str]:
    """Spin order: by capture time when every photo has a distinct one, else by natural name order."""
    if times and all(t is not None for t in times) and len(set(times)) == len(times):
        return sorted(range(len(names)), key=lambda i: times[i]), "capture_time"  # type: ignore[arg-type,return-value]
    return sorted(range(len(names)), key=lambda i: (natural_key(names[i]), i)), "name"


def even_picks(available: int, wanted: int) -> list[int]:
    """``wanted`` indices spread evenly over ``available`` items of one full turn.

    When a few views are missing (at most ``MAX_REPEATED_SHARE`` of ``wanted``) neighbours are repeated
    so the spin still has ``wanted`` frames at even angles; with fewer items, all of them are used.
    """
    if wanted > available and available < (1 - MAX_REPEATED_SHARE) * wanted:
        return list(range(available))
    if wanted >= available:
        return [math.floor(k * available / wanted) for k in range(wanted)]
    return [round(k * available / wanted) % available for k in range(wanted)]


def load_photo_frames(photos: Sequence[SpinPhoto], limits: IngestLimits, frames: int | None) -> SpinFrames:
    """Read, order and (when ``frames`` is less than the photos) evenly thin a turntable photo set."""
    images: list[np.ndarray] = []
    times: list[datetime | None] = []
    for photo in photos:
        try:
            with open_image_safely(photo.path, limits) as opened:
                times.append(capture_time(opened))
                upright = ImageOps.exif_transpose(opened)
                has_alpha = "A" in upright.getbands() or "transparency" in upright.info
                images.append(np.asarray(upright.convert("RGBA" if has_alpha else "RGB")))
        except (MediaServiceError, OSError, ValueError) as exc:
            raise StitchingError(f"photo {photo.name or '?'} could not be read ({exc}); export it again as JPEG "
                                 "or PNG", code="unreadable_photo") from exc
    order, ordered_by = order_photos([p.name for p in photos], times)
    picks = [order[k] for k in even_picks(len(order), frames or len(order))]
    sources = [{"photo": photos[i].name, "input_index": i} for i in picks]
    return SpinFrames([images[i] for i in picks], sources, "photos",
                      {"ordered_by": ordered_by, "photos": len(photos), "requested_frames": frames,
                       "repeated_frames": len(picks) - len(set(picks))})


# -- turntable video ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revolution:
    """One full turn: its length in frames (sub-frame precision) and how clearly the view repeats."""

    period: float
    confidence: float
    similarity: np.ndarray  # mean similarity per lag (index = lag in frames)


def detect_revolution(frames: np.ndarray, min_period: int = 8) -> Revolution:
    """Find the lag at which the view repeats in greyscale ``frames`` (T, H, W).

    The static background is removed (temporal median), each frame is normalised, and the mean
    correlation between frames ``t`` and ``t + lag`` is computed for every lag from one Gram matrix.
    The revolution is the first lag whose similarity peak is (nearly) as high as the best one, which
    rejects two or more turns; a parabola through the peak gives sub-frame precision.
    """
    count = len(frames)
    if count < 2 * min_period:
        raise StitchingError(f"the video has only {count} frames; film at least one full, slow turn of the "
                             "turntable", code="video_too_short")
    data = frames.reshape(count, -1).astype(np.float32)
    data -= np.median(data, axis=0, keepdims=True)
    data -= data.mean(axis=1, keepdims=True)
    data /= np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-6)
    gram = data @ data.T
    min_overlap = max(3, count // 20)
    lags = np.arange(count - min_overlap + 1)
    similarity = np.array([np.mean(np.diagonal(gram, offset=int(lag))) for lag in lags])
    # The first dip after lag 0 marks the end of "neighbouring frames look alike".
    start = min_period
    while start + 1 < len(similarity) and similarity[start + 1] < similarity[start]:
        start += 1
    if start + 2 >= len(similarity):
        raise StitchingError("no full revolution was found: the video must show the product turning at least "
                             "once completely (a bit more is better); film longer or turn faster",
                             code="no_revolution")
    window = similarity[start:]
    floor = float(similarity[start:].min())
    peaks = [i for i in range(1, len(window) - 1) if window[i] >= window[i - 1] and window[i] >= window[i + 1]]
    if not peaks:
        raise StitchingError("no full revolution was found: the video must show the product turning at least "
                             "once completely; film longer, keep the camera still", code="no_revolution")
    best = max(window[i] for i in peaks)
    chosen = min(i for i in peaks if window[i] >= best - 0.1 * (best - floor))
    lag = start + chosen
    confidence = (similarity[lag] - floor) / max(1e-6, 1.0 - floor)
    period = float(lag)
    if 0 < lag < len(similarity) - 1:
        left, centre, right = similarity[lag - 1], similarity[lag], similarity[lag + 1]
        curvature = left - 2 * centre + right
        if curvature < 0:
            period += float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))
    if confidence < MIN_REVOLUTION_CONFIDENCE:
        raise StitchingError("the view never clearly returns to where it started, so no full revolution was "
                             "found; film the product turning at least once completely with the camera on a "
                             "stand, and keep hands out of the picture", code="no_revolution",
                             confidence=round(float(confidence), 3))
    return Revolution(period, float(confidence), similarity)


def frames_at_even_angles(period: float, count: int) -> list[int]:
    """Frame numbers of ``count`` views spread evenly over one revolution starting at frame 0."""
    return [round(k * period / count) for k in range(count)]


def _video_stream(path: Path, limits: SpinLimits) -> tuple[str | None, Any]:
    sniffed = sniff_file(path)
    if sniffed.kind != "video":
        raise StitchingError("a spin from video needs a video file (MP4, MOV or WebM)", code="not_a_video")
    tools = limits.ingest.tools
    info = probe_video(path, demuxer=sniffed.demuxer, binary=tools.ffprobe_binary, timeout=tools.probe_timeout_seconds,
                       max_pixels=limits.ingest.max_video_pixels, vfr_sample_packets=0)
    stream = info.video
    if stream is None:
        raise StitchingError("the file has no video stream; upload the turntable video again", code="no_video_stream")
    longest = limits.max_video_seconds
    duration = stream.duration or info.media_duration
    if duration is not None and duration > longest:
        raise StitchingError(f"the video is {duration:.0f} s long; a spin is made from at most {longest:g} s: trim it "
                             "to one or two turns of the turntable", code="video_too_long")
    return sniffed.demuxer, stream


def _ffmpeg_frames(path: Path, demuxer: str | None, tools: FFmpegTools, target: Path, filters: str,
                   pix_fmt: str, frame_limit: int, duration: float | None, progress: Progress | None,
                   frame_bytes: int) -> None:
    """Decode up to ``frame_limit`` frames through ``filters`` into a raw file (size-capped accordingly)."""
    max_bytes = frame_limit * frame_bytes + 1024 * 1024

    args = [*safe_input_args(path, demuxer), "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", filters,
            "-fps_mode", "passthrough", "-pix_fmt", pix_fmt, "-f", "rawvideo"]
    args += ["-frames:v", str(frame_limit)]
    args += ["-y", str(target)]
    run_ffmpeg(args, timeout=tools.ffmpeg_timeout_seconds, binary=tools.ffmpeg_binary, duration=duration,
               on_progress=progress,
               max_output_bytes=max_bytes, watch_paths=[target])


def load_video_frames(path: Path, limits: SpinLimits, frames: int, staging: Path,
                      progress: Progress | None = None) -> SpinFrames:
    """Decode a turntable video twice: small greyscale frames to find the revolution, then only the
    ``frames`` chosen views at full size (ffmpeg applies the display rotation)."""
    report = progress or (lambda fraction: None)
    demuxer, stream = _video_stream(path, limits)
    width, height = stream.display_width, stream.display_height
    max_side = limits.max_frame_side
    shrink = min(1.0, max_side / max(width, height))
    width, height = max(2, round(width * shrink)), max(2, round(height * shrink))
    small_w = ANALYSIS_WIDTH
    small_h = max(2, round(height * small_w / width))
    duration = stream.duration
    analysis = staging / "analysis.gray"
    _ffmpeg_frames(path, demuxer, limits.ingest.tools, analysis, f"scale={small_w}:{small_h}:flags=area,format=gray",
                   "gray", MAX_ANALYSED_FRAMES, duration, lambda f: report(0.45 * f), small_w * small_h)
    small = np.fromfile(analysis, np.uint8)
    small = small[: small.size // (small_w * small_h) * small_w * small_h].reshape(-1, small_h, small_w)
    analysis.unlink()
    revolution = detect_revolution(small)
    if revolution.period < (1 - MAX_REPEATED_SHARE) * frames:
        raise StitchingError(f"the product turns once in only {revolution.period:.0f} video frames, fewer than the "
                             f"{frames} views asked for; ask for fewer frames or film a slower turn (or at a higher "
                             "frame rate)", code="revolution_too_short")
    numbers = frames_at_even_angles(revolution.period, frames)
    unique = sorted(set(numbers))
    fps = stream.avg_frame_rate or stream.r_frame_rate or 0.0
    # Only the product's surroundings are decoded to RGB: what moves during the turn, plus a margin.
    motion = _motion_box(small, (width, height))
    crop = _crop_around(motion, (width, height), margin=FRAMING_MARGIN + 0.05) if motion else (0, 0, width, height)
    crop_x, crop_y, crop_w, crop_h = crop
    select = "+".join(f"eq(n,{n})" for n in unique)
    chosen = staging / "frames.rgb"
    last_time = (max(numbers) + 1) / fps if fps else None
    _ffmpeg_frames(path, demuxer, limits.ingest.tools, chosen,
                   f"select='{select}',scale={width}:{height}:flags=bicubic,crop={crop_w}:{crop_h}:{crop_x}:{crop_y}",
                   "rgb24", len(unique), last_time, lambda f: report(0.45 + 0.25 * f), crop_w * crop_h * 3)
    frame_bytes = crop_w * crop_h * 3
    by_number: dict[int, np.ndarray] = {}
    with chosen.open("rb") as decoded:
        for number in unique:
            block = decoded.read(frame_bytes)
            if len(block) < frame_bytes:
                raise StitchingError("the video ended before the chosen frames could be read; upload it again",
                                     code="video_truncated")
            by_number[number] = np.frombuffer(block, np.uint8).reshape(crop_h, crop_w, 3)
    chosen.unlink()
    images = [by_number[n] for n in numbers]
    sources = [{"video_frame": n, "time": round(n / fps, 3) if fps else None} for n in numbers]
    repeated = len(numbers) - len(unique)
    details = {"revolution": {"period_frames": round(revolution.period, 2), "fps": round(fps, 3) if fps else None,
                              "seconds": round(revolution.period / fps, 3) if fps else None,
                              "confidence": round(revolution.confidence, 3), "analysed_frames": len(small)},
               "repeated_frames": repeated,
               "motion_box": None if motion is None else [motion[0] - crop_x, motion[1] - crop_y, motion[2], motion[3]]}
    return SpinFrames(images, sources, "video", details)


def _crop_around(box: list[int], size: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """``box`` grown by ``margin`` of its size on each side, clamped to the frame, with even sides."""
    x, y, w, h = box
    grow_x, grow_y = round(w * margin) + 4, round(h * margin) + 4
    left, top = max(0, x - grow_x), max(0, y - grow_y)
    right, bottom = min(size[0], x + w + grow_x), min(size[1], y + h + grow_y)
    width, height = max(2, (right - left) // 2 * 2), max(2, (bottom - top) // 2 * 2)
    return left, top, width, height


def _motion_box(small: np.ndarray, size: tuple[int, int]) -> list[int] | None:
    """Where things move over the whole video (the turning product), in full-frame pixels."""
    spread = np.std(small.astype(np.float32), axis=0)
    threshold = max(6.0, float(np.percentile(spread, 50)) * 3)
    moving = (spread > threshold).astype(np.uint8) * 255
    moving = cv2.morphologyEx(moving, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    box = _largest_blob_box(moving)
    if box is None:
        return None
    factor = size[0] / small.shape[2]
    x, y, w, h = box
    return [round(x * factor), round(y * factor), round(w * factor), round(h * factor)]


# -- framing on the product, exposure, background -----------------------------------------------------


def _largest_blob_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box of the mask's significant blobs (those at least 5 % of the largest)."""
    count, _, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    if count <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = [i + 1 for i, area in enumerate(areas) if area >= 0.05 * areas.max()]
    x0 = min(stats[i, cv2.CC_STAT_LEFT] for i in keep)
    y0 = min(stats[i, cv2.CC_STAT_TOP] for i in keep)
    x1 = max(stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH] for i in keep)
    y1 = max(stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT] for i in keep)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def background_color(rgb: np.ndarray) -> np.ndarray:
    """The backdrop's colour: the median of a thin strip along the frame's border."""
    height, width = rgb.shape[:2]
    band = max(2, min(height, width) // 25)
    border = np.concatenate([rgb[:band].reshape(-1, 3), rgb[-band:].reshape(-1, 3),
                             rgb[:, :band].reshape(-1, 3), rgb[:, -band:].reshape(-1, 3)])
    return np.median(border, axis=0)


def product_mask(image: np.ndarray) -> np.ndarray:
    """uint8 mask of the product: the alpha channel when there is one, else what differs from the backdrop."""
    if image.shape[2] == 4:
        return np.where(image[:, :, 3] > 16, 255, 0).astype(np.uint8)
    rgb = image[:, :, :3]
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    backdrop = cv2.cvtColor(background_color(rgb).astype(np.uint8).reshape(1, 1, 3), cv2.COLOR_RGB2LAB)
    distance = np.linalg.norm(lab - backdrop.astype(np.float32).reshape(1, 1, 3), axis=2)
    height, width = distance.shape
    band = max(2, min(height, width) // 25)
    border = np.concatenate([distance[:band].ravel(), distance[-band:].ravel(), distance[:, :band].ravel(),
                             distance[:, -band:].ravel()])
    threshold = max(18.0, float(np.percentile(border, 95)) * 1.5)
    mask = np.where(distance > threshold, 255, 0).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel, iterations=2)
    return mask


def _flatten(image: np.ndarray, color: Sequence[int]) -> np.ndarray:
    """RGB with any alpha composited onto ``color``."""
    if image.shape[2] == 3:
        return image
    alpha = image[:, :, 3:4].astype(np.float32) / 255.0
    background = np.array(color, np.float32).reshape(1, 1, 3)
    return np.clip(image[:, :, :3] * alpha + background * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)


def _boxes_on_small_copies(images: list[np.ndarray], side: int = 512) -> list[tuple[int, int, int, int] | None]:
    """Product boxes found on copies at most ``side`` pixels wide, in full-size pixels."""
    boxes: list[tuple[int, int, int, int] | None] = []
    for image in images:
        factor = min(1.0, side / max(image.shape[:2]))
        small = image if factor >= 1.0 else cv2.resize(
            image, (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor))),
            interpolation=cv2.INTER_AREA)
        box = _largest_blob_box(product_mask(small))
        boxes.append(None if box is None or box[2] * box[3] == 0 else
                     tuple(round(v / factor) for v in box))  # type: ignore[misc]
    return boxes


def fixed_camera(images: list[np.ndarray], boxes: list[tuple[int, int, int, int] | None]) -> bool:
    """Whether a photo set was taken with a fixed camera (a turntable): then one scale and one crop suit
    every frame, and the product's true change of size with the angle (perspective) is kept.

    On a backdrop with detail the backdrop itself tells: it stays put around the product. On a plain or
    transparent backdrop the product's box does: with a fixed camera its height changes only with
    perspective and its centre stays near the turntable's axis; a hand-held camera changes both more.
    """
    if len({image.shape[:2] for image in images}) != 1 or any(box is None for box in boxes):
        return False
    height, width = images[0].shape[:2]
    found = [box for box in boxes if box is not None]
    factor = min(1.0, 160 / width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    backdrop = np.ones((size[1], size[0]), bool)
    for x, y, w, h in found:
        grow = 0.05 * max(w, h)
        x0, y0 = max(0, int((x - grow) * factor)), max(0, int((y - grow) * factor))
        backdrop[y0:int((y + h + grow) * factor) + 1, x0:int((x + w + grow) * factor) + 1] = False
    greys = [cv2.resize(cv2.cvtColor(_flatten(image, (255, 255, 255))[:, :, :3], cv2.COLOR_RGB2GRAY), size,
                        interpolation=cv2.INTER_AREA).astype(np.float32) for image in images]
    if backdrop.mean() > 0.1:
        detail = float(np.median([np.abs(cv2.Laplacian(g, cv2.CV_32F))[backdrop].mean() for g in greys]))
        if detail > 2.0:  # a backdrop with detail: does it stay put?
            reference = np.median(np.stack(greys), axis=0)
            change = float(np.median([np.abs(g - reference)[backdrop].mean() for g in greys]))
            return change < FIXED_BACKDROP_CHANGE
    heights = np.array([box[3] for box in found], float)
    centres = np.array([box[0] + box[2] / 2 for box in found], float)
    return (float(np.max(np.abs(heights / np.median(heights) - 1))) <= FIXED_HEIGHT_SPREAD
            and float(np.max(np.abs(centres - np.median(centres)))) <= FIXED_CENTRE_SPREAD * width)


def frame_on_product(frames: SpinFrames, options: SpinOptions) -> tuple[list[np.ndarray], list[np.ndarray],
                                                                        dict[str, Any]]:
    """Centre and scale every frame on the product; returns frames, their product masks and a summary.

    From a video (a fixed camera) one crop around what moves during the turn is used for every frame,
    so the product never jumps; so is a photo set taken with a fixed camera (:func:`fixed_camera`), with
    one crop around all the product's boxes: its size changes with the angle only as much as it truly
    does. Hand-held photo sets are aligned frame by frame: each frame is scaled so the product has the
    set's median height and moved so the product is centred.
    """
    reference = frames.images[0]
    height, width = reference.shape[:2]
    motion = frames.details.get("motion_box")
    boxes = [None] * len(frames.images) if motion else _boxes_on_small_copies(frames.images)
    found = [b for b in boxes if b is not None]
    fill = options.background_color if options.clean_background else tuple(
        int(v) for v in background_color(_flatten(reference, options.background_color)))
    transforms: list[tuple[float, tuple[float, float]]]
    fixed = bool(found) and frames.source == "photos" and fixed_camera(frames.images, boxes)
    if motion or frames.source == "video" or not found or fixed:
        if motion:  # a fixed camera: what moves during the turn is the product
            x0, y0, x1, y1 = motion[0], motion[1], motion[0] + motion[2], motion[1] + motion[3]
        elif found:
            x0, y0 = min(b[0] for b in found), min(b[1] for b in found)
            x1, y1 = max(b[0] + b[2] for b in found), max(b[1] + b[3] for b in found)
        else:
            x0, y0, x1, y1 = 0, 0, width, height
        product_h: float = y1 - y0
        transforms = [(1.0, ((x0 + x1) / 2, (y0 + y1) / 2))] * len(frames.images)
        out_w, out_h = float(x1 - x0), float(y1 - y0)
    else:
        product_h = float(np.median([b[3] for b in found]))
        transforms = []
        for box in boxes:
            if box is None:
                transforms.append((1.0, (width / 2, height / 2)))
                continue
            scale = float(np.clip(product_h / box[3], 0.5, 2.0))
            transforms.append((scale, (box[0] + box[2] / 2, box[1] + box[3] / 2)))
        out_w = max(b[2] * s for (s, _), b in zip(transforms, boxes, strict=True) if b is not None)
        out_h = product_h
    margin = 1 + 2 * FRAMING_MARGIN
    out_w = int(min(max(out_w * margin, 16), 4 * width)) // 2 * 2
    out_h = int(min(max(out_h * margin, 16), 4 * height)) // 2 * 2
    framed, masks = [], []
    for image, (scale, centre) in zip(frames.images, transforms, strict=True):
        matrix = np.array([[scale, 0.0, out_w / 2 - scale * centre[0]], [0.0, scale, out_h / 2 - scale * centre[1]]])
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        if image.shape[2] == 4:  # keep transparency through the warp, so the mask comes from it
            warped = cv2.warpAffine(image, matrix, (out_w, out_h), flags=interpolation,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=(*fill, 0))
        else:
            warped = cv2.warpAffine(image, matrix, (out_w, out_h), flags=interpolation,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
        masks.append(product_mask(warped))
        framed.append(_flatten(warped, fill))
    summary = {"width": out_w, "height": out_h, "product_height": round(float(product_h), 1),
               "mode": "fixed" if len(set(transforms)) == 1 else "per_frame"}
    return framed, masks, summary


def equalize_exposure(frames: list[np.ndarray], masks: list[np.ndarray]) -> tuple[list[np.ndarray], list[float]]:
    """Give every frame the same brightness, measured on the backdrop (it should not change while the
    product turns; the product itself shows different sides), or on the whole frame when the backdrop is
    small."""
    levels = []
    for frame, mask in zip(frames, masks, strict=True):
        luma = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        backdrop = mask == 0
        levels.append(float(np.median(luma[backdrop])) if backdrop.mean() > 0.1 else float(np.median(luma)))
    target = float(np.median(levels))
    gains = [float(np.clip(target / max(level, 1.0), 0.8, 1.25)) for level in levels]
    adjusted = []
    for frame, gain in zip(frames, gains, strict=True):
        if abs(gain - 1.0) < 0.01:
            adjusted.append(frame)
            continue
        table = np.clip(np.arange(256) * gain + 0.5, 0, 255).astype(np.uint8)
        adjusted.append(cv2.LUT(frame, table))
    return adjusted, gains


def clean_background(frame: np.ndarray, mask: np.ndarray, color: Sequence[int]) -> np.ndarray:
    """The product on a plain ``color`` backdrop, with a softened edge."""
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 1.2)[:, :, None]
    background = np.array(color, np.float32).reshape(1, 1, 3)
    return np.clip(frame * alpha + background * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)


# -- outputs --------------------------------------------------------------------------------------------


def write_spin_files(frames: list[np.ndarray], out_dir: Path, options: SpinOptions, sources: list[dict[str, Any]],
                     meta: dict[str, Any], progress: Progress | None = None) -> dict[str, Any]:
    """Frames at several widths (WebP and JPEG), a sprite sheet, and the manifest (returned and written)."""
    report = progress or (lambda fraction: None)
    count = len(frames)
    source_width = frames[0].shape[1]
    widths = sorted({w for w in options.widths if w < source_width} | {min(max(options.widths), source_width)})
    jobs = []
    sizes = []
    for width in widths:
        height = max(1, round(frames[0].shape[0] * width / source_width))
        paths = {"webp": f"frames/{width}/{{index:03d}}.webp", "jpeg": f"frames/{width}/{{index:03d}}.jpg"}
        sizes.append({"width": width, "height": height, "paths": paths})
        for index in range(count):
            jobs.append((index, width, paths))

    def encode(job: tuple[int, int, dict[str, str]]) -> None:
        index, width, paths = job
        resized = resize_to_width(frames[index], width)
        save_image(resized, out_dir / paths["webp"].format(index=index), quality=options.quality, format="WEBP")
        save_image(resized, out_dir / paths["jpeg"].format(index=index), quality=options.quality)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for done, _ in enumerate(pool.map(encode, jobs), start=1):
            if done % 8 == 0:
                report(done / max(1, len(jobs)))
    sprite = _write_sprite(frames, out_dir, options)
    manifest = {
        "version": MANIFEST_VERSION,
        "type": "spin",
        "frame_count": count,
        "degrees_per_frame": round(360.0 / count, 4),
        "order": [{"index": i, "angle": round(i * 360.0 / count, 3), **sources[i]} for i in range(count)],
        "sizes": sizes,
        "sprite": sprite,
        **meta,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    report(1.0)
    return manifest


def _write_sprite(frames: list[np.ndarray], out_dir: Path, options: SpinOptions) -> dict[str, Any]:
    count = len(frames)
    frame_w = min(options.sprite_frame_width, frames[0].shape[1])
    frame_h = max(1, round(frames[0].shape[0] * frame_w / frames[0].shape[1]))
    columns = min(count, 12)
    rows = math.ceil(count / columns)
    sheet = np.full((rows * frame_h, columns * frame_w, 3), 255, np.uint8)
    for index, frame in enumerate(frames):
        small = cv2.resize(frame, (frame_w, frame_h), interpolation=cv2.INTER_AREA)
        row, column = divmod(index, columns)
        sheet[row * frame_h:(row + 1) * frame_h, column * frame_w:(column + 1) * frame_w] = small
    save_image(sheet, out_dir / "sprite.jpg", quality=options.quality)
    save_image(sheet, out_dir / "sprite.webp", quality=options.quality, format="WEBP")
    return {"path": "sprite.jpg", "webp_path": "sprite.webp", "columns": columns, "rows": rows,
            "frame_width": frame_w, "frame_height": frame_h, "width": columns * frame_w, "height": rows * frame_h}


def build_spin(frames: SpinFrames, out_dir: Path, options: SpinOptions, progress: Progress | None = None
               ) -> dict[str, Any]:
    """Frame, equalise, optionally clean, and publish ``frames``; returns the manifest."""
    report = progress or (lambda fraction: None)
    if len(frames.images) < 2:
        raise StitchingError("a spin needs at least 2 views of the product; add photos taken all around it",
                             code="too_few_photos")
    framed, masks, framing = frame_on_product(frames, options)
    framed, gains = equalize_exposure(framed, masks)
    if options.clean_background:
        framed = [clean_background(frame, mask, options.background_color) for frame, mask in zip(framed, masks,
                                                                                                  strict=True)]
    report(0.2)
    details = {key: value for key, value in frames.details.items() if key != "motion_box"}
    meta = {"source": frames.source, **details, "framing": framing,
            "exposure_gains": [round(g, 3) for g in gains],
            "background": "clean" if options.clean_background else "original"}
    return write_spin_files(framed, out_dir, options, frames.sources, meta, lambda f: report(0.2 + 0.8 * f))
