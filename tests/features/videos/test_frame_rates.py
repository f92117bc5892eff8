"""Frame rates through the real pipeline, on real footage (Big Buck Bunny, flower.mp4) re-timed with
ffmpeg: a 12.5 fps and a 29.97 fps source keep every frame and their exact rate; 60 fps is still
halved to the buyer-show cap of 30 (every other frame kept)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import media
from tests.support.videos import FFPROBE, ffmpeg

Run = Callable[..., dict[str, Any]]


def retimed_clip(folder: Path, source: str, rate: str, seconds: float) -> Path:
    """``seconds`` of a shared clip at constant ``rate`` (ffmpeg's fps filter), 640 px wide, with its sound."""
    path = folder / f"{Path(source).stem}_{rate.replace('/', '_')}.mp4"
    if not path.exists():
        ffmpeg("-t", str(seconds), "-i", str(media(source)), "-vf", f"fps={rate},scale=640:-2",
               "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2",
               str(path))
    return path


def counted(path: Path) -> tuple[int, Fraction]:
    """(decoded frames, r_frame_rate) of the first video stream."""
    out = subprocess.run([FFPROBE, "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                          "stream=nb_read_frames,r_frame_rate,avg_frame_rate", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    stream = json.loads(out)["streams"][0]
    assert stream["r_frame_rate"] == stream["avg_frame_rate"], stream  # constant rate
    return int(stream["nb_read_frames"]), Fraction(stream["r_frame_rate"])


@pytest.mark.slow
@pytest.mark.parametrize(("source", "rate", "seconds"), [("video/bigbuckbunny.mp4", "25/2", 4.0),
                                                         ("video/flower.mp4", "30000/1001", 2.0)])
def test_rational_rates_keep_every_frame(clips: Path, run_pipeline: Run, source: str, rate: str,
                                         seconds: float) -> None:
    clip = retimed_clip(clips, source, rate, seconds)
    frames_in, rate_in = counted(clip)
    assert rate_in == Fraction(rate)
    result = run_pipeline(clip)
    assert Fraction(result["fps_rational"]) == rate_in
    frames_out, rate_out = counted(result["out"] / "video.mp4")
    assert (frames_out, rate_out) == (frames_in, rate_in), (frames_in, rate_in)
    master = (result["out"] / "hls" / "master.m3u8").read_text()
    assert f"FRAME-RATE={float(rate_in):.3f}" in master


@pytest.mark.slow
def test_sixty_fps_is_still_capped_at_thirty(clips: Path, run_pipeline: Run) -> None:
    clip = retimed_clip(clips, "video/bigbuckbunny.mp4", "60", 2.0)
    frames_in, rate_in = counted(clip)
    result = run_pipeline(clip)
    frames_out, rate_out = counted(result["out"] / "video.mp4")
    assert rate_in == 60 and rate_out == 30 and result["fps_rational"] == "30"
    assert abs(frames_out - frames_in / 2) <= 1, (frames_in, frames_out)
