"""Burned-in campaign render at 720p: real-time factor, and our wrapper against the same ffmpeg command run bare.

In one run, on the real 1280x720 Big Buck Bunny promo clip (5.3 s) with a real logo cut into N fragments:

* service: ``media.logo.render.render_burned`` (``run_ffmpeg``: progress parsing, limits, process group);
* bare: the identical command line run with ``subprocess.run`` and nothing else.

Runs alternate (bare, service, bare, service, ...) so load changes hit both alike; prints the median wall
times, the real-time factor (media seconds / wall seconds) and the ratio service / bare. Goals: >= 4x real
time on two cores, ratio <= 1.15. The machine may be shared: the load average is printed with the figures.

    PYTHONPATH=$PWD .venv/bin/python bench/campaign_render.py --fragments 6 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from media_service.media.logo.fragments import FragmentOptions, cut_fragments, encode_png
from media_service.media.logo.planner import PlanOptions, plan_placements
from media_service.media.logo.prepare import prepare_logo
from media_service.media.logo.render import RenderOptions, burn_in_args, render_burned, run_bare

REPO = Path(__file__).resolve().parent.parent
MEDIA = Path(os.environ.get("MEDIA_SERVICE_TEST_MEDIA", REPO.parent / "shared" / "media"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--logo", default="logos/scikit-video_logo.png")
    parser.add_argument("--video", default="video/bigbuckbunny.mp4")
    args = parser.parse_args()
    source, duration, width, height = MEDIA / args.video, 5.312, 1280, 720
    logo = prepare_logo(MEDIA / args.logo)
    pieces = cut_fragments(logo.rgba, FragmentOptions(args.fragments, seed=1))
    plan = plan_placements([p.size for p in pieces], PlanOptions(seed=1, duration=duration, width=width,
                                                                  height=height))
    options = RenderOptions(audio="aac")  # the clip's 5.1 AAC is re-encoded here, as for an upload
    times: dict[str, list[float]] = {"bare": [], "service": []}
    cpu: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pngs = []
        for piece in pieces:
            path = folder / f"{piece.index}.png"
            path.write_bytes(encode_png(piece.rgba))
            pngs.append(path)
        for _ in range(args.runs):
            out = folder / "bare.mp4"
            started = time.perf_counter()
            run_bare("ffmpeg", burn_in_args(source, pngs, plan.placements, width, height, out, options))
            times["bare"].append(time.perf_counter() - started)
            started, used = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            render_burned(source, pngs, plan.placements, width, height, duration, folder / "service.mp4", options)
            times["service"].append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime)
    bare, service = statistics.median(times["bare"]), statistics.median(times["service"])
    print(json.dumps({"fragments": args.fragments, "runs": args.runs, "clip_seconds": duration, "size": "1280x720",
                      "bare_s": round(bare, 3), "service_s": round(service, 3),
                      "realtime_factor": round(duration / service, 2), "service_over_bare": round(service / bare, 3),
                      "service_cpu_s": round(statistics.median(cpu), 3),
                      "realtime_factor_if_idle_2_cores": round(duration / (statistics.median(cpu) / 2), 2),
                      "all_runs": {k: [round(v, 3) for v in vs] for k, vs in times.items()},
                      "load_average": os.getloadavg(), "cpus": os.cpu_count(),
                      "note": "shared machine: other engineers' jobs run at the same time"}, indent=2))


if __name__ == "__main__":
    main()
