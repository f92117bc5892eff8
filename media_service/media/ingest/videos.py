"""Validating an uploaded video: probe it, apply the limits, then read every packet once.

Cheap checks come first (one ffprobe with the sniffed demuxer forced), so an 8192x8192 or 10-hour file
is refused before anything else runs. The packet check then reads every packet without decoding
(``-c copy -f null``), which finds files that end early even when their index (moov) is intact, and
measures where the packets really end. It is I/O-bound: seconds for a 1 GiB file.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from media_service.errors import InvalidMedia
from media_service.media.ingest.facts import IngestLimits, MediaFacts
from media_service.media.ingest.sniff import ACCEPTED_VIDEOS, SniffedType
from media_service.media.video.ffmpeg import FFmpegError, FFmpegTimeout, run_ffmpeg, safe_input_args
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
    _check_frame_shape(main, limits)
    return main


def _check_frame_shape(stream: VideoStream, limits: IngestLimits) -> None:
    """Refuse frames the processing cannot turn into renditions: too long a side, too thin, too elongated."""
    width, height = stream.coded_width, stream.coded_height
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
