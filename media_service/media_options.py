"""The engines' option objects, built from the settings: the one place where a setting reaches an engine.

Engines (``media_service/media``) never read settings; they take these small frozen dataclasses, whose
field names are the settings' names in lower case (``MAX_IMAGE_PIXELS`` -> ``max_image_pixels``), so each
default stays defined once, in ``config.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from media_service.media.detection.model_files import MODELS_DIR
from media_service.media.ingest.facts import IngestLimits
from media_service.media.panorama.build import PanoramaLimits
from media_service.media.spin import SpinLimits
from media_service.media.video.ffmpeg import FFmpegTools

T = TypeVar("T")


def _build(cls: type[T], settings: Mapping[str, Any], prefix: str = "", **given: Any) -> T:
    values = {f.name: given[f.name] if f.name in given else settings[prefix + f.name.upper()]
              for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**values)


def ffmpeg_tools(settings: Mapping[str, Any]) -> FFmpegTools:
    return _build(FFmpegTools, settings)


def ingest_limits(settings: Mapping[str, Any]) -> IngestLimits:
    return _build(IngestLimits, settings, tools=ffmpeg_tools(settings))


def panorama_limits(settings: Mapping[str, Any]) -> PanoramaLimits:
    return _build(PanoramaLimits, settings, "PANORAMA_", ingest=ingest_limits(settings))


def spin_limits(settings: Mapping[str, Any]) -> SpinLimits:
    return _build(SpinLimits, settings, "SPIN_", ingest=ingest_limits(settings),
                  widths=tuple(settings["SPIN_WIDTHS"]))


def models_dir(settings: Mapping[str, Any]) -> Path:
    """The weights folder the settings name (``MODELS_DIR``), else the project's ``models/``."""
    return Path(settings["MODELS_DIR"]) if settings.get("MODELS_DIR") else MODELS_DIR
