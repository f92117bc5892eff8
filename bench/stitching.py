"""Our panorama stitcher against OpenCV's ``cv2.Stitcher`` (PANORAMA mode, default settings).

For every set in ``shared/media/panorama`` (hill 0.1 MP, pier 0.2 MP, berlin 8 MP phone photos) each
stitcher runs in a fresh subprocess, alternating, ``--repeat`` times; a run is timed from reading the
files to having the panorama in memory, and its peak memory is the subprocess's peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss`` taken inside it just before the result is written). "peak" includes
the interpreter and imports: ~40 MB for Python + numpy + OpenCV, ~22 MB more for ours (importing the
``media_service`` package pulls in Flask); "work" is the peak minus what the process held after its
imports, i.e. the memory the stitching itself needed.
Both use all cores OpenCV and our two threads see. The script prints the medians, the ratios ours /
OpenCV (goal <= 0.75 for both) and, for "equal success and comparable output": how many runs
succeeded (OpenCV's result depends on its RNG state; every run here is a fresh process),
how many photos each used, the output sizes and the normalised cross-correlation / SSIM of the two
panoramas after registering one onto the other (at 400 px). Times and memory are medians over all
runs, failed ones included.

    .venv/bin/python bench/stitching.py [--repeat 5] [--sets hill pier berlin]
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
SHARED = Path(os.environ.get("MEDIA_SERVICE_TEST_MEDIA", REPO.parent / "shared" / "media"))
RESULTS = REPO / "bench" / "results"

CHILD = r"""
import json, resource, sys, time
import cv2, numpy as np
sys.path.insert(0, sys.argv[1])
tool, out, files = sys.argv[2], sys.argv[3], sys.argv[4:]
if tool == "ours":
    from pathlib import Path
    from media_service.media.panorama.stitcher import Photo, stitch
imports_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if tool == "ours":
    started = time.perf_counter()
    panorama = stitch([Photo(Path(f), Path(f).name) for f in files], {"MAX_IMAGE_PIXELS": 100_000_000})
    elapsed = time.perf_counter() - started
    image, used = cv2.cvtColor(panorama.image, cv2.COLOR_RGB2BGR), len(panorama.diagnostics.used)
    stages = {k: round(v, 3) for k, v in panorama.timings.items()}
else:
    started = time.perf_counter()
    stitcher = cv2.Stitcher_create(cv2.Stitcher_PANORAMA)
    status, image = stitcher.stitch([cv2.imread(f) for f in files])
    elapsed = time.perf_counter() - started
    if status != cv2.Stitcher_OK:
        print(json.dumps({"ok": False, "status": int(status), "seconds": elapsed, "imports_mib": imports_mib,
                          "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        raise SystemExit(0)
    used, stages = len(stitcher.component()), {}
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before writing the result file
cv2.imwrite(out, image)
print(json.dumps({"ok": True, "peak_mib": peak_mib, "imports_mib": imports_mib, "seconds": elapsed,
                  "size": [image.shape[1], image.shape[0]], "used": used, "stages": stages}))
"""


def run_child(tool: str, files: list[Path], out: Path) -> dict:
    """One stitch in a fresh interpreter; its result carries the child's own peak RSS in MiB."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(REPO), tool, str(out), *map(str, files)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sets", nargs="+", default=["hill", "pier", "berlin"])
    args = parser.parse_args()
    import cv2

    from tests.support.panorama.similarity import compare_panoramas

    report = {"cpu_count": os.cpu_count(), "opencv": cv2.__version__, "sets": {}}
    print(f"OpenCV {cv2.__version__}, {os.cpu_count()} cores, {args.repeat} runs per stitcher, medians\n")
    header = (f"{'set':8} {'stitcher':9} {'time s':>7} {'ratio':>6} {'peak MiB':>9} {'ratio':>6} {'work MiB':>9} "
              f"{'ratio':>6} {'ok':>5} {'used':>4} {'output':>11}  similarity")
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            files = sorted(p for p in (SHARED / "panorama" / name).iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})
            runs: dict[str, list[dict]] = {"opencv": [], "ours": []}
            for attempt in range(args.repeat):
                for tool in ("opencv", "ours"):
                    out = Path(tmp) / f"{name}-{tool}-{attempt}.png"
                    runs[tool].append({**run_child(tool, files, out), "output": str(out)})
            summary = {}
            for tool, results in runs.items():
                ok = [r for r in results if r["ok"]]
                summary[tool] = {
                    "ok": bool(ok), "successes": f"{len(ok)}/{len(results)}",
                    "output": ok[0]["output"] if ok else None,
                    "seconds": statistics.median(r["seconds"] for r in results),
                    "peak_mib": statistics.median(r["peak_mib"] for r in results),
                    "work_mib": statistics.median(r["peak_mib"] - r["imports_mib"] for r in results),
                    "size": ok[0]["size"] if ok else None, "used": ok[0]["used"] if ok else None,
                    "runs_seconds": [round(r["seconds"], 3) for r in results],
                    "runs_peak_mib": [round(r["peak_mib"], 1) for r in results],
                    "stages": ok[-1]["stages"] if ok else {},
                }
            similarity = None
            if summary["ours"]["ok"] and summary["opencv"]["ok"]:
                comparison = compare_panoramas(cv2.imread(summary["opencv"]["output"]),
                                               cv2.imread(summary["ours"]["output"]))
                similarity = {"ncc": round(comparison.ncc, 3), "ssim": round(comparison.ssim, 3)}
            base = summary["opencv"]
            for tool in ("opencv", "ours"):
                s = summary[tool]
                time_ratio = s["seconds"] / base["seconds"]
                memory_ratio = s["peak_mib"] / base["peak_mib"]
                work_ratio = s["work_mib"] / base["work_mib"]
                size = "x".join(map(str, s["size"])) if s["size"] else "failed"
                extra = f"ncc {similarity['ncc']}, ssim {similarity['ssim']}" if similarity and tool == "ours" else ""
                print(f"{name:8} {tool:9} {s['seconds']:7.3f} {time_ratio:6.2f} {s['peak_mib']:9.1f} "
                      f"{memory_ratio:6.2f} {s['work_mib']:9.1f} {work_ratio:6.2f} {s['successes']:>5} "
                      f"{s['used'] or 0:>4} {size:>11}  {extra}")
            report["sets"][name] = {**summary, "similarity": similarity,
                                    "time_ratio": summary["ours"]["seconds"] / base["seconds"],
                                    "memory_ratio": summary["ours"]["peak_mib"] / base["peak_mib"]}
    print("\nstages of our last run per set (s):")
    for name, data in report["sets"].items():
        print(f"  {name}: {data['ours']['stages']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"stitching-{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.write_text(json.dumps(report, indent=2))
    print(f"\nresults: {target.relative_to(REPO)}")


if __name__ == "__main__":
    main()
