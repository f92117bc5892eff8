"""Benchmark inputs made with ffmpeg from the shared clips (cached in bench/results/sources/).

* ``1080p_h264.mp4``: Big Buck Bunny (720p) looped and upscaled to 1920x1080 H.264 + AAC, 10 s;
* ``4k_hevc_phone.mp4``: the same, 3840x2160 HEVC 10-bit at 30 fps with a -90 degree rotation flag and
  an AAC track, 10 s: what a recent phone records in portrait;
* ``long_<seconds>s.mp4``: cheap long inputs (test pattern with a tone, 480x270) for memory checks.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MEDIA_SERVICE_TEST_MEDIA", REPO.parent / "shared" / "media"))
SOURCES = REPO / "bench" / "results" / "sources"


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *args], check=True)


def source_1080p() -> Path:
    path = SOURCES / "1080p_h264.mp4"
    if not path.exists():
        SOURCES.mkdir(parents=True, exist_ok=True)
        _ffmpeg("-stream_loop", "2", "-i", str(SHARED / "video" / "bigbuckbunny.mp4"), "-t", "10",
                "-vf", "scale=1920:1080:flags=lanczos", "-c:v", "libx264", "-preset", "medium", "-crf", "18",
                "-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart", str(path))
    return path


def source_4k_hevc() -> Path:
    path = SOURCES / "4k_hevc_phone.mp4"
    if not path.exists():
        plain = SOURCES / "4k_plain.mp4"
        SOURCES.mkdir(parents=True, exist_ok=True)
        _ffmpeg("-stream_loop", "2", "-i", str(SHARED / "video" / "bigbuckbunny.mp4"), "-t", "10",
                "-vf", "fps=30,scale=3840:2160:flags=bicubic", "-c:v", "libx265", "-preset", "ultrafast",
                "-x265-params", "log-level=error", "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1", "-b:v", "40M",
                "-c:a", "aac", "-b:a", "192k", str(plain))
        _ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=270", str(path))
        plain.unlink()
    return path


def source_long(seconds: int) -> Path:
    path = SOURCES / f"long_{seconds}s.mp4"
    if not path.exists():
        SOURCES.mkdir(parents=True, exist_ok=True)
        _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=480x270:rate=25:duration={seconds}",
                "-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}", "-c:v", "libx264",
                "-preset", "ultrafast", "-crf", "30", "-g", "250", "-c:a", "aac", "-b:a", "64k", str(path))
    return path


if __name__ == "__main__":
    for made in (source_1080p(), source_4k_hevc(), source_long(60), source_long(600)):
        print(made, made.stat().st_size)
