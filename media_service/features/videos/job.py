"""``videos.process``: a buyer-show, promo or home-page video from an uploaded asset.

The pipeline is a pure function over storage keys (:func:`process_video`): it reads the source,
writes every output into a staging folder and publishes them under the job's own keys, so a re-run
overwrites the same objects. The steps read like the issue's list:

1. re-validate the source with ffprobe (limits can change between upload and processing);
2. measure loudness (EBU R128 first pass, silence) when there is audio;
3. optional: stabilisation analysis, face detection;
4. ONE ffmpeg process: upright, CFR, SDR, even sizes, the ladder in a scaling cascade, HLS, sampled
   frames, black/freeze detection, loudness second pass, metadata stripped;
5. master playlist with measured bandwidths, MP4 fallback (remux), poster by frame scoring,
   storyboard sprite + WebVTT, animated WebP preview, moderation flags, perceptual signature;
6. publish (segments before playlists), return the facts; the success hook records them on the
   ``Video`` row, adds the near-duplicate flag and applies the merchant's moderation policy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from media_service import media_options
from media_service.errors import InvalidMedia
from media_service.features.videos.service import DUPLICATE_DEFAULTS, JOB_KIND, apply_policy, find_near_duplicate
from media_service.jobs.base import JobContext, JobKind
from media_service.jobs.resources import ResourceState
from media_service.media.ingest import sniff_file
from media_service.media.video import ladder as ladder_mod
from media_service.media.video import loudness, moderation, posters
from media_service.media.video.faces import plan_face_blur
from media_service.media.video.ffmpeg import FFmpegError, run_ffmpeg, safe_input_args
from media_service.media.video.presets import (
    PROFILES,
    Profile,
    fallback_rendition,
    output_fps,
    parse_options,
    plan_ladder,
)
from media_service.media.video.probe import VideoInfo, probe_video
from media_service.media.video.stabilize import plan_stabilization
from media_service.media.video.tonemap import tonemap_chain
from media_service.models import Job, Video, utcnow
from media_service.storage import Storage

log = logging.getLogger(__name__)

#: Share of the job's progress each stage takes (the ladder encode dominates).
STAGE_WEIGHTS = {"probe": 0.02, "loudness": 0.04, "pre": 0.10, "ladder": 0.74, "post": 0.10}


class Progress:
    """Maps each stage's own 0..1 progress onto the job's 0..1, in stage order."""

    def __init__(self, report: Callable[[float], None], stages: dict[str, float]) -> None:
        self.report = report
        total = sum(stages.values())
        self.starts: dict[str, float] = {}
        self.spans: dict[str, float] = {}
        position = 0.0
        for name, weight in stages.items():
            self.starts[name], self.spans[name] = position / total, weight / total
            position += weight

    def stage(self, name: str) -> Callable[[float], None]:
        start, span = self.starts[name], self.spans[name]
        return lambda fraction: self.report(start + span * min(max(fraction, 0.0), 1.0))


DEMUXERS = {"mp4": "mov", "mov": "mov", "3gp": "mov", "webm": "matroska", "matroska": "matroska"}


def validate_source(info: VideoInfo, settings: Mapping[str, Any]) -> float:
    """Limits again at processing time (defence in depth); returns the media duration."""
    main = info.video
    if main is None:
        raise InvalidMedia("the file has no video stream; upload a video with a picture", reason="no_video_stream")
    if info.stream_count > settings["MAX_VIDEO_STREAMS"]:
        raise InvalidMedia(f"the file has {info.stream_count} streams; at most {settings['MAX_VIDEO_STREAMS']} "
                           "are accepted", reason="too_many_streams")
    if main.coded_width <= 0 or main.coded_height <= 0 or main.pixels > settings["MAX_VIDEO_PIXELS"]:
        raise InvalidMedia(f"the video frame is {main.coded_width}x{main.coded_height}; export it at 4K or lower",
                           reason="too_many_pixels")
    duration = info.media_duration or info.duration
    if not duration or duration <= 0:
        raise InvalidMedia("the video's duration cannot be determined; export it again as MP4",
                           reason="unknown_duration")
    if duration > settings["MAX_VIDEO_SECONDS"]:
        raise InvalidMedia(f"the video lasts {duration:,.0f} s; at most {settings['MAX_VIDEO_SECONDS']:,.0f} s "
                           "are accepted", reason="too_long")
    return float(duration)


def publish(storage: Storage, staging_files: list[tuple[Path, str]]) -> None:
    """Move files into storage in the given order (media segments first, playlists last)."""
    for path, key in staging_files:
        storage.put_file(key, path, move=True)


def process_video(storage: Storage, settings: Mapping[str, Any], *, source_key: str, profile_name: str,
                  options: Mapping[str, Any], output_prefix: str,
                  report: Callable[[float], None] = lambda fraction: None) -> dict[str, Any]:
    """Process one video; outputs go under ``output_prefix/``. Returns what the ``Video`` row records."""
    tools = media_options.ffmpeg_tools(settings)
    profile = PROFILES[profile_name]
    options = parse_options(dict(options))
    progress = Progress(report, STAGE_WEIGHTS)
    timings: dict[str, float] = {}
    with storage.local_path(source_key) as source, storage.staging_dir() as work:
        started = time.monotonic()
        sniffed = sniff_file(source)
        if sniffed.kind != "video" or sniffed.demuxer is None:
            raise InvalidMedia("the asset is not a video; process it as an image instead", reason="not_a_video")
        demuxer = sniffed.demuxer
        try:
            info = probe_video(source, demuxer=demuxer, binary=tools.ffprobe_binary,
                               timeout=tools.probe_timeout_seconds, max_pixels=settings["MAX_VIDEO_PIXELS"])
        except FFmpegError as exc:
            raise InvalidMedia("the video cannot be read: it is damaged or not really a video; export it "
                               "again as MP4 (H.264)", reason="corrupt") from exc
        source_duration = validate_source(info, settings)
        main = info.video
        assert main is not None
        duration = min(source_duration, profile.max_output_seconds or source_duration)
        trim = profile.max_output_seconds if source_duration > (profile.max_output_seconds or 1e18) else None
        fps = output_fps(profile, main.avg_frame_rate or main.r_frame_rate)
        renditions = plan_ladder(profile, main.display_width, main.display_height)
        audio = info.audio_streams[0] if info.audio_streams and profile.audio else None
        progress.stage("probe")(1.0)
        timings["probe"] = time.monotonic() - started

        # 2. loudness, first pass
        started = time.monotonic()
        target = loudness.LoudnessTarget(settings["VIDEO_LOUDNESS_TARGET_LUFS"],
                                         settings["VIDEO_LOUDNESS_TRUE_PEAK_DB"], settings["VIDEO_LOUDNESS_RANGE_LU"])
        measured: loudness.LoudnessMeasurement | None = None
        normalisation: loudness.Normalisation | None = None
        if audio is not None:
            measured = loudness.measure_loudness(source, demuxer, audio.index, target, work, duration=duration,
                                                 tools=tools, max_seconds=trim,
                                                 on_progress=progress.stage("loudness"))
            normalisation = loudness.plan_normalisation(
                source, demuxer, audio.index, measured, target, audio_seconds=min(duration, audio.duration or duration),
                binary=settings["FFMPEG_BINARY"], timeout=settings["FFMPEG_TIMEOUT_SECONDS"], max_seconds=trim)
        loudnorm_chain = normalisation.chain if normalisation else None
        timings["loudness"] = time.monotonic() - started

        # 3. optional analysis before the encode
        started = time.monotonic()
        tonemap_method, tonemap = tonemap_chain(
            settings["VIDEO_TONEMAP"], settings["FFMPEG_BINARY"], transfer=main.color_transfer,
            primaries=main.color_primaries, matrix=main.color_space) if main.is_hdr else (None, None)
        ladder_input = ladder_mod.LadderInput(path=source, demuxer=demuxer, video=main,
                                              audio_index=audio.index if audio else None, duration=duration,
                                              fps=fps, tonemap=tonemap)
        extra_filters: list[str] = []
        stabilization: dict[str, Any] | None = None
        faces: dict[str, Any] | None = None
        pre = progress.stage("pre")
        if options["stabilize"]:
            plan = plan_stabilization(ladder_input, renditions[0], work, tools, engine=settings["VIDEO_STABILIZER"],
                                      max_seconds=trim,
                                      on_progress=lambda f: pre(0.5 * f if options["blur_faces"] else f))
            extra_filters += plan.filters
            stabilization = plan.summary
        if options["blur_faces"]:
            blur = plan_face_blur(ladder_input, renditions[0], work, tools, cascade=settings["VIDEO_FACE_CASCADE"],
                                  max_seconds=trim,
                                  before=extra_filters,
                                  on_progress=lambda f: pre(0.5 + 0.5 * f if options["stabilize"] else f))
            extra_filters += blur.filters
            faces = blur.summary
        pre(1.0)
        timings["pre"] = time.monotonic() - started

        # 4. the one-pass ladder
        started = time.monotonic()
        plan = ladder_mod.build_ladder(ladder_input, profile, renditions, work, extra_filters=extra_filters,
                                       loudnorm=loudnorm_chain, threads=settings["VIDEO_ENCODER_THREADS"],
                                       max_seconds=trim)
        run_ffmpeg(plan.args, binary=settings["FFMPEG_BINARY"], timeout=settings["FFMPEG_TIMEOUT_SECONDS"],
                   duration=duration, on_progress=progress.stage("ladder"),
                   max_output_bytes=settings["VIDEO_MAX_OUTPUT_BYTES"], watch_paths=[work])
        timings["ladder"] = time.monotonic() - started

        # 5. everything made from the renditions and the sampled frames
        started = time.monotonic()
        post = progress.stage("post")
        result = _finish_outputs(plan, profile, settings, work, duration=duration, fps=fps,
                                 has_audio=audio is not None, measured=measured, post=post)
        output_level = loudness.measure_output(work / "video.mp4", binary=settings["FFMPEG_BINARY"],
                                               timeout=settings["FFMPEG_TIMEOUT_SECONDS"]) if audio else None
        result.update(
            profile=profile.name, options=options, output_prefix=output_prefix,
            trimmed_from=round(source_duration, 3) if trim else None, fps=round(float(fps), 3), fps_rational=str(fps),
            source={"width": main.display_width, "height": main.display_height, "codec": main.codec,
                    "rotation": main.rotation, "mirrored": main.mirrored, "hdr": main.is_hdr,
                    "color_transfer": main.color_transfer, "vfr": main.is_vfr,
                    "fps": round(main.avg_frame_rate or main.r_frame_rate or 0.0, 3),
                    "has_audio": info.has_audio, "had_location_metadata": info.has_location_metadata},
            tonemap=tonemap_method, stabilization=stabilization, faces=faces,
            loudness=_loudness_summary(measured, normalisation, target, profile, output_level),
        )
        files: list[tuple[Path, str]] = []
        for rendition in plan.renditions:  # segments, then each variant's playlist, then the master
            folder = plan.variant_dir(rendition.name)
            for path in sorted(folder.iterdir()):
                if path.name != "index.m3u8":
                    files.append((path, f"{output_prefix}/hls/{rendition.name}/{path.name}"))
            files.append((folder / "index.m3u8", f"{output_prefix}/hls/{rendition.name}/index.m3u8"))
        files.append((plan.out_dir / "master.m3u8", f"{output_prefix}/hls/master.m3u8"))
        for name in ("video.mp4", "poster.jpg", "storyboard.jpg", "storyboard.vtt", "preview.webp"):
            if (work / name).exists():
                files.append((work / name, f"{output_prefix}/{name}"))
        publish(storage, files)
        post(1.0)
        timings["post"] = time.monotonic() - started
        result["timings"] = {k: round(v, 3) for k, v in timings.items()}
        return result


def _loudness_summary(measured: loudness.LoudnessMeasurement | None, normalisation: loudness.Normalisation | None,
                      target: loudness.LoudnessTarget, profile: Profile,
                      output: loudness.Level | None) -> dict[str, Any] | None:
    """The stored loudness result: ``normalized`` and ``output`` are measured on the encoded output."""
    if measured is None:
        return {"audio": False, "reason": "muted by profile" if not profile.audio else "no audio track"}
    goal = loudness.applied_target(measured, target) if normalisation else None
    return {"audio": True, "normalized": normalisation is not None and loudness.is_normalised(output, goal, target),
            "method": normalisation.method if normalisation else None,
            "gain_db": normalisation.gain_db if normalisation else None, "target_lufs": target.integrated,
            "applied_target_lufs": goal, "target_true_peak": target.true_peak, "target_lra": target.lra,
            "measured": measured.to_dict(), "output": output.to_dict() if output else None}


def _finish_outputs(plan: ladder_mod.LadderPlan, profile: Profile, settings: Mapping[str, Any], work: Path, *,
                    duration: float, fps: Fraction, has_audio: bool, measured: loudness.LoudnessMeasurement | None,
                    post: Callable[[float], None]) -> dict[str, Any]:
    variants = ladder_mod.measure_variants(plan)
    ladder_mod.write_master_playlist(plan.out_dir / "master.m3u8", variants, fps)
    duration = variants[0].duration  # what was encoded (the source's video length, at the output rate)
    fallback = fallback_rendition(profile, plan.renditions)
    fallback_frag = ladder_mod.concat_variant(plan.variant_dir(fallback.name), work / "fallback_frag.mp4")
    top = plan.renditions[0]
    top_frag = fallback_frag if top.name == fallback.name else \
        ladder_mod.concat_variant(plan.variant_dir(top.name), work / "top_frag.mp4")
    run_ffmpeg([*_own_input(fallback_frag), "-map", "0", "-c", "copy", "-map_metadata", "-1", "-map_chapters",
                "-1", "-movflags", "+faststart", "-fflags", "+bitexact", "-f", "mp4", str(work / "video.mp4")],
               binary=settings["FFMPEG_BINARY"], timeout=settings["FFMPEG_TIMEOUT_SECONDS"])
    post(0.2)
    frames = posters.sampled_frames(plan.frames_dir)
    scores = posters.score_frames(frames, ladder_mod.ANALYSIS_FPS)
    best = posters.choose_poster(scores)
    poster_time = min(best.time, max(0.0, duration - 0.05)) if best else 0.0
    posters.extract_poster(top_frag, poster_time, work / "poster.jpg", media_options.ffmpeg_tools(settings))
    post(0.4)
    storyboard = posters.build_storyboard(frames, ladder_mod.ANALYSIS_FPS, duration, work / "storyboard.jpg",
                                          work / "storyboard.vtt", "storyboard.jpg")
    post(0.6)
    preview_start = 0.0 if profile.loop_friendly else max(0.0, min(poster_time - 1.0,
                                                                    duration - profile.preview_seconds))
    posters.animated_preview(fallback_frag, preview_start, min(profile.preview_seconds, duration),
                             work / "preview.webp", media_options.ffmpeg_tools(settings))
    post(0.8)
    stretches = moderation.parse_detector_events(plan.events_file, duration)
    silent_audio = measured is not None and measured.is_silent and \
        (measured.input_tp is None or measured.input_tp < -50.0)
    flags = moderation.compute_flags(duration=duration, min_seconds=profile.min_seconds, stretches=stretches,
                                     scores=scores, has_audio=has_audio, silent_audio=silent_audio,
                                     silence_seconds=measured.silence_seconds if measured else 0.0)
    signature = posters.video_signature(frames, scores)
    return {
        "renditions": [{"name": v.name, "width": v.width, "height": v.height, "codecs": v.codecs,
                        "bandwidth": v.peak_bps, "average_bandwidth": v.average_bps, "bytes": v.total_bytes,
                        "segments": v.segments, "playlist": f"hls/{v.name}/index.m3u8"} for v in variants],
        "width": top.width, "height": top.height, "duration": round(duration, 3),
        "files": {"hls": "hls/master.m3u8", "mp4": "video.mp4", "poster": "poster.jpg",
                  "storyboard_sprite": "storyboard.jpg" if storyboard else None,
                  "storyboard_vtt": "storyboard.vtt" if storyboard else None, "preview": "preview.webp"},
        "fallback": {"name": fallback.name, "width": fallback.width, "height": fallback.height},
        "poster": {"time": round(poster_time, 3), "score": round(best.score, 3) if best else None},
        "storyboard": storyboard.to_dict() if storyboard else None,
        "flags": flags,
        "analysis": {"black": [[round(a, 2), round(b, 2)] for a, b in stretches.black],
                     "frozen": [[round(a, 2), round(b, 2)] for a, b in stretches.frozen],
                     "sampled_frames": len(scores),
                     "median_luma": round(sorted(s.mean_luma for s in scores)[len(scores) // 2], 1) if scores else None,
                     "median_sharpness": round(sorted(s.sharpness for s in scores)[len(scores) // 2], 1)
                     if scores else None},
        "signature": signature,
    }


def _own_input(path: Path) -> list[str]:
    return safe_input_args(path, "mov")


# ------------------------------------------------------------------------------------------ the job kind


def output_prefix_for(ctx: JobContext) -> str:
    return ctx.output_key("video").rsplit("/", 1)[0]


def record_video(session: Session, job: Job) -> list[str]:
    """Success hook: outputs onto the ``Video`` row, near-duplicate flag, moderation by policy."""
    video = session.get(Video, job.params.get("video_id"))
    if video is None:  # deleted while it was processed
        return [job.result["output_prefix"]] if job.result else []
    if not job.result:
        return []
    result = job.result
    flags = list(result.get("flags") or [])
    signature = list(result.get("signature") or [])
    settings = {**DUPLICATE_DEFAULTS, **(job.params.get("duplicates") or {})}
    duplicate = find_near_duplicate(session, video, signature, settings)
    if duplicate is not None:
        flags.append(moderation.near_duplicate_flag(*duplicate))
    video.state = ResourceState.READY
    video.ready_at = utcnow()
    video.output_prefix = result["output_prefix"]
    video.outputs = {k: result.get(k) for k in ("renditions", "files", "fallback", "poster", "storyboard",
                                                "source", "fps", "fps_rational", "tonemap", "stabilization", "faces",
                                                "trimmed_from", "timings")}
    video.flags = flags
    video.loudness = result.get("loudness")
    video.analysis = result.get("analysis") or {}
    video.signature = signature
    video.duration = result.get("duration")
    video.width, video.height = result.get("width"), result.get("height")
    apply_policy(session, video)
    return []


def process_video_job(ctx: JobContext) -> dict[str, Any]:
    params = ctx.params
    return process_video(ctx.storage, ctx.settings, source_key=params["source_key"], profile_name=params["profile"],
                         options=params.get("options") or {}, output_prefix=output_prefix_for(ctx),
                         report=ctx.progress)


PROCESS_JOB = JobKind(JOB_KIND, process_video_job, on_success=record_video)
