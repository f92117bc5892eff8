"""Picture measures for HDR to SDR checks, and an HDR10 clip made from real SDR footage.

Colourfulness is Hasler and Süsstrunk's (2003) measure on 8-bit RGB: the spread and mean of the
opponent channels rg = R - G and yb = (R + G) / 2 - B. A matrix-only conversion of HDR video gives a
flat, grey picture (low colourfulness); a tone-mapped one keeps the colours. The highlight level is a
high percentile of BT.709 luma, which shows whether bright parts are compressed or clipped.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from tests.conftest import media
from tests.support.videos import FFMPEG, ffmpeg, ffprobe

#: ffmpeg's usual HDR to SDR recipe (zimg + Hable), written out here on purpose: the reference the
#: service's output is compared with must not come from the service's own code.
HABLE_REFERENCE = ("zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,"
                   "zscale=t=bt709:m=bt709:r=tv,format=yuv420p")
#: The matrix-only conversion the service used to fall back to (no tone curve).
MATRIX_ONLY = "format=yuv420p10le,colorspace=all=bt709:iall=bt2020:itrc=bt2020-10:fast=1,format=yuv420p"


def decode_frames(path: Path, size: tuple[int, int], *, graph: str | None = None) -> np.ndarray:
    """Every frame of ``path`` as RGB (N, H, W, 3) uint8 at ``size``, displayed upright (ffmpeg's
    autorotation), optionally through ``graph`` first; YUV is read as BT.709."""
    chain = ([graph] if graph else []) + [f"scale={size[0]}:{size[1]}:flags=area:in_color_matrix=bt709"]
    raw = subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-vf", ",".join(chain),
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True, capture_output=True,
                         timeout=300).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, size[1], size[0], 3)


def colourfulness(frames: np.ndarray) -> float:
    """Mean Hasler-Süsstrunk colourfulness of RGB frames (0: grey; about 33 'moderately', 59 'quite' colourful)."""
    values = []
    for frame in frames.astype(np.float64):
        rg = frame[..., 0] - frame[..., 1]
        yb = 0.5 * (frame[..., 0] + frame[..., 1]) - frame[..., 2]
        values.append(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
    return float(np.mean(values))


def highlight(frames: np.ndarray, percentile: float = 99.0) -> float:
    """The ``percentile`` of BT.709 luma (0-255) over all frames."""
    rgb = frames.astype(np.float64)
    luma = 0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]
    return float(np.percentile(luma, percentile))


def hdr10_clip(folder: Path, *, seconds: float = 2.0) -> Path:
    """HDR10 made from real SDR footage (flower.mp4, CC0): the BT.709 picture converted with zimg to
    BT.2020 primaries and real PQ-encoded (SMPTE ST 2084) pixels, SDR white at 203 cd/m² (BT.2408's HDR
    reference white), 10-bit HEVC tagged bt2020/smpte2084/bt2020nc like a phone's HDR10 file."""
    path = folder / "flower_hdr10.mp4"
    if not path.exists():
        ffmpeg("-t", str(seconds), "-i", str(media("video/flower.mp4")),
               "-vf", "zscale=tin=bt709:pin=bt709:min=bt709:rin=tv:t=smpte2084:p=bt2020:m=bt2020nc:r=tv:npl=203,"
                      "format=yuv420p10le",
               "-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1",
               "-x265-params", "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc",
               "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
               "-color_range", "tv", "-c:a", "aac", str(path))
        stream = ffprobe(path)["streams"][0]
        assert (stream["color_transfer"], stream["color_primaries"]) == ("smpte2084", "bt2020"), stream
    return path
