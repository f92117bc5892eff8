"""Moderation flags a merchant can act on, computed from what the pipeline already measured.

Flags are advisory facts ("black for 2.0 s from 3.0 s"), not verdicts: the merchant approves or rejects,
or lets a policy do it (``if_clean`` approves only videos without flags). Each flag is a dict with a
stable ``code``, a ``detail`` sentence and the numbers behind it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media_service.media.video.posters import FrameScore

#: Flag thresholds (luma in 0..255, sharpness = variance of the Laplacian on 320-px frames).
BLACK_MIN_SECONDS = 1.0
FROZEN_MIN_SECONDS = 2.0
DARK_MEAN_LUMA = 45.0
BLURRY_SHARPNESS = 25.0
SILENT_SHARE = 0.9  # silent for 90 % of the video

FLAG_CODES = ("too_short", "black", "frozen", "too_dark", "blurry", "silent", "near_duplicate")


@dataclass(frozen=True)
class Stretches:
    """Black and frozen stretches (start, end) in seconds, as ffmpeg's detectors reported them."""

    black: list[tuple[float, float]]
    frozen: list[tuple[float, float]]


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_detector_events(path: Path, duration: float) -> Stretches:
    """Read blackdetect/freezedetect metadata printed by ffmpeg's ``metadata=mode=print`` filter.

    A stretch still open at the end of the video (the detectors report no end then) ends at ``duration``.
    """
    black: list[tuple[float, float]] = []
    frozen: list[tuple[float, float]] = []
    black_start: float | None = None
    freeze_start: float | None = None
    text = path.read_text(errors="replace") if path.exists() else ""
    for line in text.splitlines():
        key, _, value = line.strip().partition("=")
        number = _float(value)
        if number is None:
            continue
        if key == "lavfi.black_start":
            black_start = number
        elif key == "lavfi.black_end" and black_start is not None:
            black.append((black_start, number))
            black_start = None
        elif key == "lavfi.freezedetect.freeze_start":
            freeze_start = number
        elif key == "lavfi.freezedetect.freeze_end" and freeze_start is not None:
            frozen.append((freeze_start, number))
            freeze_start = None
    if black_start is not None and duration > black_start:
        black.append((black_start, duration))
    if freeze_start is not None and duration > freeze_start:
        frozen.append((freeze_start, duration))
    return Stretches(black=black, frozen=frozen)


def _minus(stretches: list[tuple[float, float]], holes: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """``stretches`` with the parts covered by ``holes`` removed (a black stretch is also "frozen")."""
    result = []
    for start, end in stretches:
        pieces = [(start, end)]
        for h_start, h_end in holes:
            pieces = [p for a, b in pieces for p in ((a, min(b, h_start)), (max(a, h_end), b)) if p[1] - p[0] > 1e-3]
        result += pieces
    return result


def _seconds(stretches: list[tuple[float, float]]) -> float:
    return sum(end - start for start, end in stretches)


def _rounded(stretches: list[tuple[float, float]]) -> list[list[float]]:
    return [[round(a, 2), round(b, 2)] for a, b in stretches]


def compute_flags(*, duration: float, min_seconds: float, stretches: Stretches, scores: Sequence[FrameScore],
                  has_audio: bool, silent_audio: bool, silence_seconds: float) -> list[dict[str, Any]]:
    """The flags of one video (near-duplicates are added later, against the merchant's other videos)."""
    flags: list[dict[str, Any]] = []
    if duration < min_seconds:
        flags.append({"code": "too_short", "detail": f"the video lasts {duration:.1f} s; at least "
                      f"{min_seconds:g} s are expected", "seconds": round(duration, 2)})
    black = [s for s in stretches.black if s[1] - s[0] >= BLACK_MIN_SECONDS]
    if black:
        flags.append({"code": "black", "detail": f"black for {_seconds(black):.1f} s in {len(black)} stretch(es)",
                      "stretches": _rounded(black), "seconds": round(_seconds(black), 2)})
    frozen = [s for s in _minus(stretches.frozen, stretches.black) if s[1] - s[0] >= FROZEN_MIN_SECONDS]
    if frozen:
        flags.append({"code": "frozen", "detail": f"the picture does not move for {_seconds(frozen):.1f} s",
                      "stretches": _rounded(frozen), "seconds": round(_seconds(frozen), 2)})
    visible = [s for s in scores if not s.black] or list(scores)
    if visible:
        luma = statistics.median(s.mean_luma for s in visible)
        if luma < DARK_MEAN_LUMA:
            flags.append({"code": "too_dark", "detail": f"the picture is dark (median brightness {luma:.0f}/255)",
                          "median_luma": round(luma, 1)})
        sharpness = statistics.median(s.sharpness for s in visible)
        if sharpness < BLURRY_SHARPNESS:
            flags.append({"code": "blurry", "detail": f"the picture is blurry (median sharpness {sharpness:.0f})",
                          "median_sharpness": round(sharpness, 1)})
    if not has_audio:
        flags.append({"code": "silent", "detail": "the video has no sound track", "reason": "no_audio"})
    elif silent_audio or (duration > 0 and silence_seconds >= SILENT_SHARE * duration):
        flags.append({"code": "silent", "detail": "the sound track is silent", "reason": "silence",
                      "seconds": round(silence_seconds, 2)})
    return flags


def near_duplicate_flag(video_id: str, match: float) -> dict[str, Any]:
    return {"code": "near_duplicate", "detail": f"looks like video {video_id} uploaded earlier "
            f"({match:.0%} of sampled frames match)", "duplicate_of": video_id, "match": round(match, 2)}
