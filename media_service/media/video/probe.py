"""ffprobe output, normalised once into a :class:`VideoInfo`.

Everything downstream (validation, transcoding presets, thumbnails) reads these fields instead of
ffprobe's JSON: rotation is already a clockwise multiple of 90 with a separate mirror flag, frame rates
are floats, the main video stream is chosen once, and location tags are reduced to one flag.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from media_service.media.video.ffmpeg import run_ffprobe, safe_input_args

#: What a decoder prints when ``-max_pixels`` stops it (ffprobe may still exit 0, with zero sizes).
MAX_PIXELS_MARKER = "exceeds specified max pixel count"

#: Transfer characteristics that mean HDR video (PQ and HLG).
HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})

#: Packets of the main video stream read to estimate whether the frame rate is variable.
VFR_SAMPLE_PACKETS = 240

_ALPHA_PIX_FMT_RE = re.compile(r"^(yuva|gbrap|ya\d|rgba|bgra|argb|abgr)")
_LOCATION_KEY_RE = re.compile(r"location|gps|\u00a9xyz|iso6709", re.IGNORECASE)


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _rate(value: Any) -> float | None:
    """ffprobe's ``30000/1001`` style rate as a float; None for ``0/0`` and garbage."""
    if not isinstance(value, str):
        return _float(value)
    num, sep, den = value.partition("/")
    if not sep:
        return _float(num)
    n, d = _float(num), _float(den)
    if n is None or not d or n <= 0:
        return None
    return n / d


def parse_display_matrix(text: str) -> list[int] | None:
    """The 9 integers of ffprobe's ``displaymatrix`` hex-dump text (row-major), or None."""
    values: list[int] = []
    for line in text.splitlines():
        _, sep, rest = line.partition(":")
        if sep:
            values += [int(v) for v in rest.split() if re.fullmatch(r"-?\d+", v)]
    return values if len(values) == 9 else None


def orientation_from_matrix(matrix: Sequence[int]) -> tuple[int, bool]:
    """(clockwise rotation in 0/90/180/270, mirrored) that displays a frame the way ffmpeg 5.1 does.

    Follows ffmpeg's own autorotate choice (fftools: ``get_rotation`` and the transpose/hflip/vflip
    filters it inserts) and expresses it as "rotate clockwise, then flip horizontally if mirrored".
    """
    a, b, c, d = matrix[0], matrix[1], matrix[3], matrix[4]
    scale_0 = math.hypot(a, c)
    scale_1 = math.hypot(b, d)
    if scale_0 == 0 or scale_1 == 0:
        return 0, False
    rotation = math.degrees(math.atan2(b / scale_1, a / scale_0))  # = -av_display_rotation_get()
    theta = round(rotation)
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - 90) < 45:
        return 90, c > 0  # ffmpeg: transpose=cclock_flip when m[3] > 0, else transpose=clock
    if abs(theta - 180) < 45:
        hflip, vflip = a < 0, d < 0
        if hflip and vflip:
            return 180, False
        if hflip:
            return 0, True
        return 180, vflip
    if abs(theta - 270) < 45:
        return 270, c < 0  # ffmpeg: transpose=clock_flip when m[3] < 0, else transpose=cclock
    return (180, True) if d < 0 else (0, False)  # vflip == rotate 180 then hflip


def _orientation(stream: Mapping[str, Any]) -> tuple[int, bool]:
    for side in stream.get("side_data_list") or []:
        if not isinstance(side, Mapping):
            continue
        matrix = parse_display_matrix(str(side.get("displaymatrix", "")))
        if matrix is not None:
            return orientation_from_matrix(matrix)
        rotation = _float(side.get("rotation"))
        if rotation is not None:
            return round(-rotation / 90.0) % 4 * 90, False
    legacy = _float((stream.get("tags") or {}).get("rotate"))  # older muxers: clockwise degrees
    if legacy is not None:
        return round(legacy / 90.0) % 4 * 90, False
    return 0, False


@dataclass(frozen=True)
class VideoStream:
    """One video stream; sizes in pixels, rotation clockwise degrees, rates in frames per second."""

    index: int
    codec: str | None
    profile: str | None
    coded_width: int
    coded_height: int
    display_width: int
    display_height: int
    rotation: int  # clockwise degrees to apply for display: 0, 90, 180 or 270
    mirrored: bool  # after rotating, flip horizontally (display matrix with a reflection)
    pix_fmt: str | None
    r_frame_rate: float | None
    avg_frame_rate: float | None
    frame_count: int | None
    duration: float | None
    color_transfer: str | None
    color_primaries: str | None
    color_space: str | None
    is_hdr: bool
    dolby_vision: bool
    has_alpha: bool
    is_default: bool
    is_attached_picture: bool
    is_vfr: bool | None = None  # estimated from packet timestamps; None when not measured

    @property
    def pixels(self) -> int:
        return self.coded_width * self.coded_height

    def orientation_filters(self) -> list[str]:
        """ffmpeg filters that show the frame upright (what ffmpeg's autorotate would insert)."""
        filters = {90: ["transpose=clock"], 180: ["hflip", "vflip"], 270: ["transpose=cclock"]}
        chain = list(filters.get(self.rotation, []))
        return [*chain, "hflip"] if self.mirrored else chain


@dataclass(frozen=True)
class AudioStream:
    """One audio stream."""

    index: int
    codec: str | None
    channels: int | None
    sample_rate: int | None
    channel_layout: str | None
    duration: float | None


@dataclass(frozen=True)
class VideoInfo:
    """A container as ffprobe sees it; ``video`` is the stream the service treats as "the" video."""

    format_name: str
    duration: float | None
    size_bytes: int | None
    bit_rate: int | None
    start_time: float | None
    stream_count: int
    video_streams: tuple[VideoStream, ...]
    audio_streams: tuple[AudioStream, ...]
    subtitle_stream_count: int
    data_stream_count: int
    has_location_metadata: bool
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def video(self) -> VideoStream | None:
        """The main video stream: not cover art, more than one frame when possible, default first."""
        candidates = [s for s in self.video_streams if not s.is_attached_picture]
        if not candidates:
            return None
        moving = [s for s in candidates if s.frame_count is None or s.frame_count > 1] or candidates
        return sorted(moving, key=lambda s: (not s.is_default, s.index))[0]

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_streams)

    @property
    def media_duration(self) -> float | None:
        """Longest audio/video stream duration (subtitles and data may run longer), else the container's."""
        durations = [s.duration for s in (*self.video_streams, *self.audio_streams) if s.duration]
        return max(durations) if durations else self.duration

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (no tags: they can hold personal data such as locations)."""
        data = asdict(self)
        data.pop("tags", None)
        main = self.video
        data["main_video_index"] = main.index if main else None
        data["has_audio"] = self.has_audio
        return data


def _video_stream(stream: Mapping[str, Any]) -> VideoStream:
    width = _int(stream.get("width")) or 0
    height = _int(stream.get("height")) or 0
    rotation, mirrored = _orientation(stream)
    sar = _rate(stream.get("sample_aspect_ratio"))
    display_w, display_h = width, height
    if sar and abs(sar - 1.0) > 1e-3 and width:
        display_w = max(1, round(width * sar))
    if rotation in (90, 270):
        display_w, display_h = display_h, display_w
    side = [str(s.get("side_data_type", "")) for s in stream.get("side_data_list") or []
            if isinstance(s, Mapping)]
    tags = {str(k).lower(): str(v) for k, v in (stream.get("tags") or {}).items()}
    disposition = stream.get("disposition") or {}
    transfer = stream.get("color_transfer")
    pix_fmt = stream.get("pix_fmt")
    return VideoStream(
        index=_int(stream.get("index")) or 0,
        codec=stream.get("codec_name"),
        profile=stream.get("profile"),
        coded_width=width,
        coded_height=height,
        display_width=display_w,
        display_height=display_h,
        rotation=rotation,
        mirrored=mirrored,
        pix_fmt=pix_fmt,
        r_frame_rate=_rate(stream.get("r_frame_rate")),
        avg_frame_rate=_rate(stream.get("avg_frame_rate")),
        frame_count=_int(stream.get("nb_frames")),
        duration=_float(stream.get("duration")),
        color_transfer=transfer,
        color_primaries=stream.get("color_primaries"),
        color_space=stream.get("color_space"),
        is_hdr=transfer in HDR_TRANSFERS or any("dovi" in s.lower() for s in side),
        dolby_vision=any("dovi" in s.lower() for s in side),
        has_alpha=tags.get("alpha_mode") == "1" or bool(_ALPHA_PIX_FMT_RE.match(str(pix_fmt or ""))),
        is_default=bool(disposition.get("default")),
        is_attached_picture=bool(disposition.get("attached_pic")),
    )


def _audio_stream(stream: Mapping[str, Any]) -> AudioStream:
    return AudioStream(
        index=_int(stream.get("index")) or 0,
        codec=stream.get("codec_name"),
        channels=_int(stream.get("channels")),
        sample_rate=_int(stream.get("sample_rate")),
        channel_layout=stream.get("channel_layout"),
        duration=_float(stream.get("duration")),
    )


def video_info_from_ffprobe(data: Mapping[str, Any]) -> VideoInfo:
    """Build a :class:`VideoInfo` from ffprobe's ``-show_format -show_streams`` JSON."""
    fmt = data.get("format") or {}
    streams = [s for s in data.get("streams") or [] if isinstance(s, Mapping)]
    tags = {str(k): str(v) for k, v in (fmt.get("tags") or {}).items()}
    location = any(_LOCATION_KEY_RE.search(k) for k in tags) or any(
        _LOCATION_KEY_RE.search(str(k)) for s in streams for k in (s.get("tags") or {}))
    kinds = [s.get("codec_type") for s in streams]
    return VideoInfo(
        format_name=str(fmt.get("format_name") or ""),
        duration=_float(fmt.get("duration")),
        size_bytes=_int(fmt.get("size")),
        bit_rate=_int(fmt.get("bit_rate")),
        start_time=_float(fmt.get("start_time")),
        stream_count=_int(fmt.get("nb_streams")) or len(streams),
        video_streams=tuple(_video_stream(s) for s in streams if s.get("codec_type") == "video"),
        audio_streams=tuple(_audio_stream(s) for s in streams if s.get("codec_type") == "audio"),
        subtitle_stream_count=kinds.count("subtitle"),
        data_stream_count=sum(1 for k in kinds if k not in {"video", "audio", "subtitle"}),
        has_location_metadata=location,
        tags=tags,
    )


def estimate_vfr(pts: Sequence[float], tolerance: float = 0.05) -> bool | None:
    """True when the longest frame interval exceeds the shortest by more than ``tolerance``.

    The same rule as the probe table in the shared media notes; None when there are too few frames.
    """
    times = sorted(pts)
    gaps = [b - a for a, b in itertools.pairwise(times) if b - a > 1e-6]
    if len(gaps) < 2:
        return None
    return max(gaps) > min(gaps) * (1 + tolerance)


def _sample_vfr(path: str | os.PathLike[str], demuxer: str | None, index: int, timeout: float,
                binary: str, packets: int) -> bool | None:
    data = run_ffprobe(
        ["-select_streams", str(index), "-show_entries", "packet=pts_time",
         "-read_intervals", f"%+#{packets}", *safe_input_args(path, demuxer)],
        timeout=timeout, binary=binary)
    pts = [t for t in (_float(p.get("pts_time")) for p in data.get("packets") or []
                       if isinstance(p, Mapping)) if t is not None]
    if len(pts) >= packets:
        # A cut-off sample in decode order misses B-frames shown just before its last packets.
        pts = sorted(pts)[: len(pts) - 16]
    return estimate_vfr(pts)


def probe_video(path: str | os.PathLike[str], *, demuxer: str | None, binary: str, timeout: float, max_pixels: int,
                vfr_sample_packets: int = VFR_SAMPLE_PACKETS) -> VideoInfo:
    """Probe an (untrusted) video with the safe input options and return its :class:`VideoInfo`.

    ``binary`` is ffprobe, ``timeout`` the limit of each run and ``max_pixels`` the largest frame accepted.
    ``demuxer`` is the one sniffed from the magic bytes (``mov``/``matroska``); it is forced so that
    ffprobe never guesses. The main stream's VFR flag comes from the timestamps of its first
    ``vfr_sample_packets`` packets (a second, bounded ffprobe run; 0 skips it and compares rates
    instead). Raises :class:`~media_service.media.video.ffmpeg.FFmpegError` when ffprobe cannot read the file.
    """
    # Decoders refuse frames well above the cap before allocating them; the exact limit is applied
    # by the caller on the reported sizes. The slack covers decoders that check an aligned size
    # (VP9 checks 161x121 as 192x128).
    guard = max_pixels + max_pixels // 4 + 1_000_000
    data = run_ffprobe(["-show_format", "-show_streams", *safe_input_args(path, demuxer, max_pixels=guard)],
                       timeout=timeout, binary=binary, fail_on=(MAX_PIXELS_MARKER,))
    info = video_info_from_ffprobe(data)
    main = info.video
    if main is None:
        return info
    is_vfr: bool | None = None
    if vfr_sample_packets > 0:
        is_vfr = _sample_vfr(path, demuxer, main.index, timeout, binary, vfr_sample_packets)
    if is_vfr is None and main.r_frame_rate and main.avg_frame_rate:
        is_vfr = abs(main.r_frame_rate - main.avg_frame_rate) > 0.01 * main.r_frame_rate
    streams = tuple(replace(s, is_vfr=is_vfr) if s.index == main.index else s for s in info.video_streams)
    return replace(info, video_streams=streams)
