"""Video test media: clips generated with ffmpeg (rotated, VFR, silent, quiet, HEVC, black stretch ...) and
helpers that inspect outputs with ffprobe.

Generated inputs are trusted test fixtures, so they are made with subprocess directly; everything the
service runs goes through ``media_service.media.video.ffmpeg``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from tests.conftest import REPO, SHARED_MEDIA

FFMPEG = os.environ.get("MEDIA_SERVICE_FFMPEG_BINARY", "ffmpeg")
FFPROBE = os.environ.get("MEDIA_SERVICE_FFPROBE_BINARY", "ffprobe")
ARTIFACTS = REPO / "test-artifacts" / "videos"


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-y", *args], check=True,
                   capture_output=True, timeout=300)


def ffprobe(path: Path | str, *args: str) -> dict[str, Any]:
    """ffprobe JSON of a file (``file`` and, for our own HLS, ``hls`` allowed)."""
    out = subprocess.run([FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", *args,
                          str(path)], check=True, capture_output=True, timeout=120).stdout
    return json.loads(out)


def decode_frame(path: Path, at: float = 0.0, *, size: tuple[int, int] | None = None) -> np.ndarray:
    """One decoded frame as an RGB array (autorotation off: we check the pixels as stored)."""
    vf = ["-vf", f"scale={size[0]}:{size[1]}"] if size else []
    probe = ffprobe(path)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    width, height = size or (video["width"], video["height"])
    raw = subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-noautorotate", "-ss", f"{at:.3f}", "-i", str(path),
                          "-frames:v", "1", *vf, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True, timeout=120).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)


# ----------------------------------------------------------------------------------------- generated clips


def pattern_clip(folder: Path, *, rotate: int = 0, seconds: float = 1.0, name: str | None = None) -> Path:
    """A 320x180 grey clip with a red block in the CODED top-left corner, tagged with ``rotate`` degrees
    (the display matrix players apply; ffmpeg's ``rotate`` tag means clockwise display rotation)."""
    plain = folder / f"pattern_plain_{seconds}.mp4"
    if not plain.exists():
        ffmpeg("-f", "lavfi", "-i", f"color=c=gray:s=320x180:r=25:d={seconds}",
               "-vf", "drawbox=x=0:y=0:w=80:h=60:color=red:t=fill", "-c:v", "libx264", "-preset", "ultrafast",
               "-pix_fmt", "yuv420p", str(plain))
    path = folder / (name or f"pattern_rot{rotate}.mp4")
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", f"rotate={rotate}", str(path))
    return path


def tone_clip(folder: Path, name: str, *, seconds: float = 6.0, volume_db: float = -10.0, audio: bool = True,
              silence: bool = False, codec: str = "libx264", size: str = "320x240", rate: int = 25) -> Path:
    """testsrc2 video with a 440 Hz tone at ``volume_db`` (or digital silence, or no audio)."""
    path = folder / name
    if path.exists():
        return path
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        source = f"anullsrc=r=48000:cl=stereo:d={seconds}" if silence else f"sine=frequency=440:duration={seconds}"
        args += ["-f", "lavfi", "-i", source]
        if not silence:
            args += ["-af", f"volume={volume_db}dB"]
        args += ["-c:a", "aac", "-shortest"]
    extra = ["-tag:v", "hvc1", "-x265-params", "log-level=error"] if codec == "libx265" else []
    ffmpeg(*args, "-c:v", codec, *extra, "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


def black_stretch_clip(folder: Path) -> Path:
    """2 s of picture, 2 s of black, 2 s of picture (with a tone throughout)."""
    path = folder / "black_stretch.mp4"
    if not path.exists():
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=6",
               "-f", "lavfi", "-i", "sine=frequency=440:duration=6",
               "-vf", "drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='between(t,2,4)'",
               "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path))
    return path


def frozen_clip(folder: Path) -> Path:
    """2 s moving, then the same frame for 3 s."""
    path = folder / "frozen.mp4"
    if not path.exists():
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=5",
               "-vf", "trim=end=2,tpad=stop_mode=clone:stop_duration=3", "-an", "-c:v", "libx264",
               "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


def vfr_clip(folder: Path) -> Path:
    """A clip whose frame intervals alternate between 20 ms and 60 ms (variable frame rate)."""
    path = folder / "vfr.mkv"
    if not path.exists():
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=4",
               "-vf", "setpts='(N*0.04+mod(N,2)*0.02)/TB'", "-fps_mode", "passthrough", "-c:v", "libx264",
               "-preset", "ultrafast", "-bf", "0", "-pix_fmt", "yuv420p", str(path))
    return path


def shaky_clip(folder: Path, seconds: float = 3.0) -> Path:
    """A still scene (a real photo) filmed with a shaking hand: a jittering crop window, at most +-24 px."""
    path = folder / "shaky.mp4"
    if not path.exists():
        photo = SHARED_MEDIA / "panorama" / "pier" / "1.JPG"
        ffmpeg("-loop", "1", "-framerate", "25", "-t", str(seconds), "-i", str(photo),
               "-vf", "scale=720:-2,crop=640:360:40+16*sin(n*1.7)+8*sin(n*0.9):40+12*cos(n*1.3)",
               "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-an", str(path))
    return path


