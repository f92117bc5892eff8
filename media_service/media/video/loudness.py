"""EBU R128 loudness: measure (first pass), then normalise with the measured values (second pass).

The first pass decodes only the audio (ffmpeg's ``loudnorm`` in analysis mode, plus ``silencedetect``
printing its findings to a file) and is cheap next to the video encode. The second pass is a filter
chain handed to the one-pass ladder. ``linear=true`` applies one constant gain when the true-peak
limit allows it (the sound is not squashed); loudnorm falls back to its dynamic mode otherwise.
Silence stays silence: a track measured below :data:`SILENCE_LUFS` gets no gain at all.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from media_service.media.video.ffmpeg import run_ffmpeg, safe_input_args

#: Quieter than this (integrated, LUFS) counts as silent: normalising it would only amplify noise.
SILENCE_LUFS = -60.0
#: Most gain applied: a whisper-quiet phone clip is lifted by this much, not all the way to the target,
#: so its background hiss is not turned into noise.
MAX_GAIN_DB = 30.0
#: silencedetect's level and shortest reported stretch.
SILENCE_NOISE_DB = -50
SILENCE_MIN_SECONDS = 0.5


@dataclass(frozen=True)
class LoudnessTarget:
    integrated: float  # LUFS
    true_peak: float  # dBTP
    lra: float  # LU


@dataclass(frozen=True)
class LoudnessMeasurement:
    """loudnorm's first-pass figures (None for -inf: digital silence) and the silent stretches."""

    input_i: float | None
    input_tp: float | None
    input_lra: float | None
    input_thresh: float | None
    target_offset: float | None
    silence_seconds: float
    silences: list[tuple[float, float]]

    @property
    def is_silent(self) -> bool:
        return self.input_i is None or self.input_i < SILENCE_LUFS

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["silences"] = [[round(a, 3), round(b, 3)] for a, b in self.silences]
        data["is_silent"] = self.is_silent
        return data


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parse_loudnorm_json(stderr: str) -> dict[str, Any]:
    """The JSON block loudnorm prints at the end of a run (``print_format=json``)."""
    start = stderr.rfind("{")
    end = stderr.rfind("}")
    if start == -1 or end < start:
        raise ValueError("no loudnorm measurement in ffmpeg's output")
    return json.loads(stderr[start:end + 1])


def parse_silences(path: Path, duration: float) -> list[tuple[float, float]]:
    """Silent stretches from silencedetect's frame metadata (an open stretch ends at ``duration``)."""
    silences: list[tuple[float, float]] = []
    start: float | None = None
    if not path.exists():
        return silences
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.endswith("silence_start"):
            start = _number(value)
        elif key.endswith("silence_end") and start is not None:
            end = _number(value)
            if end is not None:
                silences.append((max(0.0, start), end))
            start = None
    if start is not None:
        silences.append((max(0.0, start), duration))
    return silences


def measure_loudness(source: Path, demuxer: str, audio_index: int, target: LoudnessTarget, work: Path, *,
                     duration: float, settings: Mapping[str, Any], max_seconds: float | None = None,
                     on_progress: Callable[[float], None] | None = None) -> LoudnessMeasurement:
    """First pass: integrated loudness, true peak, range and silent stretches of one audio stream."""
    from media_service.media.video.ladder import escape_filter_value

    silence_file = work / "silence.txt"
    chain = (f"silencedetect=n={SILENCE_NOISE_DB}dB:d={SILENCE_MIN_SECONDS},"
             f"ametadata=mode=print:file={escape_filter_value(str(silence_file))},"
             f"loudnorm=I={target.integrated}:TP={target.true_peak}:LRA={target.lra}:print_format=json")
    args = ["-v", "info"]
    if max_seconds is not None:
        args += ["-t", f"{max_seconds:.3f}"]
    args += [*safe_input_args(source, demuxer), "-map", f"0:{audio_index}", "-vn", "-sn", "-dn",
             "-af", chain, "-f", "null", "-"]
    result = run_ffmpeg(args, binary=settings["FFMPEG_BINARY"], timeout=settings["FFMPEG_TIMEOUT_SECONDS"],
                        duration=duration, on_progress=on_progress)
    figures = parse_loudnorm_json(result.stderr_tail)
    silences = parse_silences(silence_file, duration)
    return LoudnessMeasurement(
        input_i=_number(figures.get("input_i")), input_tp=_number(figures.get("input_tp")),
        input_lra=_number(figures.get("input_lra")), input_thresh=_number(figures.get("input_thresh")),
        target_offset=_number(figures.get("target_offset")),
        silence_seconds=sum(end - start for start, end in silences), silences=silences)


def applied_target(measured: LoudnessMeasurement, target: LoudnessTarget) -> float:
    """The integrated loudness this track is normalised to: the target, unless that needs more than
    :data:`MAX_GAIN_DB` of gain."""
    if measured.input_i is None:
        return target.integrated
    return min(target.integrated, round(measured.input_i + MAX_GAIN_DB, 2))


def loudnorm_filter(measured: LoudnessMeasurement, target: LoudnessTarget) -> str | None:
    """Second pass: loudnorm with the measured values, or None for silence (left as it is)."""
    if measured.is_silent or None in (measured.input_tp, measured.input_lra, measured.input_thresh):
        return None
    return (f"loudnorm=I={applied_target(measured, target)}:TP={target.true_peak}:LRA={target.lra}"
            f":measured_I={measured.input_i}:measured_TP={measured.input_tp}:measured_LRA={measured.input_lra}"
            f":measured_thresh={measured.input_thresh}:offset={measured.target_offset or 0.0}"
            f":linear=true:print_format=none")


_EBUR128_I = re.compile(r"I:\s+(-?[0-9.]+|-inf)\s+LUFS")


def integrated_loudness(path: Path, settings: Mapping[str, Any], demuxer: str = "mov") -> float | None:
    """Integrated loudness of a file's first audio stream with ffmpeg's ``ebur128`` (for checks)."""
    args = ["-v", "info", *safe_input_args(path, demuxer), "-map", "0:a:0", "-vn",
            "-af", "ebur128=framelog=verbose", "-f", "null", "-"]
    result = run_ffmpeg(args, binary=settings["FFMPEG_BINARY"], timeout=settings["FFMPEG_TIMEOUT_SECONDS"])
    matches = _EBUR128_I.findall(result.stderr_tail)
    return _number(matches[-1]) if matches else None
