"""The facts the upload code records about an accepted file, and the limits a file is checked against."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from media_service.media.video.ffmpeg import FFmpegTools


@dataclass(frozen=True)
class MediaFacts:
    """What an accepted file is: kind, real format and MIME type, display size, duration, frames.

    ``width``/``height`` are the display size (after EXIF orientation or the video's rotation);
    ``details`` holds JSON-serialisable extras (codecs, rotation, has_audio, has_location_metadata ...).
    """

    kind: str  # "image" | "video"
    format: str  # "jpeg" | "png" | "webp" | "gif" | "mp4" | "mov" | "3gp" | "webm" | "matroska"
    mime: str  # e.g. "image/jpeg", "video/mp4"
    width: int | None
    height: int | None
    duration: float | None
    frames: int | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestLimits:
    """What an upload may be, and the tools that check it. The service builds it from its settings (the
    same names in upper case: ``MAX_IMAGE_PIXELS`` ...); the engine never reads settings itself."""

    max_image_pixels: int
    max_gif_frames: int
    max_jpeg_scans: int
    image_heavy_pixels: int
    image_heavy_validations: int
    image_decode_timeout_seconds: float
    image_decode_memory_mb: int
    max_video_pixels: int
    max_video_streams: int
    max_video_side: int
    min_video_side: int
    max_video_aspect: float
    max_video_seconds: float
    tools: FFmpegTools
