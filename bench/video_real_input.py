"""Video results on real input, through the real pipeline: HDR tone mapping, short-clip loudness, frame rates.

Each case is made with ffmpeg from the shared media and processed by ``process_video`` (buyer_show). Cases
marked ``test`` are the ones the tests use; ``held-out`` cases were not looked at while choosing the
constants (the limiter margin, the short-clip length, the rate rules) and show whether they generalise.

* tone mapping: Hasler-Süsstrunk colourfulness and the 99th luma percentile of our output, of ffmpeg's own
  zscale+tonemap=hable recipe and of the old matrix-only fallback, on the same source;
* loudness: integrated LUFS and true peak before and after (ffmpeg's ebur128), against -16 LUFS / -1.5 dBTP
  (or the +30 dB cap), and what the service reports;
* frame rates: frames and rate in and out.

    .venv/bin/python bench/video_real_input.py [--only tonemap,loudness,fps]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media_service.config import load_settings
from media_service.features.videos.job import process_video
from media_service.storage import FileSystemStorage

SHARED = Path(__file__).resolve().parents[2] / "shared" / "media" / "video"
HABLE = ("zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,"
         "zscale=t=bt709:m=bt709:r=tv,format=yuv420p")
MATRIX_ONLY = "format=yuv420p10le,colorspace=all=bt709:iall=bt2020:itrc=bt2020-10:fast=1,format=yuv420p"


def ffmpeg(*args: str) -> str:
    return subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-y", *args], check=True,
                          capture_output=True, text=True, timeout=600).stderr


class Pipeline:
    def __init__(self, folder: Path) -> None:
        self.settings = load_settings({"DATA_DIR": str(folder / "data")}, environ={})
        self.storage = FileSystemStorage(self.settings["STORAGE_ROOT"])
        self.count = 0

    def __call__(self, path: Path) -> tuple[dict[str, Any], Path]:
        self.count += 1
        key = f"assets/bench/{self.count}/original{path.suffix.lower()}"
        self.storage.put_file(key, path)
        prefix = f"jobs/bench/{self.count}"
        result = process_video(self.storage, self.settings, source_key=key, profile_name="buyer_show", options={},
                               output_prefix=prefix)
        return result, self.storage.root / prefix / "video.mp4"


# ------------------------------------------------------------------------------------------------ tone mapping


def frames(path: Path, size: tuple[int, int], graph: str | None = None) -> np.ndarray:
    chain = ([graph] if graph else []) + [f"scale={size[0]}:{size[1]}:flags=area:in_color_matrix=bt709"]
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-vf", ",".join(chain),
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, size[1], size[0], 3).astype(np.float64)


def colourfulness(rgb: np.ndarray) -> float:
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    per_frame = [np.hypot(a.std(), b.std()) + 0.3 * np.hypot(a.mean(), b.mean()) for a, b in zip(rg, yb, strict=True)]
    return float(np.mean(per_frame))


def p99(rgb: np.ndarray) -> float:
    return float(np.percentile(0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2], 99))


def hdr10_from(source: Path, out: Path, start: float, seconds: float) -> Path:
    ffmpeg("-ss", str(start), "-t", str(seconds), "-i", str(source), "-vf",
           "zscale=tin=bt709:pin=bt709:min=bt709:rin=tv:t=smpte2084:p=bt2020:m=bt2020nc:r=tv:npl=203,format=yuv420p10le",
           "-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1",
           "-x265-params", "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc",
           "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc", "-an", str(out))
    return out


def bench_tonemap(run: Pipeline, work: Path) -> list[dict[str, Any]]:
    cases = [("test", "dolbyVision-hdr.MOV (HLG)", SHARED / "dolbyVision-hdr.MOV", (180, 320)),
             ("test", "HDR10 from flower.mp4 0-2 s", hdr10_from(SHARED / "flower.mp4", work / "f.mp4", 0, 2),
              (320, 180)),
             ("held-out", "HDR10 from bigbuckbunny.mp4 1-3 s",
              hdr10_from(SHARED / "bigbuckbunny.mp4", work / "b.mp4", 1, 2), (320, 180)),
             ("held-out", "HDR10 from flower.mp4 3-5 s", hdr10_from(SHARED / "flower.mp4", work / "f2.mp4", 3, 2),
              (320, 180))]
    rows = []
    for split, name, source, size in cases:
        result, output = run(source)
        ours, hable, old = frames(output, size), frames(source, size, HABLE), frames(source, size, MATRIX_ONLY)
        rows.append({"split": split, "case": name, "method": result["tonemap"],
                     "colourfulness": {"ours": round(colourfulness(ours), 1), "hable": round(colourfulness(hable), 1),
                                       "old_fallback": round(colourfulness(old), 1)},
                     "luma_p99": {"ours": round(p99(ours), 1), "hable": round(p99(hable), 1),
                                  "old_fallback": round(p99(old), 1)}})
    return rows


# ---------------------------------------------------------------------------------------------------- loudness


def ebur128(path: Path) -> tuple[float | None, float | None]:
    log = ffmpeg("-i", str(path), "-map", "0:a:0", "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-")
    i = re.findall(r"I:\s+(-?[0-9.]+|-inf) LUFS", log)
    tp = re.findall(r"Peak:\s+(-?[0-9.]+|-inf) dBFS", log)
    return (float(i[-1]) if i else None), (float(tp[-1]) if tp else None)


def quiet_cut(source: Path, out: Path, start: float, seconds: float, lufs: float) -> Path:
    cut = out.with_name("cut_" + out.name)
    ffmpeg("-ss", str(start), "-t", str(seconds), "-i", str(source), "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "256k", str(cut))
    level, _ = ebur128(cut)
    assert level is not None
    ffmpeg("-i", str(cut), "-c:v", "copy", "-af", f"volume={lufs - level:.2f}dB", "-c:a", "aac", "-b:a", "256k",
           str(out))
    return out


def bench_loudness(run: Pipeline, work: Path) -> list[dict[str, Any]]:
    cases = [("test", "friday.mp4 1.0+2.5 s (dialogue)", "friday.mp4", 1.0, 2.5, -38.0),
             ("test", "bigbuckbunny.mp4 0+2.5 s (5.1 music)", "bigbuckbunny.mp4", 0.0, 2.5, -38.0),
             ("test", "iphone_rotated.mov as is (phone, -58 LUFS)", "iphone_rotated.mov", None, None, None),
             ("held-out", "friday.mp4 3.5+1.5 s", "friday.mp4", 3.5, 1.5, -30.0),
             ("held-out", "bigbuckbunny.mp4 2.6+2.9 s", "bigbuckbunny.mp4", 2.6, 2.9, -45.0),
             ("held-out", "nasa_13013.mp4 4+2 s (8 kHz speech)", "nasa_13013.mp4", 4.0, 2.0, -36.0),
             ("held-out", "bigbuckbunny.mp4 1+1.0 s, loud", "bigbuckbunny.mp4", 1.0, 1.0, -8.0),
             ("held-out", "sample_rotate_and_reflect.mp4 as is (1.0 s phone)", "sample_rotate_and_reflect.mp4",
              None, None, None)]
    rows = []
    for split, name, file, start, seconds, lufs in cases:
        source = SHARED / file if start is None else quiet_cut(SHARED / file, work / f"q{len(rows)}.mp4", start,
                                                              seconds, lufs)
        before, _ = ebur128(source)
        result, output = run(source)
        after, peak = ebur128(output)
        summary = result["loudness"]
        rows.append({"split": split, "case": name, "in_lufs": before, "out_lufs": after, "out_true_peak": peak,
                     "applied_target": summary["applied_target_lufs"], "method": summary.get("method"),
                     "gain_db": summary.get("gain_db"), "reported_normalized": summary["normalized"]})
    return rows


# ------------------------------------------------------------------------------------------------- frame rates


def count(path: Path) -> tuple[int, str]:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                          "stream=nb_read_frames,r_frame_rate", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    stream = json.loads(out)["streams"][0]
    return int(stream["nb_read_frames"]), stream["r_frame_rate"]


def bench_fps(run: Pipeline, work: Path) -> list[dict[str, Any]]:
    cases = [("test", "bigbuckbunny.mp4", "25/2", 4.0), ("test", "flower.mp4", "30000/1001", 2.0),
             ("test", "bigbuckbunny.mp4", "60", 2.0), ("held-out", "friday.mp4", "25/2", 3.0),
             ("held-out", "nasa_13013.mp4", "24000/1001", 3.0), ("held-out", "bigbuckbunny.mp4", "50", 2.0),
             ("held-out", "bottle-detection.mp4", "179/6", 4.0)]
    rows = []
    for split, file, rate, seconds in cases:
        clip = work / f"r{len(rows)}.mp4"
        ffmpeg("-t", str(seconds), "-i", str(SHARED / file), "-vf", f"fps={rate},scale=640:-2", "-c:v", "libx264",
               "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", str(clip))
        frames_in, rate_in = count(clip)
        _, output = run(clip)
        frames_out, rate_out = count(output)
        rows.append({"split": split, "case": f"{file} at {rate}", "frames_in": frames_in, "rate_in": rate_in,
                     "frames_out": frames_out, "rate_out": rate_out})
    return rows


BENCHES: dict[str, Callable[[Pipeline, Path], list[dict[str, Any]]]] = {
    "tonemap": bench_tonemap, "loudness": bench_loudness, "fps": bench_fps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated: " + ", ".join(BENCHES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = Pipeline(work)
        for name in args.only.split(","):
            print(f"## {name}")
            for row in BENCHES[name](run, work):
                print(json.dumps(row))


if __name__ == "__main__":
    main()
