"""EBU R128 loudness: measure (first pass), normalise with the measured values, check the output.

The first pass decodes only the audio (ffmpeg's ``loudnorm`` in analysis mode, plus ``silencedetect``
printing its findings to a file) and is cheap next to the video encode. The normalisation is a filter
chain handed to the one-pass ladder (:func:`plan_normalisation`):

* clips of :data:`SHORT_CLIP_SECONDS` or more: loudnorm's second pass with the measured values.
  ``linear=true`` applies one constant gain when the true-peak limit allows it (the sound is not
  squashed); loudnorm falls back to its dynamic mode otherwise.
* shorter clips: loudnorm works on a 3 s window, and on shorter audio its dynamic mode misbehaves (a
  -38 LUFS clip came out at -41 against a -16 target). They get one constant gain computed from the
  measurement, after the stereo mix the outputs carry, with a limiter below the true-peak target when
  the gain would push peaks over it; the gain is checked on the real chain (a fraction of a second of
  audio) and corrected for what the mix and the limiter take.

Gain is capped at :data:`MAX_GAIN_DB` (see :func:`applied_target`); silence stays silence: a track
measured below :data:`SILENCE_LUFS` gets no gain at all. What the API reports as normalised is measured
on the encoded output (:func:`measure_output`, :func:`is_normalised`), not assumed from the filter.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from media_service.media.video.ffmpeg import FFmpegTools, run_ffmpeg, safe_input_args
from media_service.media.video.ladder import AUDIO_OUTPUT_FILTERS, escape_filter_value

#: Quieter than this (integrated, LUFS) counts as silent: normalising it would only amplify noise.
SILENCE_LUFS = -60.0
#: Most gain applied: a whisper-quiet phone clip is lifted by this much, not all the way to the target,
#: so its background hiss is not turned into noise.
MAX_GAIN_DB = 30.0
#: Audio shorter than this gets a measured gain instead of loudnorm's second pass (its window is 3 s).
SHORT_CLIP_SECONDS = 3.5
#: The short-clip limiter's ceiling sits this far below the true-peak target: it limits samples, and the
#: peaks between samples and the AAC encoder's overshoot come on top.
LIMITER_MARGIN_DB = 1.5
#: Measurements of a short clip's gain chain (each corrects the gain by what it missed).
GAIN_PASSES = 3
#: A gain chain this close to its goal (LU) needs no further correction.
GAIN_SETTLED_LU = 0.2
#: The output counts as normalised within this many LU of the applied target ...
NORMALISED_TOLERANCE_LU = 1.0
#: ... with its true peak at most this far over the true-peak target (dB).
TRUE_PEAK_TOLERANCE_DB = 0.5
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
                     duration: float, tools: FFmpegTools, max_seconds: float | None = None,
                     on_progress: Callable[[float], None] | None = None) -> LoudnessMeasurement:
    """First pass: integrated loudness, true peak, range and silent stretches of one audio stream."""
    silence_file = work / "silence.txt"
    chain = (f"silencedetect=n={SILENCE_NOISE_DB}dB:d={SILENCE_MIN_SECONDS},"
             f"ametadata=mode=print:file={escape_filter_value(str(silence_file))},"
             f"loudnorm=I={target.integrated}:TP={target.true_peak}:LRA={target.lra}:print_format=json")
    args = ["-v", "info"]
    if max_seconds is not None:
        args += ["-t", f"{max_seconds:.3f}"]
    args += [*safe_input_args(source, demuxer), "-map", f"0:{audio_index}", "-vn", "-sn", "-dn",
             "-af", chain, "-f", "null", "-"]
    result = run_ffmpeg(args, binary=tools.ffmpeg_binary, timeout=tools.ffmpeg_timeout_seconds,
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


@dataclass(frozen=True)
class Normalisation:
    """How a track is brought to its target: the audio filter chain for the ladder, and why."""

    method: str  # "loudnorm" (two-pass EBU R128) or "gain" (measured constant gain, true-peak limiter)
    chain: str
    gain_db: float | None = None  # the constant gain of the "gain" method


@dataclass(frozen=True)
class Level:
    """Integrated loudness (LUFS) and true peak (dBTP) as ffmpeg's ``ebur128`` measures them; None: -inf."""

    integrated: float | None
    true_peak: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {"integrated_lufs": self.integrated, "true_peak_db": self.true_peak}


def gain_filter(gain_db: float, ceiling_db: float | None) -> str:
    """The stereo mix, a constant gain, and (with ``ceiling_db``) a look-ahead limiter at that sample
    level; alimiter's auto-level is off (it would undo the gain) and its delay compensated."""
    chain = [ladder_output_mix(), f"volume={gain_db:.2f}dB"]
    if ceiling_db is not None:
        limit = min(1.0, max(0.0625, 10 ** (ceiling_db / 20)))
        chain.append(f"alimiter=limit={limit:.4f}:attack=5:release=100:level=false:latency=true")
    return ",".join(chain)


def ladder_output_mix() -> str:
    """The channel mix of every output (the last of the ladder's audio filters), as one filter."""
    return AUDIO_OUTPUT_FILTERS[-1]


def plan_normalisation(source: Path, demuxer: str, audio_index: int, measured: LoudnessMeasurement,
                       target: LoudnessTarget, *, audio_seconds: float, binary: str, timeout: float,
                       max_seconds: float | None = None) -> Normalisation | None:
    """The normalisation of one audio stream (see the module notes), or None for silence.

    ``audio_seconds`` is how much audio the outputs carry; shorter than :data:`SHORT_CLIP_SECONDS`
    means a measured gain: its chain is run on the source's audio (``max_seconds`` of it) up to
    :data:`GAIN_PASSES` times, the gain corrected by what the mix and the limiter took, within
    :data:`MAX_GAIN_DB`.
    """
    if measured.is_silent or None in (measured.input_tp, measured.input_lra, measured.input_thresh):
        return None
    if audio_seconds >= SHORT_CLIP_SECONDS:
        chain = loudnorm_filter(measured, target)
        return Normalisation("loudnorm", chain) if chain else None
    assert measured.input_i is not None and measured.input_tp is not None
    goal = applied_target(measured, target)
    ceiling = target.true_peak - LIMITER_MARGIN_DB
    gain = min(goal - measured.input_i, MAX_GAIN_DB)

    def chain_for(gain_db: float) -> str:
        peak = measured.input_tp + gain_db  # type: ignore[operator]
        return gain_filter(gain_db, ceiling if peak > ceiling else None)

    for _ in range(GAIN_PASSES):
        level = measure_level(source, demuxer, audio_index, chain_for(gain), binary=binary, timeout=timeout,
                              max_seconds=max_seconds)
        if level.integrated is None or abs(goal - level.integrated) <= GAIN_SETTLED_LU:
            break
        corrected = min(gain + goal - level.integrated, MAX_GAIN_DB)
        if abs(corrected - gain) < 0.01:
            break
        gain = corrected
    return Normalisation("gain", chain_for(gain), gain_db=round(gain, 2))


def is_normalised(level: Level | None, goal: float | None, target: LoudnessTarget) -> bool:
    """Whether a measured output is at its applied target (and within the true-peak limit)."""
    if level is None or goal is None or level.integrated is None:
        return False
    peak_ok = level.true_peak is None or level.true_peak <= target.true_peak + TRUE_PEAK_TOLERANCE_DB
    return abs(level.integrated - goal) <= NORMALISED_TOLERANCE_LU and peak_ok


_EBUR128_I = re.compile(r"I:\s+(-?[0-9.]+|-inf)\s+LUFS")
_EBUR128_PEAK = re.compile(r"Peak:\s+(-?[0-9.]+|-inf)\s+dBFS")


def _level(stderr: str) -> Level:
    integrated = _EBUR128_I.findall(stderr)
    peaks = _EBUR128_PEAK.findall(stderr)
    return Level(integrated=_number(integrated[-1]) if integrated else None,
                 true_peak=_number(peaks[-1]) if peaks else None)


def measure_level(source: Path, demuxer: str, audio_index: int, chain: str, *, binary: str, timeout: float,
                  max_seconds: float | None = None) -> Level:
    """Loudness and true peak of one audio stream after ``chain`` and the outputs' mix (48 kHz stereo)."""
    args = ["-v", "info"]
    if max_seconds is not None:
        args += ["-t", f"{max_seconds:.3f}"]
    graph = ",".join([chain, *AUDIO_OUTPUT_FILTERS, "ebur128=peak=true:framelog=verbose"])
    args += [*safe_input_args(source, demuxer), "-map", f"0:{audio_index}", "-vn", "-sn", "-dn",
             "-af", graph, "-f", "null", "-"]
    return _level(run_ffmpeg(args, binary=binary, timeout=timeout).stderr_tail)


def measure_output(path: Path, *, binary: str, timeout: float, demuxer: str = "mov") -> Level:
    """Loudness and true peak of an encoded output's first audio stream, as a listener gets it."""
    args = ["-v", "info", *safe_input_args(path, demuxer), "-map", "0:a:0", "-vn", "-sn", "-dn",
            "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-"]
    return _level(run_ffmpeg(args, binary=binary, timeout=timeout).stderr_tail)


def integrated_loudness(path: Path, tools: FFmpegTools, demuxer: str = "mov") -> float | None:
    """Integrated loudness of a file's first audio stream with ffmpeg's ``ebur128`` (for checks)."""
    args = ["-v", "info", *safe_input_args(path, demuxer), "-map", "0:a:0", "-vn",
            "-af", "ebur128=framelog=verbose", "-f", "null", "-"]
    result = run_ffmpeg(args, binary=tools.ffmpeg_binary, timeout=tools.ffmpeg_timeout_seconds)
    matches = _EBUR128_I.findall(result.stderr_tail)
    return _number(matches[-1]) if matches else None
