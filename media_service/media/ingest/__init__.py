"""What an uploaded file really is, and whether the service accepts it.

The upload code calls :func:`inspect_media` once per finished upload; it returns :class:`MediaFacts`
or raises UnsupportedMediaType (415) / InvalidMedia (422) with a detail that says what to do.
"""

from __future__ import annotations

import os

from media_service.media.ingest.facts import IngestLimits, MediaFacts
from media_service.media.ingest.images import configure_image_limits, inspect_image, open_image_safely
from media_service.media.ingest.sniff import SniffedType, sniff_file
from media_service.media.ingest.videos import inspect_video

__all__ = ["IngestLimits", "MediaFacts", "SniffedType", "configure_image_limits", "inspect_media", "open_image_safely",
           "sniff_file"]


def inspect_media(path: str | os.PathLike[str], limits: IngestLimits) -> MediaFacts:
    """Sniff ``path`` from its content, validate it against the limits in ``limits`` and describe it.

    Images are opened with Pillow (format allow-list, pixel and frame caps, full decode); videos are
    probed with ffprobe and packet-checked with ffmpeg (demuxer forced, file protocol only).
    """
    sniffed = sniff_file(path)
    if sniffed.kind == "image":
        return inspect_image(path, sniffed, limits)
    return inspect_video(path, sniffed, limits)
