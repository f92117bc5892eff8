"""From local files to a folder of published outputs: what the job kinds and the CLI both run.

Options arrive as JSON (API) or flags (CLI) and are validated here once, into :class:`StitchOptions`
and :class:`SpinOptions`; a bad option is a ``ValueError`` whose message names the option and what it
accepts.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media_service.media.ingest.facts import IngestLimits
from media_service.media.panorama.stitcher import DETECTOR_OPTIONS, PROJECTION_OPTIONS, Photo, StitchOptions, stitch
from media_service.media.panorama.tiles import write_panorama_files
from media_service.media.spin import (
    FRAME_COUNTS,
    SpinLimits,
    SpinOptions,
    SpinPhoto,
    build_spin,
    load_photo_frames,
    load_video_frames,
)

Progress = Callable[[float], None]

PANORAMA_OPTION_NAMES = ("projection", "detector", "crop", "max_output_megapixels")
SPIN_OPTION_NAMES = ("clean_background", "background_color", "widths")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class PanoramaLimits:
    """The service's caps and output sizes of panoramas (its PANORAMA_* settings) and of the photos."""

    max_output_megapixels: float
    work_megapixels: float
    seam_megapixels: float
    preview_width: int
    tile_size: int
    jpeg_quality: int
    max_photos: int
    ingest: IngestLimits


def _unknown(options: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; valid options: {', '.join(allowed)}")


def panorama_options(options: Mapping[str, Any] | None, limits: PanoramaLimits) -> StitchOptions:
    """Validated stitching options from a JSON object (``limits`` give the defaults and caps)."""
    options = dict(options or {})
    _unknown(options, PANORAMA_OPTION_NAMES)
    projection = options.get("projection", "auto")
    if projection not in PROJECTION_OPTIONS:
        raise ValueError(f"options.projection must be one of {', '.join(PROJECTION_OPTIONS)}")
    detector = options.get("detector", "auto")
    if detector not in DETECTOR_OPTIONS:
        raise ValueError(f"options.detector must be one of {', '.join(DETECTOR_OPTIONS)}")
    crop = options.get("crop", True)
    if not isinstance(crop, bool):
        raise ValueError("options.crop must be true or false")
    cap = limits.max_output_megapixels
    megapixels = options.get("max_output_megapixels", cap)
    if isinstance(megapixels, bool) or not isinstance(megapixels, int | float) or not 0.1 <= megapixels <= cap:
        raise ValueError(f"options.max_output_megapixels must be a number from 0.1 to {cap:g}")
    return StitchOptions(projection=projection, detector=detector, crop=crop, max_output_megapixels=float(megapixels),
                         work_megapixels=limits.work_megapixels,
                         seam_megapixels=limits.seam_megapixels)


def spin_options(frames: Any, options: Mapping[str, Any] | None, limits: SpinLimits) -> SpinOptions:
    """Validated spin options; ``frames`` is 24, 36 or 72 (or None: every photo of a set)."""
    options = dict(options or {})
    _unknown(options, SPIN_OPTION_NAMES)
    if frames is not None and (isinstance(frames, bool) or frames not in FRAME_COUNTS):
        raise ValueError(f"frames must be one of {', '.join(map(str, FRAME_COUNTS))}")
    clean = options.get("clean_background", False)
    if not isinstance(clean, bool):
        raise ValueError("options.clean_background must be true or false")
    color_text = options.get("background_color", "#ffffff")
    if not isinstance(color_text, str) or not _COLOR.match(color_text):
        raise ValueError("options.background_color must be a colour like '#ffffff'")
    color = tuple(int(color_text[i:i + 2], 16) for i in (1, 3, 5))
    widths = options.get("widths", list(limits.widths))
    if (not isinstance(widths, list | tuple) or not 1 <= len(widths) <= 6
            or not all(isinstance(w, int) and not isinstance(w, bool) and 64 <= w <= 4096 for w in widths)):
        raise ValueError("options.widths must be a list of 1-6 pixel widths from 64 to 4096")
    return SpinOptions(frames=frames, clean_background=clean, background_color=color,  # type: ignore[arg-type]
                       widths=tuple(sorted(set(widths))),
                       sprite_frame_width=limits.sprite_frame_width,
                       quality=limits.quality)


def build_panorama(photos: Sequence[Photo], out_dir: Path, limits: PanoramaLimits, options: StitchOptions,
                   progress: Progress | None = None) -> dict[str, Any]:
    """Stitch ``photos`` and write image, preview, tiles and manifest into ``out_dir``; returns the summary."""
    report = progress or (lambda fraction: None)
    panorama = stitch(photos, limits.ingest, options, lambda fraction: report(0.85 * fraction))
    manifest = write_panorama_files(panorama, out_dir, preview_width=limits.preview_width,
                                    tile_size=limits.tile_size,
                                    quality=limits.jpeg_quality)
    report(1.0)
    return {"width": panorama.size[0], "height": panorama.size[1], "projection": panorama.projection,
            "field_of_view": panorama.field_of_view(), "diagnostics": panorama.diagnostics.to_dict(),
            "manifest": manifest, "timings": {k: round(v, 3) for k, v in panorama.timings.items()}}


def build_spin_from_photos(photos: Sequence[SpinPhoto], out_dir: Path, limits: SpinLimits,
                           options: SpinOptions, progress: Progress | None = None) -> dict[str, Any]:
    """A spin from a turntable photo set, written into ``out_dir``; returns the manifest."""
    report = progress or (lambda fraction: None)
    frames = load_photo_frames(photos, limits.ingest, options.frames)
    report(0.3)
    return build_spin(frames, out_dir, options, lambda fraction: report(0.3 + 0.7 * fraction))


def build_spin_from_video(video: Path, out_dir: Path, limits: SpinLimits, options: SpinOptions,
                          progress: Progress | None = None) -> dict[str, Any]:
    """A spin from a turntable video (one revolution, ``options.frames`` views), written into ``out_dir``."""
    report = progress or (lambda fraction: None)
    with tempfile.TemporaryDirectory(prefix="spin-", dir=out_dir.parent) as work:
        frames = load_video_frames(video, limits, options.frames or 36, Path(work),
                                   lambda fraction: report(0.6 * fraction))
    return build_spin(frames, out_dir, options, lambda fraction: report(0.6 + 0.4 * fraction))
