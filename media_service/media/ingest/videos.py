"""Validating an uploaded video: probe it, apply the limits, then read every packet once.

Cheap checks come first (one ffprobe with the sniffed demuxer forced), so an 8192x8192 or 10-hour file
is refused before anything else runs. The packet check then reads every packet without decoding
(``-c copy -f null``), which finds files that end early even when their index (moov) is intact, and
measures where the packets really end. It is I/O-bound: seconds for a 1 GiB file.

Motion JPEG is the one accepted codec whose every frame carries its own size (each packet is a whole JPEG
with its own SOF header), so a clip can declare 320x240 in its first frame and 65535x65535 in a later
one: ffprobe only sees the first. Its packets are therefore read once more and every frame's SOF header is
checked against the same limits, without decoding (see :func:`check_mjpeg_frames`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from media_service.errors import InvalidMedia
from media_service.media.ingest.facts import IngestLimits, MediaFacts
from media_service.media.ingest.sniff import ACCEPTED_VIDEOS, SniffedType
from media_service.media.video.ffmpeg import (
    FFmpegError,
    FFmpegTimeout,
    run_ffmpeg,
    safe_input_args,
    stream_ffmpeg,
)
from media_service.media.video.probe import MAX_PIXELS_MARKER, VideoInfo, VideoStream, probe_video

#: What ffmpeg 5.1 prints (at -v error) when it reaches the end of a file in the middle of the data.
#: mov: "stream 1, offset 0x8a1f5: partial file"; matroska: "File ended prematurely";
#: mov without its index: "moov atom not found".
TRUNCATION_MARKERS = ("partial file", "file ended prematurely", "moov atom not found",
                      "truncating packet", "ends prematurely")

#: Packets may end this much before the header's duration (fraction, and at least one second) before
#: the file counts as truncated.
END_TOLERANCE = 0.10

EXPORT_HINT = "export it again as MP4 (H.264) or WebM"


def _truncated() -> InvalidMedia:
    return InvalidMedia("the file ends early: it looks truncated; upload it again", reason="truncated")


def _from_ffmpeg_error(exc: FFmpegError, limits: IngestLimits) -> InvalidMedia:
    """Turn an ffprobe/ffmpeg failure on an upload into a 422 that says what to do."""
    if isinstance(exc, FFmpegTimeout):
        return InvalidMedia(f"the video took too long to inspect; {EXPORT_HINT} (shorter or smaller)",
                            reason="inspection_timeout")
    tail = exc.stderr_tail.lower()
    if any(marker in tail for marker in TRUNCATION_MARKERS):
        return _truncated()
    if MAX_PIXELS_MARKER in tail:  # the decoders' -max_pixels guard
        max_pixels = limits.max_video_pixels
        return InvalidMedia(
            f"the video frame is larger than {max_pixels:,} pixels; export it at 4K (3840x2160) or lower",
            reason="too_many_pixels")
    return InvalidMedia(f"the video cannot be read: it is damaged or not really {ACCEPTED_VIDEOS}; "
                        f"{EXPORT_HINT}", reason="corrupt")


@dataclass(frozen=True)
class PacketCheck:
    """Result of reading every packet: where the audio/video packets end (seconds), if known."""

    end_time: float | None
    elapsed: float


def check_packets(path: str | os.PathLike[str], demuxer: str | None, limits: IngestLimits,
                  *, expected_duration: float | None = None) -> PacketCheck:
    """Read every packet without decoding; raise InvalidMedia(reason="truncated") when the file ends early.

    A file counts as truncated when ffmpeg reports reaching its end mid-data, or when its audio/video
    packets stop well before ``expected_duration`` (the header's media duration).
    """
    args = ["-v", "error", *safe_input_args(path, demuxer), "-map", "0:v", "-map", "0:a?",
            "-ignore_unknown", "-c", "copy", "-f", "null", "-"]
    try:
        result = run_ffmpeg(args, timeout=limits.tools.probe_timeout_seconds,
                            binary=limits.tools.ffmpeg_binary)
    except FFmpegError as exc:
        raise _from_ffmpeg_error(exc, limits) from exc
    if any(marker in result.stderr_tail.lower() for marker in TRUNCATION_MARKERS):
        raise _truncated()
    end = result.out_time
    if end is not None and end <= 0 and expected_duration:
        # The index promises media but no packet could be read: empty sample tables, or samples that live
        # in another file (a reference movie's data reference; such references are never followed).
        raise InvalidMedia("the file holds no readable video or audio data: its samples are missing or stored "
                           f"in another file; {EXPORT_HINT} as one self-contained file", reason="no_media_data")
    if expected_duration and end is not None:
        missing = expected_duration - end
        if missing > max(1.0, END_TOLERANCE * expected_duration):
            raise _truncated()
    return PacketCheck(end_time=end, elapsed=result.elapsed)


def _validate_limits(info: VideoInfo, limits: IngestLimits) -> VideoStream:
    """Stream count, a video stream, frame size; returns the main video stream."""
    max_streams = limits.max_video_streams
    if info.stream_count > max_streams:
        raise InvalidMedia(
            f"the file has {info.stream_count} streams; at most {max_streams} are accepted: "
            f"{EXPORT_HINT} with one video track (and one audio track)", reason="too_many_streams")
    main = info.video
    if main is None:
        raise InvalidMedia(f"the file has no video stream (audio only?); {EXPORT_HINT} with a picture",
                           reason="no_video_stream")
    max_pixels = limits.max_video_pixels
    for stream in info.video_streams:
        if stream.coded_width <= 0 or stream.coded_height <= 0:
            raise InvalidMedia(f"a video stream has no frame size; the file is damaged: {EXPORT_HINT}",
                               reason="corrupt")
        if stream.pixels > max_pixels:
            raise InvalidMedia(
                f"the video frame is {stream.coded_width}x{stream.coded_height} pixels; at most "
                f"{max_pixels:,} pixels per frame are accepted: export it at 4K (3840x2160) or lower",
                reason="too_many_pixels")
    _check_frame_shape(main.coded_width, main.coded_height, limits)
    return main


def _check_frame_shape(width: int, height: int, limits: IngestLimits) -> None:
    """Refuse frames the processing cannot turn into renditions: too long a side, too thin, too elongated."""
    long_side, short_side = max(width, height), min(width, height)
    max_side, min_side = limits.max_video_side, limits.min_video_side
    max_aspect = limits.max_video_aspect
    size = f"{width}x{height}"
    if long_side > max_side:
        raise InvalidMedia(f"the video frame is {size} pixels; its sides may be at most {max_side} pixels: "
                           "export it at 4K (3840x2160) or lower", reason="unsupported_frame_size")
    if short_side < min_side:
        raise InvalidMedia(f"the video frame is {size} pixels; both sides must be at least {min_side} pixels",
                           reason="unsupported_frame_size")
    if long_side / short_side > max_aspect:
        raise InvalidMedia(f"the video frame is {size} pixels, {long_side / short_side:.1f} times longer than "
                           f"wide; at most {max_aspect:g}:1 is accepted: crop it to a usual shape (16:9, 9:16, "
                           "4:3, 1:1)", reason="unsupported_aspect")


#: Codecs whose every packet is a JPEG image with its own frame size.
SELF_SIZED_CODECS = frozenset({"mjpeg"})

#: Start-of-frame markers (SOF0-3, 5-7, 9-11, 13-15, and JPEG-LS's SOF55): the frame size follows them.
_SOF_MARKERS = frozenset({*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), *range(0xCD, 0xD0), 0xF7})
#: Markers without a length: TEM, RST0-7, SOI, EOI.
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xDA)})
#: The next marker: 0xFF followed by anything but stuffing (0x00), a restart marker or another fill byte.
#: Entropy-coded data never matches (its 0xFF bytes are stuffed), so a search skips it at C speed.
_MARKER_RE = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")


@dataclass
class JpegFrameSizes:
    """Reads concatenated JPEG images chunk by chunk and records each frame size their SOF headers declare.

    Segments are skipped by their length (so a thumbnail inside an APP segment is not taken for a frame),
    entropy-coded data by searching for the next marker. ``accept(width, height)`` is asked about each
    new size, once; when it returns False the reader stops, ``refused`` holding that size.
    """

    accept: Callable[[int, int, int], bool]  # (width, height, frame number) -> is that size acceptable?
    sizes: dict[tuple[int, int], int] = field(default_factory=dict)  # size -> first frame (1-based) with it
    frames: int = 0
    refused: tuple[int, int, int] | None = None  # width, height, frame number
    _pending: bytes = b""
    _skip: int = 0

    def feed(self, chunk: bytes) -> bool:
        """Take the next bytes; True when a size was refused (stop reading)."""
        if self.refused is not None:
            return True
        data = self._pending + chunk
        pos = min(self._skip, len(data))
        self._skip -= pos
        end = len(data)
        while pos < end:
            match = _MARKER_RE.search(data, pos)
            if match is None:
                pos = end - 1 if data.endswith(b"\xff") else end  # a marker may start at the chunk's end
                break
            start = match.start()
            marker = data[start + 1]
            if marker in _STANDALONE_MARKERS:
                if marker == 0xD8:
                    self.frames += 1
                pos = start + 2
                continue
            header_end = start + (9 if marker in _SOF_MARKERS else 4)
            if header_end > end:
                pos = start  # wait for the rest of the segment header
                break
            length = int.from_bytes(data[start + 2:start + 4], "big")
            if length < 2:  # not a real segment: resynchronise on the next marker
                pos = start + 2
                continue
            if marker in _SOF_MARKERS and self._record(int.from_bytes(data[start + 7:start + 9], "big"),
                                                       int.from_bytes(data[start + 5:start + 7], "big")):
                return True
            pos = start + 2 + length
            if pos > end:
                self._skip = pos - end
                pos = end
        self._pending = data[pos:]
        return False

    def _record(self, width: int, height: int) -> bool:
        size = (width, height)
        if size in self.sizes:
            return False
        frame = max(self.frames, 1)
        self.sizes[size] = frame
        if not self.accept(width, height, frame):
            self.refused = (width, height, frame)
            return True
        return False


def _check_one_frame(width: int, height: int, frame: int, limits: IngestLimits) -> None:
    """The limits of :func:`_validate_limits` for the size one Motion JPEG frame declares; raises InvalidMedia."""
    size = f"{width}x{height}"
    again = f"{EXPORT_HINT} with one frame size for the whole clip"
    if width * height > limits.max_video_pixels:
        raise InvalidMedia(
            f"frame {frame} of the Motion JPEG video declares {size} pixels, unlike the frames before it; at "
            f"most {limits.max_video_pixels:,} pixels per frame are accepted: {again}, 4K (3840x2160) or lower",
            reason="unsupported_frame_size")
    try:
        _check_frame_shape(width, height, limits)
    except InvalidMedia as exc:
        raise InvalidMedia(f"frame {frame} of the Motion JPEG video declares another size than the frames "
                           f"before it: {exc.detail}; {again}",
                           reason=exc.extra.get("reason", "unsupported_frame_size")) from None


def check_mjpeg_frames(path: str | os.PathLike[str], demuxer: str | None, stream: VideoStream,
                       limits: IngestLimits) -> JpegFrameSizes:
    """Read a Motion JPEG stream's packets (no decoding) and refuse any frame whose SOF header declares a size
    the pipeline cannot process (the limits of :func:`_validate_limits`); raises InvalidMedia.

    The probed size (or half its height: an interlaced clip stores each field as a JPEG of half the
    height, which the decoder doubles) is the stream's own; any other size is checked as a frame of its
    own, doubled too when the clip is interlaced. Bounded by the probe timeout like the other checks;
    stops reading at the first refused size.
    """
    coded_width, coded_height = stream.coded_width, stream.coded_height
    refusal: list[InvalidMedia] = []
    reader: JpegFrameSizes

    def accept(width: int, height: int, frame: int) -> bool:
        if width == coded_width and height in (coded_height, coded_height // 2):
            return True
        first_width, first_height = next(iter(reader.sizes))
        interlaced = (first_width, first_height * 2) == (coded_width, coded_height)
        try:
            _check_one_frame(width, height, frame, limits)
            if interlaced:
                _check_one_frame(width, height * 2, frame, limits)
        except InvalidMedia as exc:
            refusal.append(exc)
            return False
        return True

    reader = JpegFrameSizes(accept=accept)
    args = ["-v", "error", *safe_input_args(path, demuxer), "-map", f"0:{stream.index}", "-c", "copy",
            "-f", "mjpeg", "pipe:1"]
    try:
        stream_ffmpeg(args, reader.feed, timeout=limits.tools.probe_timeout_seconds,
                      binary=limits.tools.ffmpeg_binary)
    except FFmpegError as exc:
        raise _from_ffmpeg_error(exc, limits) from exc
    if refusal:
        raise refusal[0]
    return reader


def _check_duration(duration: float | None, limits: IngestLimits) -> float:
    max_seconds = limits.max_video_seconds
    if duration is None or not math.isfinite(duration) or duration <= 0:
        raise InvalidMedia(f"the video's duration cannot be determined; {EXPORT_HINT}",
                           reason="unknown_duration")
    if duration > max_seconds:
        raise InvalidMedia(
            f"the video lasts {duration:,.0f} s; at most {max_seconds:,.0f} s are accepted: trim it and "
            "upload it again", reason="too_long")
    return duration


def inspect_video(path: str | os.PathLike[str], sniffed: SniffedType,
                  limits: IngestLimits) -> MediaFacts:
    """Validate a video upload (limits, then a full packet read) and describe it."""
    try:
        info = probe_video(path, demuxer=sniffed.demuxer, binary=limits.tools.ffprobe_binary,
                           timeout=limits.tools.probe_timeout_seconds, max_pixels=limits.max_video_pixels)
    except FFmpegError as exc:
        raise _from_ffmpeg_error(exc, limits) from exc
    main = _validate_limits(info, limits)
    header_duration = info.duration if info.duration and info.duration > 0 else info.media_duration
    if header_duration is not None:
        _check_duration(header_duration, limits)  # refuse a 10-hour file before reading it
    packets = check_packets(path, sniffed.demuxer, limits, expected_duration=info.media_duration)
    for stream in info.video_streams:
        if stream.codec in SELF_SIZED_CODECS:
            check_mjpeg_frames(path, sniffed.demuxer, stream, limits)
    if packets.end_time is not None and packets.end_time > limits.max_video_seconds:
        _check_duration(packets.end_time, limits)  # timestamps run past the header's duration
    duration = _check_duration(header_duration or packets.end_time, limits)
    details: dict[str, Any] = {
        "container": info.format_name,
        "demuxer": sniffed.demuxer,
        "codec": main.codec,
        "profile": main.profile,
        "pix_fmt": main.pix_fmt,
        "coded_width": main.coded_width,
        "coded_height": main.coded_height,
        "rotation": main.rotation,
        "mirrored": main.mirrored,
        "fps": main.avg_frame_rate or main.r_frame_rate,
        "r_frame_rate": main.r_frame_rate,
        "avg_frame_rate": main.avg_frame_rate,
        "is_vfr": main.is_vfr,
        "is_hdr": main.is_hdr,
        "dolby_vision": main.dolby_vision,
        "color_transfer": main.color_transfer,
        "color_primaries": main.color_primaries,
        "has_alpha": main.has_alpha,
        "main_video_index": main.index,
        "video_stream_count": len(info.video_streams),
        "stream_count": info.stream_count,
        "has_audio": info.has_audio,
        "audio": [{"index": a.index, "codec": a.codec, "channels": a.channels, "sample_rate": a.sample_rate}
                  for a in info.audio_streams],
        "has_location_metadata": info.has_location_metadata,
        "bit_rate": info.bit_rate,
        "start_time": info.start_time,
        "packets_end_time": packets.end_time,
    }
    return MediaFacts(kind="video", format=sniffed.format, mime=sniffed.mime, width=main.display_width,
                      height=main.display_height, duration=duration, frames=main.frame_count,
                      details=details)
