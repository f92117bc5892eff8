"""The rendition ladder in ONE ffmpeg process: decode once, normalise once, scale in a cascade.

The source is decoded a single time. Its frames are made constant-rate, scaled to the top rung while
still in the coded orientation (rotating a 1080p frame is cheaper than rotating a 4K one), turned
upright (rotation and mirror applied to the pixels), tone-mapped to SDR BT.709 when HDR, optionally
stabilised and face-blurred, then split: each rung is encoded, and also scaled down to feed the next
rung (1080 -> 720 -> 480 instead of scaling the source three times). The smallest rung also feeds the
analysis branch: 2 sampled frames per second as small JPEGs (poster scoring, storyboard, perceptual
hash) and blackdetect/freezedetect, whose findings ffmpeg prints to a file.

All renditions go into one HLS muxer (fMP4 segments, one variant per rung, audio muxed into each) so
their keyframes and segment boundaries line up; the fast-start MP4 fallback is remuxed afterwards from
the fallback variant's segments without re-encoding.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from media_service.media.video.ffmpeg import safe_input_args
from media_service.media.video.presets import PlannedRendition, Profile
from media_service.media.video.probe import VideoStream

#: Frames per second sampled for poster scoring, storyboard and hashes.
ANALYSIS_FPS = 2
#: Long side of the sampled analysis frames.
ANALYSIS_LONG_SIDE = 320
#: HLS segment length in seconds (a multiple of every profile's keyframe interval).
SEGMENT_SECONDS = 4
#: The last audio filters of every output: 48 kHz, stereo (a 5.1 or mono source is mixed here).
AUDIO_OUTPUT_FILTERS = ("aresample=48000:async=1", "aformat=sample_fmts=fltp:channel_layouts=stereo")


def escape_filter_value(value: str) -> str:
    """Escape a filter option value (a path) for a filtergraph: both of ffmpeg's quoting levels.

    Level 1 (option parser) protects ``\\ ' :``; level 2 (graph parser) protects ``\\ ' [ ] , ;``.
    """
    level1 = re.sub(r"([\\':])", r"\\\1", value)
    return re.sub(r"([\\'\[\],;])", r"\\\1", level1)


@dataclass(frozen=True)
class LadderInput:
    """What the command needs to know about the source (normalised from the probe once)."""

    path: Path
    demuxer: str
    video: VideoStream
    audio_index: int | None  # absolute stream index of the audio to keep; None: no audio track
    duration: float
    fps: Fraction
    tonemap: str | None  # filter chain (media_service.media.video.tonemap), or None for SDR sources


@dataclass
class LadderPlan:
    """Everything about one ladder run that the pipeline needs afterwards."""

    renditions: list[PlannedRendition]
    out_dir: Path  # HLS tree: out_dir/<name>/index.m3u8, init.mp4, seg_NNNN.m4s; out_dir/master.m3u8
    frames_dir: Path  # sampled analysis frames 000001.jpg ...
    events_file: Path  # blackdetect/freezedetect metadata printed by ffmpeg
    args: list[str] = field(default_factory=list)

    def variant_dir(self, name: str) -> Path:
        return self.out_dir / name


def normalise_filters(source: LadderInput, top: PlannedRendition, *, extra: Sequence[str] = ()) -> list[str]:
    """Filters from the decoded source to upright, constant-rate, SDR 8-bit frames of the top rung's size.

    ``extra`` (stabilisation, face blurring) runs last, on the frames every rendition is made from; the
    analysis passes of those features run this same chain first, so they see the very same frames.
    """
    video = source.video
    turned = video.rotation in (90, 270)
    coded_w, coded_h = (top.height, top.width) if turned else (top.width, top.height)
    filters = [f"fps={source.fps}"]
    scale = f"scale={coded_w}:{coded_h}:flags=bicubic"
    if source.tonemap is None:
        scale += ":out_color_matrix=bt709:out_range=tv"
    filters += [scale, "setsar=1", *video.orientation_filters()]
    if source.tonemap:
        filters.append(source.tonemap)
    return [*filters, "format=yuv420p", *extra]


def analysis_size(smallest: PlannedRendition) -> tuple[int, int]:
    """Size of the sampled analysis frames: long side :data:`ANALYSIS_LONG_SIDE`, even, aspect kept."""
    long_side = max(smallest.width, smallest.height)
    scale = ANALYSIS_LONG_SIDE / long_side
    width = max(2, round(smallest.width * scale / 2) * 2)
    height = max(2, round(smallest.height * scale / 2) * 2)
    return width, height


def keyframe_interval(profile: Profile, fps: Fraction | float) -> int:
    """Frames between keyframes: the profile's keyframe spacing at this (possibly fractional) rate."""
    return max(1, round(profile.keyframe_seconds * fps))


def build_ladder(source: LadderInput, profile: Profile, renditions: list[PlannedRendition], work: Path, *,
                 extra_filters: Sequence[str] = (), loudnorm: str | None = None, threads: int = 0,
                 max_seconds: float | None = None) -> LadderPlan:
    """The ffmpeg arguments (for :func:`~media_service.media.video.ffmpeg.run_ffmpeg`) of the one-pass ladder.

    ``loudnorm`` is the audio filter chain that normalises the loudness (see
    :func:`~media_service.media.video.loudness.plan_normalisation`) or None to keep the level as it is.
    """
    out_dir, frames_dir = work / "hls", work / "frames"
    out_dir.mkdir(parents=True, exist_ok=True)
    frames_dir.mkdir(parents=True, exist_ok=True)
    for path in (out_dir, frames_dir):
        if "%" in str(path):
            raise ValueError(f"work folder {path} must not contain '%' (ffmpeg reads it as a pattern)")
    plan = LadderPlan(renditions=renditions, out_dir=out_dir, frames_dir=frames_dir,
                      events_file=work / "events.txt")
    count = len(renditions)
    graph: list[str] = []
    chain = ",".join(normalise_filters(source, renditions[0], extra=extra_filters))
    graph.append(f"[0:{source.video.index}]{chain},split=2[v0][c0]")
    for i in range(1, count):
        rendition = renditions[i]
        graph.append(f"[c{i - 1}]scale={rendition.width}:{rendition.height}:flags=bicubic,split=2[v{i}][c{i}]")
    frame_w, frame_h = analysis_size(renditions[-1])
    events = escape_filter_value(str(plan.events_file))
    graph.append(f"[c{count - 1}]split=2[s0][s1]")
    graph.append(f"[s0]fps={ANALYSIS_FPS}:eof_action=pass,scale={frame_w}:{frame_h}[frames]")
    graph.append(f"[s1]scale=160:-2,blackdetect=d=0.5:pix_th=0.10,freezedetect=n=0.003:d=1,"
                 f"metadata=mode=print:file={events},nullsink")
    with_audio = source.audio_index is not None and profile.audio
    if with_audio:
        audio_chain = [loudnorm] if loudnorm else []
        audio_chain += list(AUDIO_OUTPUT_FILTERS)
        graph.append(f"[0:{source.audio_index}]{','.join(audio_chain)},asplit={count}"
                     + "".join(f"[a{i}]" for i in range(count)))

    args = ["-noautorotate"]
    if max_seconds is not None:
        args += ["-t", f"{max_seconds:.3f}"]
    args += [*safe_input_args(source.path, source.demuxer), "-filter_complex", ";".join(graph)]
    gop = keyframe_interval(profile, source.fps)
    for i, rendition in enumerate(renditions):
        args += ["-map", f"[v{i}]"]
        if with_audio:
            args += ["-map", f"[a{i}]"]
        args += [f"-crf:v:{i}", str(rendition.crf), f"-maxrate:v:{i}", f"{rendition.maxrate_kbps}k",
                 f"-bufsize:v:{i}", f"{rendition.bufsize_kbps}k"]
    args += ["-c:v", "libx264", "-preset", profile.x264_preset, "-profile:v", "high", "-pix_fmt", "yuv420p",
             "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
             "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
             "-metadata:s:v", "rotate=0", *profile.extra_x264]
    if threads:
        args += ["-threads", str(threads)]
    if with_audio:
        args += ["-c:a", "aac", "-b:a", f"{profile.audio_bitrate_kbps}k", "-ac", "2"]
    stream_map = " ".join(f"v:{i}" + (f",a:{i}" if with_audio else "") + f",name:{r.name}"
                          for i, r in enumerate(renditions))
    args += ["-map_metadata", "-1", "-map_chapters", "-1", "-fflags", "+bitexact",
             "-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_playlist_type", "vod",
             "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments",
             "-hls_fmp4_init_filename", "init.mp4", "-master_pl_name", "master.m3u8",
             "-hls_segment_filename", str(out_dir / "%v" / "seg_%04d.m4s"),
             "-var_stream_map", stream_map, str(out_dir / "%v" / "index.m3u8")]
    args += ["-map", "[frames]", "-map_metadata", "-1", "-c:v", "mjpeg", "-q:v", "3", "-f", "image2",
             str(frames_dir / "%06d.jpg")]
    plan.args = args
    return plan


# --------------------------------------------------------------------------------------- after the run


@dataclass(frozen=True)
class VariantStats:
    """Measured facts of one HLS variant (used for BANDWIDTH and the API)."""

    name: str
    width: int
    height: int
    codecs: str
    duration: float
    total_bytes: int
    peak_bps: int
    average_bps: int
    segments: int


_EXTINF = re.compile(r"#EXTINF:([0-9.]+),")


def variant_segments(variant_dir: Path) -> list[tuple[Path, float]]:
    """The segments of a variant with their durations, in playlist order."""
    lines = (variant_dir / "index.m3u8").read_text().splitlines()
    segments: list[tuple[Path, float]] = []
    duration = None
    for line in lines:
        match = _EXTINF.match(line)
        if match:
            duration = float(match.group(1))
        elif line and not line.startswith("#") and duration is not None:
            segments.append((variant_dir / line.strip(), duration))
            duration = None
    return segments


def init_segment(variant_dir: Path) -> Path:
    match = re.search(r'#EXT-X-MAP:URI="([^"]+)"', (variant_dir / "index.m3u8").read_text())
    if not match:
        raise ValueError(f"{variant_dir / 'index.m3u8'} has no EXT-X-MAP")
    return variant_dir / match.group(1)


def codecs_from_master(master: Path) -> dict[str, str]:
    """``{variant name: CODECS}`` as ffmpeg wrote them in its master playlist."""
    codecs: dict[str, str] = {}
    pending = None
    for line in master.read_text().splitlines():
        if line.startswith("#EXT-X-STREAM-INF:"):
            match = re.search(r'CODECS="([^"]+)"', line)
            pending = match.group(1) if match else "avc1.640028"
        elif line and not line.startswith("#") and pending is not None:
            codecs[line.split("/")[0]] = pending
            pending = None
    return codecs


def measure_variants(plan: LadderPlan) -> list[VariantStats]:
    """Sizes and bit rates of each variant from its files (peak = the largest segment's rate)."""
    codecs = codecs_from_master(plan.out_dir / "master.m3u8")
    stats = []
    for rendition in plan.renditions:
        folder = plan.variant_dir(rendition.name)
        segments = variant_segments(folder)
        init_bytes = init_segment(folder).stat().st_size
        sizes = [(path.stat().st_size, seconds) for path, seconds in segments]
        duration = sum(seconds for _, seconds in sizes)
        total = init_bytes + sum(size for size, _ in sizes)
        peak = max((size * 8 / seconds for size, seconds in sizes if seconds > 0.5), default=0.0)
        average = total * 8 / duration if duration > 0 else 0.0
        stats.append(VariantStats(name=rendition.name, width=rendition.width, height=rendition.height,
                                  codecs=codecs.get(rendition.name, "avc1.640028"), duration=duration,
                                  total_bytes=total, peak_bps=math.ceil(max(peak, average)),
                                  average_bps=math.ceil(average), segments=len(segments)))
    return stats


def write_master_playlist(path: Path, variants: Sequence[VariantStats], fps: Fraction) -> None:
    """A master playlist with measured BANDWIDTH/AVERAGE-BANDWIDTH, RESOLUTION, CODECS and FRAME-RATE.

    ffmpeg's own master playlist derives BANDWIDTH from the configured rates (or only the audio's when
    none is set); players pick variants by it, so it is recomputed from the real segment sizes.
    """
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for variant in variants:
        lines.append(f"#EXT-X-STREAM-INF:BANDWIDTH={variant.peak_bps},AVERAGE-BANDWIDTH={variant.average_bps},"
                     f"RESOLUTION={variant.width}x{variant.height},CODECS=\"{variant.codecs}\","
                     f"FRAME-RATE={float(fps):.3f}")
        lines.append(f"{variant.name}/index.m3u8")
    path.write_text("\n".join(lines) + "\n")


def concat_variant(variant_dir: Path, target: Path) -> Path:
    """A fragmented MP4 of a whole variant: its init segment followed by every media segment.

    fMP4 HLS segments are MP4 fragments, so the concatenation is a valid file that ffmpeg can seek in
    and remux, without touching the HLS demuxer.
    """
    with target.open("wb") as out:
        for part in [init_segment(variant_dir), *(path for path, _ in variant_segments(variant_dir))]:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
    return target
