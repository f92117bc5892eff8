"""A product spin from a 20 s 1080p turntable video: goal under 10 s on this machine's 2 cores.

The video is rendered once (a textured box turning 1.3 degrees per frame at 30 fps, so one turn is
276.9 frames, every frame distinct) and encoded with ffmpeg's libx264 like a phone clip, then cached in
``bench/results/sources/``. Each run builds a 36-frame spin in a fresh subprocess (decode for the
revolution, decode of the 36 chosen frames, framing, exposure, WebP+JPEG at 3 widths, sprite sheet) and
reports wall time, peak memory of the Python process and of its ffmpeg children, and the revolution
found against the truth. The baseline, in the same run, is the floor every approach pays: ffmpeg
decoding the whole video once (``-f null``).

    .venv/bin/python bench/spin_from_video.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"
SOURCE = RESULTS / "sources" / "turntable_1080p_20s.mp4"
DEGREES_PER_FRAME = 1.3
FPS = 30
SECONDS = 20

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from media_service.media.panorama.build import build_spin_from_video
from media_service.media.spin import SpinOptions
video, out = Path(sys.argv[2]), Path(sys.argv[3])
started = time.perf_counter()
manifest = build_spin_from_video(video, out, {}, SpinOptions(frames=36))
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "python_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "ffmpeg_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "period": manifest["revolution"]["period_frames"], "frames": manifest["frame_count"],
                  "size": [manifest["framing"]["width"], manifest["framing"]["height"]]}))
"""


def ensure_video() -> Path:
    if SOURCE.exists():
        return SOURCE
    from tests.support.panorama.turntable import write_turntable_video

    SOURCE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        print(f"rendering {SECONDS * FPS} frames of 1920x1080 (once; cached in {SOURCE.relative_to(REPO)}) ...")
        write_turntable_video(SOURCE.with_suffix(".tmp.mp4"), degrees_per_frame=DEGREES_PER_FRAME,
                              frames=SECONDS * FPS, size=(1920, 1080), fps=FPS, scratch=Path(scratch),
                              image_format="jpg")
    SOURCE.with_suffix(".tmp.mp4").rename(SOURCE)
    return SOURCE


def decode_baseline(video: Path) -> float:
    from media_service.media.video.ffmpeg import run_ffmpeg, safe_input_args

    started = time.perf_counter()
    run_ffmpeg([*safe_input_args(video, "mov"), "-map", "0:v:0", "-f", "null", "-"], timeout=600)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    video = ensure_video()
    truth = 360.0 / DEGREES_PER_FRAME
    runs, baselines = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for attempt in range(args.repeat):
            baselines.append(decode_baseline(video))
            out = Path(tmp) / f"spin-{attempt}"
            out.mkdir()
            done = subprocess.run([sys.executable, "-c", CHILD, str(REPO), str(video), str(out)],
                                  capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise SystemExit(f"spin failed: {done.stderr[-2000:]}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    seconds = statistics.median(r["seconds"] for r in runs)
    baseline = statistics.median(baselines)
    print(f"{os.cpu_count()} cores; video: {SECONDS} s 1920x1080 H.264 at {FPS} fps, one turn = {truth:.2f} frames\n")
    print(f"{'run':>4} {'decode s':>9} {'spin s':>7} {'ratio':>6} {'python MiB':>11} {'ffmpeg MiB':>11} "
          f"{'turn found':>11} {'error':>6}")
    for index, (run, decode) in enumerate(zip(runs, baselines, strict=True), start=1):
        print(f"{index:>4} {decode:9.2f} {run['seconds']:7.2f} {run['seconds'] / decode:6.2f} "
              f"{run['python_peak_mib']:11.1f} {run['ffmpeg_peak_mib']:11.1f} {run['period']:11.2f} "
              f"{run['period'] - truth:+6.2f}")
    verdict = "meets" if seconds < 10 else "MISSES"
    print(f"\nmedian: spin {seconds:.2f} s ({verdict} the 10 s goal), {seconds / baseline:.2f}x one full decode "
          f"({baseline:.2f} s); 36 frames of {runs[0]['size'][0]}x{runs[0]['size'][1]}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"spin-from-video-{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.write_text(json.dumps({"runs": runs, "decode_baseline_seconds": baselines, "truth_period": truth,
                                  "median_seconds": seconds}, indent=2))
    print(f"results: {target.relative_to(REPO)}")


if __name__ == "__main__":
    main()
