"""Short clips reach the loudness target, through the real pipeline, on real sound: 2.5 s of film
dialogue (friday.mp4) and of 5.1 film music (bigbuckbunny.mp4) attenuated to about -38 LUFS, and a real
2.2 s phone clip at -58 LUFS (lifted by the 30 dB cap). loudnorm's two-pass mode, which needs a 3 s
window, made such clips quieter while reporting them normalised; the figures here are measured on the
output with ffmpeg's ebur128, independently of the service's own measurement.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from media_service.media.video.loudness import MAX_GAIN_DB, Level, LoudnessTarget, is_normalised
from tests.conftest import media
from tests.support.videos import FFMPEG, ffmpeg

Run = Callable[..., dict[str, Any]]

QUIET_LUFS = -38.0


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of a file's first audio stream, with ffmpeg's ebur128."""
    log = subprocess.run([FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-i", str(path), "-map", "0:a:0",
                          "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-"],
                         check=True, capture_output=True, text=True, timeout=120).stderr
    integrated = float(re.findall(r"I:\s+(-?[0-9.]+) LUFS", log)[-1])
    peak = float(re.findall(r"Peak:\s+(-?[0-9.]+|-inf) dBFS", log)[-1])
    return integrated, peak


def short_quiet_clip(folder: Path, source: str, start: float, seconds: float = 2.5) -> Path:
    """``seconds`` of a shared clip from ``start`` (its own channels kept), attenuated to about -38 LUFS."""
    path = folder / f"short_{Path(source).stem}.mp4"
    if path.exists():
        return path
    cut = folder / f"cut_{Path(source).stem}.mp4"
    ffmpeg("-ss", str(start), "-t", str(seconds), "-i", str(media(source)), "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "256k", str(cut))
    loudness, _ = ebur128(cut)
    ffmpeg("-i", str(cut), "-c:v", "copy", "-af", f"volume={QUIET_LUFS - loudness:.2f}dB", "-c:a", "aac",
           "-b:a", "256k", str(path))
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("source", "start"), [("video/friday.mp4", 1.0), ("video/bigbuckbunny.mp4", 0.0),
                                               ("video/iphone_rotated.mov", None)])
def test_short_clips_reach_the_target(clips: Path, run_pipeline: Run, pipeline_settings: dict[str, Any],
                                      source: str, start: float | None) -> None:
    clip = media(source) if start is None else short_quiet_clip(clips, source, start)
    before, _ = ebur128(clip)
    result = run_pipeline(clip)
    assert result["duration"] < 3.0
    after, peak = ebur128(result["out"] / "video.mp4")
    target = pipeline_settings["VIDEO_LOUDNESS_TARGET_LUFS"]
    expected = min(target, before + MAX_GAIN_DB)
    figures = {"before": before, "after": after, "expected": expected, "true_peak": peak}
    print(source, figures)
    assert abs(after - expected) <= 1.0, figures
    assert peak <= pipeline_settings["VIDEO_LOUDNESS_TRUE_PEAK_DB"], figures
    summary = result["loudness"]
    assert summary["normalized"] and summary["method"] == "gain"
    assert summary["output"]["integrated_lufs"] == pytest.approx(after, abs=0.15)  # what we report is measured
    assert summary["output"]["true_peak_db"] == pytest.approx(peak, abs=0.15)


def test_normalized_only_when_the_output_is_at_its_target() -> None:
    target = LoudnessTarget(-16.0, -1.5, 11.0)
    assert not is_normalised(Level(-41.3, -20.0), -16.0, target)  # the short clip that got quieter
    assert is_normalised(Level(-16.4, -3.4), -16.0, target)
    assert not is_normalised(Level(-16.0, 0.5), -16.0, target)  # too hot
    assert not is_normalised(None, -16.0, target) and not is_normalised(Level(None, None), -16.0, target)
