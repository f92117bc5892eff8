"""What an uploaded file really is, and whether the service accepts it.

The upload code calls :func:`inspect_media` once per finished upload; it returns :class:`MediaFacts`
or raises UnsupportedMediaType (415) / InvalidMedia (422) with a detail that says what to do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from media_service.media.ingest.facts import MediaFacts
from media_service.media.ingest.images import configure_image_limits, inspect_image, open_image_safely
from media_service.media.ingest.sniff import SniffedType, sniff_file
from media_service.media.ingest.videos import inspect_video

__all__ = ["MediaFacts", "SniffedType", "configure_image_limits", "inspect_media", "open_image_safely",
           "sniff_file"]


def inspect_media(path: str | os.PathLike[str], settings: Mapping[str, Any]) -> MediaFacts:
    """Sniff ``path`` from its content, validate it against the limits in ``settings`` and describe it.

    Images are opened with Pillow (format allow-list, pixel and frame caps, full decode); videos are
    probed with ffprobe and packet-checked with ffmpeg (demuxer forced, file protocol only).
    """
    sniffed = sniff_file(path)
    if sniffed.kind == "image":
        return inspect_image(path, sniffed, settings)
    return inspect_video(path, sniffed, settings)
