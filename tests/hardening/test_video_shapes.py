"""Frames the pipeline cannot turn into renditions are refused at upload with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_service.errors import InvalidMedia
from media_service.media.ingest import inspect_media
from tests.support import hostile
from tests.support.options import ingest_limits


@pytest.mark.parametrize(("size", "reason"), [("4096x16", "unsupported_aspect"), ("16x1024", "unsupported_aspect"),
                                              ("64x8", "unsupported_frame_size")])
def test_thin_or_elongated_frames_are_refused(tmp_path: Path, size: str, reason: str) -> None:
    path = hostile.small_mp4(tmp_path, seconds=0.4, size=size, audio=False)
    with pytest.raises(InvalidMedia) as refused:
        inspect_media(path, ingest_limits())
    assert refused.value.extra["reason"] == reason
    assert size in refused.value.detail


def test_a_wide_but_usual_frame_passes(tmp_path: Path) -> None:
    facts = inspect_media(hostile.small_mp4(tmp_path, seconds=0.4, size="256x108", audio=False), ingest_limits())
    assert (facts.width, facts.height) == (256, 108)
