"""Burning logo fragments into a video (one ffmpeg pass), the merchant's preview sheet, faces to avoid.

The burned-in render is one ffmpeg process: the video, plus each fragment PNG looped for its window,
faded in and out in its alpha (appear, vanish), shifted to its start time, and overlaid at its slot with a
gentle float (``y`` follows a sine) only between its start and end (``enable``). The glow is baked into
the fragment image. The output is a fast-start H.264/AAC MP4; the poster is a frame where a fragment shows.

The source is always our own processed rendition (upright, SDR, constant frame rate), read with the same
restricted input options as any other file; the fragment PNGs are files this module wrote itself.
"""

from __future__ import annotations

import math
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from media_service.media.logo.planner import (
    APPEAR_SECONDS,
    FLOAT_AMPLITUDE,
    FLOAT_PERIOD_SECONDS,
    VANISH_SECONDS,
    AvoidRegion,
    Placement,
)
from media_service.media.video.faces import load_cascade
from media_service.media.video.ffmpeg import run_ffmpeg, safe_input_args


@dataclass(frozen=True)
class RenderOptions:
    """``height``: output height (None: the source's); ``preset``/``crf``: x264 (``ultrafast`` at a low CRF:
    this render must run several times faster than real time on two cores); ``audio``: ``copy`` (our
    renditions carry AAC already), ``aac`` or ``none``; ``fps``: frame rate of the fragment streams."""

    binary: str = "ffmpeg"
    timeout: float = 3600.0
    height: int | None = None
    preset: str = "ultrafast"
    crf: int = 20
    audio: str = "copy"
    fps: float = 30.0
    threads: int = 0


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def burn_in_args(source: Path, fragment_pngs: Sequence[Path], placements: Sequence[Placement], width: int,
                 height: int, output: Path, options: RenderOptions) -> list[str]:
    """The ffmpeg arguments (without the binary) of the one-pass burned-in render."""
    out_h = _even(options.height or height)
    out_w = _even(width * out_h / height)
    args = [*safe_input_args(source, "mov")]
    for placement in placements:
        duration = placement.end - placement.start
        args += ["-loop", "1", "-framerate", f"{options.fps:g}", "-t", f"{duration:.3f}", "-f", "image2",
                 "-i", "file:" + os.path.abspath(fragment_pngs[placement.index])]
    chains = [f"[0:v]scale={out_w}:{out_h},format=yuv420p[base0]" if (out_w, out_h) != (width, height)
              else "[0:v]format=yuv420p[base0]"]
    amplitude = FLOAT_AMPLITUDE * out_h
    for k, placement in enumerate(placements, start=1):
        x, y, w, h = placement.box()
        pw, ph = _even(w * out_w), _even(h * out_h)
        duration = placement.end - placement.start
        chains.append(
            f"[{k}:v]scale={pw}:{ph},format=rgba,fade=in:st=0:d={APPEAR_SECONDS}:alpha=1,"
            f"fade=out:st={max(0.0, duration - VANISH_SECONDS):.3f}:d={VANISH_SECONDS}:alpha=1,"
            f"setpts=PTS-STARTPTS+{placement.start:.3f}/TB[f{k}]")
        chains.append(
            f"[base{k - 1}][f{k}]overlay=x={round(x * out_w)}:"
            f"y='{round(y * out_h)}+{amplitude:.2f}*sin(2*PI*(t-{placement.start:.3f})/{FLOAT_PERIOD_SECONDS})':"
            f"enable='between(t,{placement.start:.3f},{placement.end:.3f})':eof_action=pass:format=yuv420[base{k}]")
    graph = ";".join(chains)
    args += ["-filter_complex", graph, "-map", f"[base{len(placements)}]"]
    if options.audio == "copy":
        args += ["-map", "0:a:0?", "-c:a", "copy"]
    elif options.audio == "aac":
        args += ["-map", "0:a:0?", "-c:a", "aac", "-b:a", "128k"]
    else:
        args += ["-an"]
    args += ["-c:v", "libx264", "-preset", options.preset, "-crf", str(options.crf), "-pix_fmt", "yuv420p",
             "-threads", str(options.threads), "-map_metadata", "-1", "-movflags", "+faststart", "-y", str(output)]
    return args


def render_burned(source: Path, fragment_pngs: Sequence[Path], placements: Sequence[Placement], width: int,
                  height: int, duration: float, output: Path, options: RenderOptions = RenderOptions(), *,
                  on_progress: Callable[[float], None] | None = None) -> float:
    """Render the burned-in MP4; returns ffmpeg's wall-clock seconds."""
    args = burn_in_args(source, fragment_pngs, placements, width, height, output, options)
    result = run_ffmpeg(args, binary=options.binary, timeout=options.timeout, duration=duration,
                        on_progress=on_progress)
    return result.elapsed


def extract_frame(source: Path, at: float, target: Path, *, binary: str = "ffmpeg", timeout: float = 120.0,
                  height: int | None = None) -> np.ndarray:
    """One frame at ``at`` seconds as a BGR array (also written to ``target`` as PNG)."""
    scale = ["-vf", f"scale=-2:{height}"] if height else []
    args = ["-ss", f"{max(0.0, at):.3f}", *safe_input_args(source, "mov"), "-map", "0:v:0", "-frames:v", "1",
            *scale, "-f", "image2", "-update", "1", "-y", str(target)]
    run_ffmpeg(args, binary=binary, timeout=timeout)
    image = cv2.imread(str(target), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"no frame at {at:.2f} s")
    return image


def composite(frame: np.ndarray, rgba: np.ndarray, box: tuple[float, float, float, float]) -> None:
    """Alpha-blend ``rgba`` (RGB order) onto the BGR ``frame`` at the normalised ``box``, in place."""
    fh, fw = frame.shape[:2]
    x, y = round(box[0] * fw), round(box[1] * fh)
    w, h = max(1, round(box[2] * fw)), max(1, round(box[3] * fh))
    piece = cv2.resize(rgba, (w, h), interpolation=cv2.INTER_AREA)
    x0, y0, x1, y1 = max(0, x), max(0, y), min(fw, x + w), min(fh, y + h)
    if x1 <= x0 or y1 <= y0:
        return
    part = piece[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.float32)
    alpha = part[..., 3:4] / 255.0
    region = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = (region * (1 - alpha) + part[..., 2::-1] * alpha).round().astype(np.uint8)


def preview_sheet(source: Path, fragments_rgba: Sequence[np.ndarray], placements: Sequence[Placement],
                  avoid: Sequence[AvoidRegion], target: Path, work: Path, *, binary: str = "ffmpeg",
                  tile_width: int = 360, columns: int = 3) -> Path:
    """A JPEG contact sheet: for each fragment, a frame in the middle of its window with the fragment drawn,
    its slot outlined, regions to avoid in red, and its number and window written on it."""
    tiles = []
    for placement in sorted(placements, key=lambda p: p.start):
        middle = (placement.start + placement.end) / 2
        frame = extract_frame(source, middle, work / f"sheet_{placement.index}.png", binary=binary)
        composite(frame, fragments_rgba[placement.index], placement.box())
        fh, fw = frame.shape[:2]
        for region in avoid:
            if region.start <= middle <= region.end:
                x0, y0, x1, y1 = region.box
                cv2.rectangle(frame, (int(x0 * fw), int(y0 * fh)), (int(x1 * fw), int(y1 * fh)), (40, 40, 230), 2)
        sx, sy, sw, sh = placement.slot
        cv2.rectangle(frame, (int(sx * fw), int(sy * fh)), (int((sx + sw) * fw), int((sy + sh) * fh)),
                      (80, 220, 255), 1)
        scale = tile_width / fw
        tile = cv2.resize(frame, (tile_width, round(fh * scale)), interpolation=cv2.INTER_AREA)
        label = f"#{placement.index + 1}  {placement.start:.1f}-{placement.end:.1f} s"
        cv2.rectangle(tile, (0, 0), (tile_width, 24), (0, 0, 0), -1)
        cv2.putText(tile, label, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    height = max(t.shape[0] for t in tiles)
    rows = math.ceil(len(tiles) / columns)
    sheet = np.full((rows * (height + 6) + 6, columns * (tile_width + 6) + 6, 3), 32, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        y, x = 6 + r * (height + 6), 6 + c * (tile_width + 6)
        sheet[y:y + tile.shape[0], x:x + tile_width] = tile
    cv2.imwrite(str(target), sheet, [cv2.IMWRITE_JPEG_QUALITY, 88])
    return target


def detect_faces(source: Path, duration: float, cascade_path: Path, work: Path, *, binary: str = "ffmpeg",
                 timeout: float = 600.0, fps: float = 2.0, long_side: int = 400, margin: float = 0.25,
                 hold: float = 0.5) -> list[AvoidRegion]:
    """Faces on frames sampled ``fps`` times a second (OpenCV's Haar cascade), grown by ``margin`` and held
    ``hold`` seconds around their frame, as regions the fragments must avoid."""
    folder = work / "faces"
    folder.mkdir(parents=True, exist_ok=True)
    scale = f"scale='if(gte(iw,ih),{long_side},-2)':'if(gte(iw,ih),-2,{long_side})'"
    run_ffmpeg([*safe_input_args(source, "mov"), "-map", "0:v:0", "-vf", f"fps={fps:g},{scale}", "-an",
                "-c:v", "mjpeg", "-q:v", "3", "-f", "image2", str(folder / "%06d.jpg")],
               binary=binary, timeout=timeout, duration=duration)
    cascade = load_cascade(str(cascade_path))
    regions = []
    for i, path in enumerate(sorted(folder.glob("*.jpg"))):
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        path.unlink()
        if gray is None:
            continue
        h, w = gray.shape
        for x, y, fw, fh in cascade.detect(cv2.equalizeHist(gray), min_size=max(24, min(w, h) // 12)):
            mx, my = fw * margin, fh * margin
            t = i / fps
            regions.append(AvoidRegion(max(0.0, t - hold), t + hold,
                                       (max(0.0, (x - mx) / w), max(0.0, (y - my) / h),
                                        min(1.0, (x + fw + mx) / w), min(1.0, (y + fh + my) / h)), "face"))
    return regions


def bare_command(binary: str, args: Sequence[str]) -> list[str]:
    """The same render as a plain command line (for comparing against running ffmpeg directly)."""
    return [binary, "-nostdin", "-hide_banner", "-loglevel", "error", *args]


def run_bare(binary: str, args: Sequence[str], timeout: float = 3600.0) -> None:
    """Run the command of :func:`bare_command` with ``subprocess`` alone (the benchmark's baseline)."""
    subprocess.run(bare_command(binary, args), check=True, timeout=timeout, capture_output=True)
