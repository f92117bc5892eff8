"""The rendition ladder in one pass against one ffmpeg run per rung, on the same machine, in one process.

For each source (a 1080p H.264 file and a 4K HEVC 10-bit phone file with a rotation flag, both made
from the shared clips by ``bench/video_sources.py``) three ways of making the same three renditions
(1080/720/480 on the short side, H.264 + AAC, HLS) are timed:

* ``separate``: three ffmpeg runs, one per rung, each decoding the source and scaling it to its rung
  (what many services do) - the baseline;
* ``one-pass (bare)``: one ffmpeg run, the decoded source split three ways, each scaled from full size;
* ``one-pass (ours)``: the service's own command (``media_service.media.video.ladder.build_ladder``): scaled
  to the top rung first, then a cascade 1080 -> 720 -> 480, plus the analysis branch (sampled
  frames, black and freeze detection) that the pipeline needs anyway.

Goals: ours >= 1.3x faster than separate runs on 1080p H.264, >= 1.5x on 4K HEVC.

    .venv/bin/python bench/video_ladder.py [--repeat 1] [--only 1080p|4k]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.video_sources import source_4k_hevc, source_1080p
from media_service.config import load_settings
from media_service.media.video import ladder
from media_service.media.video import tonemap as tonemap_mod
from media_service.media.video.ffmpeg import run_ffmpeg, safe_input_args
from media_service.media.video.presets import PROFILES, output_fps, plan_ladder
from media_service.media.video.probe import probe_video

PROFILE = PROFILES["buyer_show"]


def encoder_args(profile_rendition: ladder.PlannedRendition, index: int, gop: int) -> list[str]:
    return [f"-crf:v:{index}", str(profile_rendition.crf), f"-maxrate:v:{index}", f"{profile_rendition.maxrate_kbps}k",
            f"-bufsize:v:{index}", f"{profile_rendition.bufsize_kbps}k"]


def common_output(gop: int) -> list[str]:
    return ["-c:v", "libx264", "-preset", PROFILE.x264_preset, "-profile:v", "high", "-pix_fmt", "yuv420p",
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-metadata:s:v", "rotate=0",
            "-c:a", "aac", "-b:a", f"{PROFILE.audio_bitrate_kbps}k", "-ac", "2", "-map_metadata", "-1",
            "-f", "hls", "-hls_time", str(ladder.SEGMENT_SECONDS), "-hls_playlist_type", "vod",
            "-hls_segment_type", "fmp4"]


def separate_runs(source: ladder.LadderInput, renditions: list[ladder.PlannedRendition], work: Path) -> float:
    gop = ladder.keyframe_interval(PROFILE, source.fps)
    started = time.perf_counter()
    for rendition in renditions:
        folder = work / f"separate_{rendition.name}"
        folder.mkdir()
        chain = ",".join(ladder.normalise_filters(source, rendition))
        args = ["-noautorotate", *safe_input_args(source.path, source.demuxer), "-filter_complex",
                f"[0:{source.video.index}]{chain}[v]", "-map", "[v]", "-map", f"0:{source.audio_index}",
                *encoder_args(rendition, 0, gop), *common_output(gop),
                "-hls_segment_filename", str(folder / "seg_%04d.m4s"), str(folder / "index.m3u8")]
        run_ffmpeg(args, timeout=3600)
    return time.perf_counter() - started


def bare_one_pass(source: ladder.LadderInput, renditions: list[ladder.PlannedRendition], work: Path) -> float:
    gop = ladder.keyframe_interval(PROFILE, source.fps)
    folder = work / "bare"
    folder.mkdir()
    count = len(renditions)
    graph = [f"[0:{source.video.index}]split={count}" + "".join(f"[s{i}]" for i in range(count))]
    for i, rendition in enumerate(renditions):
        graph.append(f"[s{i}]" + ",".join(ladder.normalise_filters(source, rendition)) + f"[v{i}]")
    graph.append(f"[0:{source.audio_index}]asplit={count}" + "".join(f"[a{i}]" for i in range(count)))
    args = ["-noautorotate", *safe_input_args(source.path, source.demuxer), "-filter_complex", ";".join(graph)]
    for i, rendition in enumerate(renditions):
        args += ["-map", f"[v{i}]", "-map", f"[a{i}]", *encoder_args(rendition, i, gop)]
    args += [*common_output(gop), "-var_stream_map", " ".join(f"v:{i},a:{i}" for i in range(count)),
             "-master_pl_name", "master.m3u8", "-hls_segment_filename", str(folder / "%v_seg_%04d.m4s"),
             str(folder / "%v.m3u8")]
    started = time.perf_counter()
    run_ffmpeg(args, timeout=3600)
    return time.perf_counter() - started


def ours(source: ladder.LadderInput, renditions: list[ladder.PlannedRendition], work: Path,
         threads: int) -> float:
    folder = work / "ours"
    folder.mkdir()
    plan = ladder.build_ladder(source, PROFILE, renditions, folder, threads=threads)
    started = time.perf_counter()
    run_ffmpeg(plan.args, timeout=3600)
    return time.perf_counter() - started


def describe(path: Path) -> tuple[ladder.LadderInput, list[ladder.PlannedRendition]]:
    settings = load_settings({"DATA_DIR": tempfile.gettempdir()}, environ={})
    info = probe_video(path, demuxer="mov", binary=settings["FFPROBE_BINARY"],
                       timeout=settings["PROBE_TIMEOUT_SECONDS"],
                       max_pixels=settings["MAX_VIDEO_PIXELS"])
    main = info.video
    assert main is not None
    fps = output_fps(PROFILE, main.avg_frame_rate or main.r_frame_rate)
    tonemap = tonemap_mod.zscale_chain(main.color_transfer, main.color_primaries, main.color_space) \
        if main.is_hdr else None
    source = ladder.LadderInput(path=path, demuxer="mov", video=main, audio_index=info.audio_streams[0].index,
                                duration=info.duration or 0.0, fps=fps, tonemap=tonemap)
    return source, plan_ladder(PROFILE, main.display_width, main.display_height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="Measure each way this many times (best is kept).")
    parser.add_argument("--only", choices=["1080p", "4k"], default=None)
    parser.add_argument("--threads", type=int, default=0, help="-threads for our command (0: ffmpeg decides).")
    args = parser.parse_args()
    sources = {"1080p": (source_1080p, 1.3), "4k": (source_4k_hevc, 1.5)}
    for name, (make, goal) in sources.items():
        if args.only and name != args.only:
            continue
        source, renditions = describe(make())
        sizes = ", ".join(f"{r.width}x{r.height}" for r in renditions)
        times: dict[str, list[float]] = {"separate": [], "bare": [], "ours": []}
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="bench-ladder-") as tmp:
                work = Path(tmp)
                times["separate"].append(separate_runs(source, renditions, work))
                times["bare"].append(bare_one_pass(source, renditions, work))
                times["ours"].append(ours(source, renditions, work, args.threads))
                shutil.rmtree(work, ignore_errors=True)
        best = {k: min(v) for k, v in times.items()}
        print(f"{name}: {source.path.name} ({source.video.codec} {source.video.coded_width}x"
              f"{source.video.coded_height}, {source.duration:.1f} s) -> {sizes}")
        print(f"  separate runs (baseline) {best['separate']:7.2f} s")
        print(f"  one pass, bare split     {best['bare']:7.2f} s   {best['separate'] / best['bare']:.2f}x")
        ratio = best["separate"] / best["ours"]
        print(f"  one pass, ours (cascade) {best['ours']:7.2f} s   {ratio:.2f}x   goal >= {goal}x: "
              f"{'met' if ratio >= goal else 'NOT met'}")


if __name__ == "__main__":
    main()
