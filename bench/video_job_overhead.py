"""Our whole video job against the single bare ffmpeg command that makes the same renditions.

The job runs in a real ``media-service worker`` on a fresh data folder: probing, the loudness pass,
the one-pass ladder with its analysis branch, the MP4 fallback remux, poster, storyboard, preview,
flags, publishing and the database bookkeeping. The baselines, timed in the same process, are single
ffmpeg commands producing the same three HLS renditions from the same 1080p source:

* ``bare``: the source split three ways, each scaled from full size (the obvious command);
* ``cascade``: our own ladder command without the analysis branch and loudness (the fastest command).

Goal: job wall time <= 1.15x the bare command.

    .venv/bin/python bench/video_job_overhead.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.video_jobs import job_bench
from bench.video_ladder import PROFILE, bare_one_pass, common_output, describe, encoder_args
from bench.video_sources import source_1080p
from media_service.media.video import ladder
from media_service.media.video.ffmpeg import run_ffmpeg, safe_input_args


def cascade_only(source: ladder.LadderInput, renditions: list[ladder.PlannedRendition], work: Path) -> float:
    gop = ladder.keyframe_interval(PROFILE, source.fps)
    folder = work / "cascade"
    folder.mkdir()
    graph = [f"[0:{source.video.index}]" + ",".join(ladder.normalise_filters(source, renditions[0]))
             + f",split={min(2, len(renditions))}[v0]" + ("[c0]" if len(renditions) > 1 else "")]
    for i in range(1, len(renditions)):
        r = renditions[i]
        last = i == len(renditions) - 1
        graph.append(f"[c{i - 1}]scale={r.width}:{r.height}" + (f"[v{i}]" if last else f",split=2[v{i}][c{i}]"))
    audio_labels = "".join(f"[a{i}]" for i in range(len(renditions)))
    graph.append(f"[0:{source.audio_index}]asplit={len(renditions)}{audio_labels}")
    args = ["-noautorotate", *safe_input_args(source.path, source.demuxer), "-filter_complex", ";".join(graph)]
    for i, rendition in enumerate(renditions):
        args += ["-map", f"[v{i}]", "-map", f"[a{i}]", *encoder_args(rendition, i, gop)]
    args += [*common_output(gop), "-var_stream_map", " ".join(f"v:{i},a:{i}" for i in range(len(renditions))),
             "-master_pl_name", "master.m3u8", "-hls_segment_filename", str(folder / "%v_seg_%04d.m4s"),
             str(folder / "%v.m3u8")]
    started = time.perf_counter()
    run_ffmpeg(args, timeout=3600)
    return time.perf_counter() - started


def whole_job(path: Path, data_dir: Path) -> tuple[float, float, dict[str, float]]:
    """(enqueue -> succeeded, started -> finished as the job table records it, the job's stage timings)."""
    with job_bench(data_dir, JOB_POLL_SECONDS="0.05") as bench:
        job, total = bench.run_buyer_show(path, poll_seconds=0.02)
    return total, (job.finished_at - job.started_at).total_seconds(), job.result["timings"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    path = source_1080p()
    source, renditions = describe(path)
    with tempfile.TemporaryDirectory(prefix="bench-job-") as tmp:
        work = Path(tmp)
        bare = bare_one_pass(source, renditions, work)
        cascade = cascade_only(source, renditions, work)
        total, recorded, timings = whole_job(path, work / "data")
    print(f"source: {path.name} ({source.duration:.1f} s 1080p H.264) -> "
          + ", ".join(f"{r.width}x{r.height}" for r in renditions))
    print(f"  bare single ffmpeg command     {bare:7.2f} s")
    print(f"  our cascade command, no extras {cascade:7.2f} s")
    print(f"  whole job, enqueue -> done     {total:7.2f} s   {total / bare:.2f}x bare   "
          f"{total / cascade:.2f}x cascade   goal <= 1.15x bare: {'met' if total / bare <= 1.15 else 'NOT met'}")
    print(f"  whole job, as recorded         {recorded:7.2f} s   {recorded / bare:.2f}x bare")
    print("  stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))


if __name__ == "__main__":
    main()
