"""Frames of an (untrusted) video as BGR arrays, streamed from ffmpeg without loading the video in memory.

ffmpeg is spawned only through :func:`media_service.media.video.ffmpeg.open_ffmpeg_stream`, with the safe input
options; frames come out upright (the probe's orientation filters are applied explicitly, so mirrored
display matrices are honoured too) at a fixed rate and size. :func:`prefetch` keeps decoding on a
thread, a bounded queue ahead of the consumer, so decoding overlaps detection.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from media_service.errors import InvalidMedia
from media_service.media.ingest.facts import IngestLimits
from media_service.media.video.ffmpeg import open_ffmpeg_stream, safe_input_args
from media_service.media.video.probe import probe_video

T = TypeVar("T")


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its position in the sampled sequence, its time in seconds and its pixels."""

    index: int
    t: float
    image: np.ndarray


@dataclass(frozen=True)
class VideoGeometry:
    """What the decoder needs to know about the main video stream (from ``probe_video``)."""

    stream_index: int
    display_width: int
    display_height: int
    orientation_filters: tuple[str, ...] = ()
    duration: float | None = None

    @classmethod
    def probe(cls, path: Path, demuxer: str, limits: IngestLimits) -> VideoGeometry:
        """Probe ``path`` (safe options) and describe its main video stream."""
        info = probe_video(path, demuxer=demuxer, binary=limits.tools.ffprobe_binary,
                           timeout=limits.tools.probe_timeout_seconds, max_pixels=limits.max_video_pixels,
                           vfr_sample_packets=0)
        main = info.video
        if main is None or not main.display_width or not main.display_height:
            raise InvalidMedia("this file has no video stream to look for products in", code="not_a_video")
        return cls(stream_index=main.index, display_width=main.display_width, display_height=main.display_height,
                   orientation_filters=tuple(main.orientation_filters()),
                   duration=info.media_duration or main.duration)

    def output_size(self, max_side: int) -> tuple[int, int]:
        """The display size scaled so its longer side is at most ``max_side`` (even numbers, never upscaled)."""
        w, h = self.display_width, self.display_height
        scale = min(1.0, max_side / max(w, h))
        return max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)


def _filters(geometry: VideoGeometry, size: tuple[int, int], fps: float | None) -> str:
    # round=up: output frame i is the last input frame at or before i / fps, what a player shows then
    chain = [f"fps={fps:g}:round=up"] if fps else []
    chain += list(geometry.orientation_filters)
    chain += [f"scale={size[0]}:{size[1]}:flags=area", "format=bgr24"]
    return ",".join(chain)


def _read_exact(stream: Any, size: int) -> bytes | None:
    """``size`` bytes from the pipe, or None at its end (a short tail is dropped, not half a frame)."""
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def stream_frames(path: Path, *, demuxer: str, geometry: VideoGeometry, fps: float, max_side: int,
                  limits: IngestLimits, start: float = 0.0, limit: int | None = None) -> Iterator[Frame]:
    """Decode ``path`` at ``fps`` frames per second, upright, longer side at most ``max_side``.

    Frame ``i`` is at ``start + i / fps`` seconds. Memory stays at one frame plus the pipe, whatever the
    video's length. ``limit`` stops after that many frames (ffmpeg is killed, not waited for).
    """
    width, height = geometry.output_size(max_side)
    args = ["-noautorotate"]
    if start > 0:
        args += ["-ss", f"{start:.3f}"]
    args += [*safe_input_args(path, demuxer, max_pixels=limits.max_video_pixels),
             "-map", f"0:{geometry.stream_index}", "-an", "-sn", "-dn",
             "-vf", _filters(geometry, (width, height), fps), "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"]
    frame_bytes = width * height * 3
    with open_ffmpeg_stream(args, timeout=limits.tools.ffmpeg_timeout_seconds,
                            binary=limits.tools.ffmpeg_binary) as out:
        index = 0
        while limit is None or index < limit:
            buffer = _read_exact(out, frame_bytes)
            if buffer is None:
                break
            image = np.frombuffer(buffer, np.uint8).reshape(height, width, 3)
            yield Frame(index=index, t=start + index / fps, image=image)
            index += 1


def decode_frame_at(path: Path, t: float, *, demuxer: str, geometry: VideoGeometry, max_side: int,
                    limits: IngestLimits) -> np.ndarray | None:
    """The frame shown at ``t`` seconds (upright, scaled), or None when ``t`` is past the end."""
    width, height = geometry.output_size(max_side)
    args = ["-noautorotate", "-ss", f"{max(t, 0.0):.3f}",
            *safe_input_args(path, demuxer, max_pixels=limits.max_video_pixels),
            "-map", f"0:{geometry.stream_index}", "-an", "-sn", "-dn", "-frames:v", "1",
            "-vf", _filters(geometry, (width, height), None), "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"]
    timeout = min(60.0, limits.tools.ffmpeg_timeout_seconds)
    with open_ffmpeg_stream(args, timeout=timeout, binary=limits.tools.ffmpeg_binary) as out:
        buffer = _read_exact(out, width * height * 3)
    if buffer is None:
        return None
    return np.frombuffer(buffer, np.uint8).reshape(height, width, 3).copy()


_DONE = object()


def prefetch(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Iterate ``items`` on a background thread, at most ``depth`` ahead of the consumer.

    Decoding (ffmpeg plus the copy out of the pipe) then overlaps whatever the consumer does with each
    item. An exception in the producer is raised in the consumer; a consumer that stops early stops
    the producer too (its generator is closed on the producer's thread, so ffmpeg is killed).
    """
    buffer: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
            else:
                buffer.put(_DONE)
        except BaseException as exc:  # handed to the consumer
            buffer.put(exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, daemon=True, name="frame-prefetch")
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                buffer.get(timeout=0.05)
        thread.join()


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive groups of ``size`` items (the last may be shorter)."""
    group: list[T] = []
    for item in items:
        group.append(item)
        if len(group) >= size:
            yield group
            group = []
    if group:
        yield group
