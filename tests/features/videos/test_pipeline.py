"""The video pipeline on real clips and generated ones, with real ffmpeg: what players will get.

Outputs decode, have the planned sizes and the source's duration (within a frame), are upright on the
pixels, carry no location or device metadata, play from the HLS master playlist, and their loudness
is within 1 LU of the target.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from media_service.media.video.ladder import concat_variant
from media_service.media.video.loudness import MAX_GAIN_DB, integrated_loudness
from media_service.media_options import ffmpeg_tools
from tests.conftest import media
from tests.support.videos import (
    ARTIFACTS,
    FFMPEG,
    black_stretch_clip,
    decode_frame,
    ffprobe,
    frozen_clip,
    pattern_clip,
    tone_clip,
    vfr_clip,
)

Run = Callable[..., dict[str, Any]]

# file -> (display size of the top rendition, has audio)
REAL_CLIPS = {
    "iphone_rotated.mov": ((320, 568), True),
    "sample_rotate_and_reflect.mp4": ((720, 1080), True),
    "dolbyVision-hdr.MOV": ((720, 1280), True),
    "pixel-motion-photo-2-hevc-tracks.mp4": ((768, 1024), False),
    "bear-vp9-odd-dimensions.webm": ((160, 120), False),
    "bigbuckbunny.mp4": ((1280, 720), True),
    "nasa_13013.mp4": ((320, 180), True),
    "sample_android_slow_motion.mp4": ((1280, 720), False),
    "flower.mp4": ((960, 540), True),
}
LOCATION_OR_DEVICE = re.compile(r"location|gps|xyz|make|model|software|serial|creation_time|com\.apple|android",
                                re.IGNORECASE)


def all_tags(probe: dict[str, Any]) -> dict[str, str]:
    tags = dict(probe.get("format", {}).get("tags") or {})
    for stream in probe.get("streams", []):
        tags.update(stream.get("tags") or {})
    return tags


def media_duration(probe: dict[str, Any]) -> float:
    return max(float(s.get("duration") or probe["format"]["duration"]) for s in probe["streams"]
               if s["codec_type"] in ("video", "audio"))


def save_artifacts(name: str, result: dict[str, Any]) -> None:
    """Poster, storyboard and a contact sheet of every rendition, for people to look at."""
    folder = ARTIFACTS / name
    folder.mkdir(parents=True, exist_ok=True)
    out: Path = result["out"]
    for file in ("poster.jpg", "storyboard.jpg", "preview.webp"):
        if (out / file).exists():
            (folder / file).write_bytes((out / file).read_bytes())
    tiles = []
    for rendition in result["renditions"]:
        frag = concat_variant(out / "hls" / rendition["name"], folder / f"{rendition['name']}.mp4")
        width = rendition["width"] * 240 // rendition["height"] // 2 * 2
        frame = decode_frame(frag, min(0.5, result["duration"] / 2), size=(width, 240))
        tiles.append(frame)
        frag.unlink()
    Image.fromarray(np.hstack(tiles)).save(folder / "renditions.png")


@pytest.fixture(scope="module")
def processed(run_pipeline: Run) -> dict[str, dict[str, Any]]:
    """Each real clip processed once with the buyer_show profile (shared by the tests below)."""
    return {}


def get_processed(processed: dict[str, dict[str, Any]], run_pipeline: Run, name: str) -> dict[str, Any]:
    if name not in processed:
        processed[name] = run_pipeline(media(f"video/{name}"))
        save_artifacts(name.rsplit(".", 1)[0], processed[name])
    return processed[name]


@pytest.mark.parametrize("name", list(REAL_CLIPS))
def test_real_clip_outputs(processed: dict[str, dict[str, Any]], run_pipeline: Run, name: str) -> None:
    result = get_processed(processed, run_pipeline, name)
    (width, height), has_audio = REAL_CLIPS[name]
    out: Path = result["out"]
    top = result["renditions"][0]
    assert (top["width"], top["height"]) == (width, height)
    assert all(r["width"] % 2 == 0 and r["height"] % 2 == 0 for r in result["renditions"])
    assert all(min(r["width"], r["height"]) <= min(width, height) for r in result["renditions"])  # no upscaling
    source = ffprobe(media(f"video/{name}"))
    frame = 1.0 / result["fps"]
    mp4 = ffprobe(out / "video.mp4")
    video = next(s for s in mp4["streams"] if s["codec_type"] == "video")
    assert video["codec_name"] == "h264" and video["pix_fmt"] == "yuv420p"
    rate = result["fps_rational"] if "/" in result["fps_rational"] else result["fps_rational"] + "/1"
    assert video["avg_frame_rate"] == video["r_frame_rate"] == rate  # constant frame rate
    assert abs(float(video["duration"]) - result["duration"]) <= frame  # what we report is what we wrote
    main = max((s for s in source["streams"] if s["codec_type"] == "video" and s.get("duration")),
               key=lambda s: float(s["duration"]), default=None)
    source_duration = float(main["duration"]) if main else float(source["format"]["duration"])
    assert abs(result["duration"] - source_duration) <= frame + 0.01, source_duration  # within a frame
    audio = [s for s in mp4["streams"] if s["codec_type"] == "audio"]
    assert bool(audio) == has_audio
    if audio:
        assert audio[0]["codec_name"] == "aac" and audio[0]["channels"] == 2
    assert not [k for k in all_tags(mp4) if LOCATION_OR_DEVICE.search(k)], all_tags(mp4)
    assert "side_data_list" not in video  # no display matrix left: the pixels are upright
    # every output decodes, from the master playlist too
    for rendition in result["renditions"]:
        subprocess.run([FFMPEG, "-v", "error", "-i", str(out / "hls" / rendition["name"] / "index.m3u8"),
                        "-f", "null", "-"], check=True, capture_output=True)
    master = ffprobe(out / "hls" / "master.m3u8")
    assert {s["codec_name"] for s in master["streams"]} >= {"h264"}
    assert not [k for k in all_tags(master) if LOCATION_OR_DEVICE.search(k)]
    with Image.open(out / "poster.jpg") as poster:
        assert poster.size == (width, height) and not poster.getexif()
    assert (out / "storyboard.vtt").read_text().count("#xywh=") >= 1  # even for a 0.1 s clip
    with Image.open(out / "preview.webp") as preview:
        assert getattr(preview, "n_frames", 1) > 1 or result["duration"] < 1.0
        assert max(preview.size) <= 320 and not preview.getexif()


def test_master_playlist_is_complete(processed: dict[str, dict[str, Any]], run_pipeline: Run) -> None:
    result = get_processed(processed, run_pipeline, "bigbuckbunny.mp4")
    text = (result["out"] / "hls" / "master.m3u8").read_text()
    lines = [line for line in text.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
    assert len(lines) == len(result["renditions"]) == 2
    for line, rendition in zip(lines, result["renditions"], strict=True):
        assert f"RESOLUTION={rendition['width']}x{rendition['height']}" in line
        assert re.search(r'CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2"', line)
        bandwidth = int(re.search(r"BANDWIDTH=(\d+)", line).group(1))
        assert bandwidth >= rendition["average_bandwidth"] > 50_000
    # the whole presentation plays from the master playlist (ffmpeg's HLS demuxer, our own files)
    played = subprocess.run([FFMPEG, "-v", "error", "-i", str(result["out"] / "hls" / "master.m3u8"), "-map", "0",
                             "-f", "null", "-"], capture_output=True, text=True)
    assert played.returncode == 0, played.stderr
    # the ladder has the source's duration within a frame in every variant
    for rendition in result["renditions"]:
        segments = (result["out"] / "hls" / rendition["name"] / "index.m3u8").read_text()
        total = sum(float(x) for x in re.findall(r"#EXTINF:([0-9.]+)", segments))
        assert abs(total - 5.312) <= 1 / 25 + 0.05


def test_progress_is_reported_in_order(processed: dict[str, dict[str, Any]], run_pipeline: Run) -> None:
    progress = get_processed(processed, run_pipeline, "bigbuckbunny.mp4")["progress_reported"]
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0)
    assert len({round(p, 2) for p in progress}) > 5  # ffmpeg's own progress, not just stage ends


@pytest.mark.parametrize(("rotate", "corner"), [(0, "top_left"), (90, "bottom_left"), (180, "bottom_right"),
                                                (270, "top_right")])
def test_rotation_is_applied_to_the_pixels(clips: Path, run_pipeline: Run, rotate: int, corner: str) -> None:
    """The red block sits in the coded top-left corner; after display rotation it must be where a player
    shows it, in the output's pixels (and the output has no rotation flag left)."""
    result = run_pipeline(pattern_clip(clips, rotate=rotate))
    frame = decode_frame(result["out"] / "video.mp4", 0.2)
    height, width = frame.shape[:2]
    assert (width, height) == ((180, 320) if rotate in (90, 270) else (320, 180))
    red = (frame[..., 0] > 150) & (frame[..., 1] < 90) & (frame[..., 2] < 90)
    quadrants = {"top_left": red[: height // 2, : width // 2], "top_right": red[: height // 2, width // 2:],
                 "bottom_left": red[height // 2:, : width // 2], "bottom_right": red[height // 2:, width // 2:]}
    shares = {name: float(q.mean()) for name, q in quadrants.items()}
    assert max(shares, key=shares.get) == corner, shares
    assert ffprobe(result["out"] / "video.mp4")["streams"][0].get("side_data_list") is None


def test_rotate_and_reflect_matches_the_upright_reference(processed: dict[str, dict[str, Any]],
                                                          run_pipeline: Run) -> None:
    """sample_rotate_and_reflect.mp4 (transpose display matrix) is the footage of sample_portrait.mp4,
    which is coded upright: our output must match the reference, and not its mirror image."""
    result = get_processed(processed, run_pipeline, "sample_rotate_and_reflect.mp4")
    ours = decode_frame(result["out"] / "video.mp4", 0.5, size=(240, 360)).astype(np.float32)
    reference = decode_frame(media("video/sample_portrait.mp4"), 0.5, size=(240, 360)).astype(np.float32)
    same = float(np.abs(ours - reference).mean())
    mirrored = float(np.abs(ours[:, ::-1] - reference).mean())
    assert same < 12 and mirrored > 2 * same, (same, mirrored)


def test_hdr_is_tone_mapped_to_sdr(processed: dict[str, dict[str, Any]], run_pipeline: Run) -> None:
    result = get_processed(processed, run_pipeline, "dolbyVision-hdr.MOV")
    assert result["source"]["hdr"] and result["tonemap"] in {"zscale", "colorspace"}
    stream = ffprobe(result["out"] / "video.mp4")["streams"][0]
    assert stream["pix_fmt"] == "yuv420p" and stream.get("color_transfer") == "bt709"
    assert stream.get("color_primaries") == "bt709"
    frame = decode_frame(result["out"] / "video.mp4", 0.0).astype(np.float32)
    assert 40 < frame.mean() < 200 and frame.std() > 20  # a picture, not washed out or black


@pytest.mark.parametrize("volume_db", [-20.0, 14.0, -38.0])
def test_loudness_is_normalised_within_one_lu(clips: Path, run_pipeline: Run, pipeline_settings: dict[str, Any],
                                              volume_db: float) -> None:
    """Very quiet (-41 LUFS) and loud (-7 LUFS) tones reach the target; a whisper (-60 LUFS) gets the
    maximum gain (30 dB), not more, so its hiss is not blown up."""
    source = tone_clip(clips, f"tone_{int(volume_db)}.mp4", volume_db=volume_db)
    before = integrated_loudness(source, ffmpeg_tools(pipeline_settings))
    result = run_pipeline(source)
    after = integrated_loudness(result["out"] / "video.mp4", ffmpeg_tools(pipeline_settings))
    target = pipeline_settings["VIDEO_LOUDNESS_TARGET_LUFS"]
    assert before is not None and abs(before - target) > 5
    expected = min(target, before + MAX_GAIN_DB)
    assert after is not None and abs(after - expected) <= 1.0, (before, after, expected)
    assert result["loudness"]["applied_target_lufs"] == pytest.approx(expected, abs=0.6)
    measured = result["loudness"]["measured"]
    assert measured["input_i"] == pytest.approx(before, abs=1.0) and result["loudness"]["normalized"]
    true_peak = subprocess.run([FFMPEG, "-nostdin", "-i", str(result["out"] / "video.mp4"), "-vn", "-af",
                                "ebur128=peak=true:framelog=verbose", "-f", "null", "-"],
                               capture_output=True, text=True).stderr
    peak = float(re.findall(r"Peak:\s+(-?[0-9.]+) dBFS", true_peak)[-1])
    assert peak <= pipeline_settings["VIDEO_LOUDNESS_TRUE_PEAK_DB"] + 0.5


def test_no_audio_stays_without_audio(clips: Path, run_pipeline: Run) -> None:
    result = run_pipeline(tone_clip(clips, "mute.mp4", audio=False, seconds=3))
    assert [s["codec_type"] for s in ffprobe(result["out"] / "video.mp4")["streams"]] == ["video"]
    assert "mp4a" not in (result["out"] / "hls" / "master.m3u8").read_text()
    assert {"code": "silent", "reason": "no_audio"}.items() <= next(
        f for f in result["flags"] if f["code"] == "silent").items()


def test_digital_silence_stays_silent(clips: Path, run_pipeline: Run, pipeline_settings: dict[str, Any]) -> None:
    result = run_pipeline(tone_clip(clips, "silence.mp4", silence=True, seconds=3))
    assert not result["loudness"]["normalized"]
    after = integrated_loudness(result["out"] / "video.mp4", ffmpeg_tools(pipeline_settings))
    assert after is None or after < -60
    assert any(f["code"] == "silent" and f["reason"] == "silence" for f in result["flags"])


def test_vfr_hevc_and_odd_inputs_become_cfr_h264(clips: Path, run_pipeline: Run) -> None:
    for source in (vfr_clip(clips), tone_clip(clips, "hevc.mp4", codec="libx265", seconds=2, size="322x242")):
        result = run_pipeline(source)
        frames = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                                 "packet=pts_time", "-of", "csv=p=0", str(result["out"] / "video.mp4")],
                                capture_output=True, text=True, check=True).stdout.split()
        times = sorted(float(t) for t in frames if t)
        gaps = np.diff(times)
        assert gaps.max() - gaps.min() < 0.002, gaps  # constant frame rate
        stream = ffprobe(result["out"] / "video.mp4")["streams"][0]
        assert stream["codec_name"] == "h264" and stream["width"] % 2 == 0 and stream["height"] % 2 == 0


def test_black_and_frozen_stretches_are_flagged_and_avoided(clips: Path, run_pipeline: Run) -> None:
    result = run_pipeline(black_stretch_clip(clips))
    black = next(f for f in result["flags"] if f["code"] == "black")
    (start, end), = black["stretches"]
    assert abs(start - 2.0) <= 0.1 and abs(end - 4.0) <= 0.1
    assert not 1.9 <= result["poster"]["time"] < 4.0  # the poster is not a black frame
    assert "frozen" not in {f["code"] for f in result["flags"]}  # black is reported as black only
    save_artifacts("black_stretch", result)
    frozen = run_pipeline(frozen_clip(clips))
    flag = next(f for f in frozen["flags"] if f["code"] == "frozen")
    assert abs(flag["stretches"][0][0] - 2.0) <= 0.2 and flag["stretches"][0][1] == pytest.approx(5.0, abs=0.1)


def test_storyboard_indexes_the_whole_video(processed: dict[str, dict[str, Any]], run_pipeline: Run) -> None:
    result = get_processed(processed, run_pipeline, "bigbuckbunny.mp4")
    vtt = (result["out"] / "storyboard.vtt").read_text().splitlines()
    assert vtt[0] == "WEBVTT"
    cues = [line for line in vtt if "-->" in line]
    refs = [line for line in vtt if "#xywh=" in line]
    assert len(cues) == len(refs) == result["storyboard"]["tiles"]
    assert cues[0].startswith("00:00:00.000")
    with Image.open(result["out"] / "storyboard.jpg") as sprite:
        for ref in refs:
            x, y, w, h = map(int, ref.split("#xywh=")[1].split(","))
            assert x + w <= sprite.size[0] and y + h <= sprite.size[1]


def test_rerun_publishes_the_same_keys(clips: Path, run_pipeline: Run) -> None:
    source = tone_clip(clips, "rerun.mp4", seconds=3)
    first = run_pipeline(source, prefix="jobs/test/rerun")
    files = sorted(p.relative_to(first["out"]) for p in first["out"].rglob("*") if p.is_file())
    second = run_pipeline(source, prefix="jobs/test/rerun")
    assert sorted(p.relative_to(second["out"]) for p in second["out"].rglob("*") if p.is_file()) == files
    assert first["renditions"] == second["renditions"]


def test_homepage_is_muted_short_and_loops_cleanly(clips: Path, run_pipeline: Run) -> None:
    long_clip = tone_clip(clips, "long_for_homepage.mp4", seconds=34, size="320x180", rate=10)
    result = run_pipeline(long_clip, profile="homepage")
    probe = ffprobe(result["out"] / "video.mp4")
    assert [s["codec_type"] for s in probe["streams"]] == ["video"]
    assert result["duration"] == pytest.approx(30.0) and result["trimmed_from"] == pytest.approx(34.0, abs=0.1)
    assert abs(float(probe["streams"][0]["duration"]) - 30.0) <= 0.1
    keyframes = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-skip_frame", "nokey",
                                "-show_entries", "frame=pts_time", "-of", "csv=p=0", str(result["out"] / "video.mp4")],
                               capture_output=True, text=True, check=True).stdout.split()
    assert len(keyframes) >= 29  # one keyframe a second

