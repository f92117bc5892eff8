"""The facts the upload code records about an accepted file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from media_service.config import SETTINGS_BY_NAME


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


def setting(settings: Mapping[str, Any], name: str) -> Any:
    """A setting from ``settings``, falling back to its documented default (callers may pass a subset)."""
    if name in settings:
        return settings[name]
    return SETTINGS_BY_NAME[name].default
