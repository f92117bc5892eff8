"""The engines' option objects at the service's default settings, with overrides by setting name.

Engine tests use them the way the service does (``media_service.media_options`` from the settings), so a
test never restates a default: ``ingest_limits(MAX_GIF_FRAMES=5)``.
"""

from __future__ import annotations

from typing import Any

from media_service import media_options
from media_service.config import SETTINGS
from media_service.media.ingest.facts import IngestLimits
from media_service.media.panorama.build import PanoramaLimits
from media_service.media.spin import SpinLimits
from media_service.media.video.ffmpeg import FFmpegTools


def settings(**overrides: Any) -> dict[str, Any]:
    """Every setting at its documented default, with ``overrides`` (no app, no data folder)."""
    return {**{s.name: s.default for s in SETTINGS}, **overrides}


def ingest_limits(**overrides: Any) -> IngestLimits:
    return media_options.ingest_limits(settings(**overrides))


def ffmpeg_tools(**overrides: Any) -> FFmpegTools:
    return media_options.ffmpeg_tools(settings(**overrides))


def panorama_limits(**overrides: Any) -> PanoramaLimits:
    return media_options.panorama_limits(settings(**overrides))


def spin_limits(**overrides: Any) -> SpinLimits:
    return media_options.spin_limits(settings(**overrides))
