"""HDR sources are tone-mapped, through the real pipeline: HLG (the iPhone Dolby Vision clip of the shared
media) and HDR10 (PQ, made from real SDR footage) come out as colourful, with highlights like ffmpeg's
own zscale+tonemap=hable recipe, and far from the matrix-only fallback's flat grey picture.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import media
from tests.support.hdr import HABLE_REFERENCE, MATRIX_ONLY, colourfulness, decode_frames, hdr10_clip, highlight

Run = Callable[..., dict[str, Any]]

#: Largest relative colourfulness difference from the reference, and luma levels for the highlights.
COLOUR_TOLERANCE = 0.10
HIGHLIGHT_TOLERANCE = 8.0
#: The tone-mapped output must be at least this much more colourful than the matrix-only fallback.
OVER_FALLBACK = 1.5


def compare(result: dict[str, Any], source: Path, size: tuple[int, int]) -> dict[str, float]:
    ours = decode_frames(result["out"] / "video.mp4", size)
    hable = decode_frames(source, size, graph=HABLE_REFERENCE)
    fallback = decode_frames(source, size, graph=MATRIX_ONLY)
    assert len(ours) and len(hable) and len(fallback)
    return {"ours": colourfulness(ours), "hable": colourfulness(hable), "fallback": colourfulness(fallback),
            "ours_p99": highlight(ours), "hable_p99": highlight(hable), "fallback_p99": highlight(fallback)}


def check(figures: dict[str, float]) -> None:
    print({k: round(v, 1) for k, v in figures.items()})
    assert abs(figures["ours"] - figures["hable"]) <= COLOUR_TOLERANCE * figures["hable"], figures
    assert abs(figures["ours_p99"] - figures["hable_p99"]) <= HIGHLIGHT_TOLERANCE, figures
    assert figures["ours"] >= OVER_FALLBACK * figures["fallback"], figures


@pytest.mark.slow
def test_hlg_phone_clip_is_tone_mapped_like_hable(run_pipeline: Run) -> None:
    """dolbyVision-hdr.MOV: iPhone 14 Pro, Dolby Vision 8.4 / HLG, BT.2020 10-bit HEVC, rotated."""
    source = media("video/dolbyVision-hdr.MOV")
    result = run_pipeline(source)
    assert result["source"]["hdr"] and result["source"]["color_transfer"] == "arib-std-b67"
    check(compare(result, source, (180, 320)))
    assert result["tonemap"] == "zscale"


@pytest.mark.slow
def test_hdr10_clip_is_tone_mapped_like_hable(clips: Path, run_pipeline: Run) -> None:
    source = hdr10_clip(clips)
    result = run_pipeline(source)
    assert result["source"]["hdr"] and result["source"]["color_transfer"] == "smpte2084"
    check(compare(result, source, (320, 180)))
    assert result["tonemap"] == "zscale"
