"""probe_video on every real video of the shared corpus, against the probe table in SOURCES.md."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from media_service.media.video.ffmpeg import FFmpegError, run_ffmpeg, safe_input_args
from media_service.media.video.probe import VideoInfo, estimate_vfr, orientation_from_matrix, probe_video
from tests.conftest import SHARED_MEDIA, media

PROBE: dict[str, Any] = {"binary": "ffprobe", "timeout": 30.0, "max_pixels": 4096 * 4096}


class Expected(NamedTuple):
    """One row of the SOURCES.md probe table (rotation converted to clockwise degrees)."""

    codec: str
    coded: tuple[int, int]
    pix_fmt: str
    rotation: int
    video_streams: int
    audio: list[tuple[str, int, int]]  # (codec, sample rate, channels)
    vfr: bool
    duration: float
    location: bool


TABLE: dict[str, Expected] = {
    "logos/transparent_dot_vp9_alpha.webm": Expected("vp9", (200, 200), "yuv420p", 0, 1,
                                                     [("vorbis", 48000, 2)], False, 5.0, False),
    "video/bear-vp9-odd-dimensions.webm": Expected("vp9", (161, 121), "yuv420p", 0, 1, [], False, 1.001,
                                                   False),
    "video/bigbuckbunny.mp4": Expected("h264", (1280, 720), "yuv420p", 0, 1, [("aac", 48000, 6)], False,
                                       5.312, False),
    "video/bottle-detection.mp4": Expected("h264", (640, 360), "yuv420p", 0, 1, [], False, 39.855, False),
    "video/dolbyVision-hdr.MOV": Expected("hevc", (1280, 720), "yuv420p10le", 90, 1, [("aac", 44100, 2)],
                                          False, 0.107, True),
    "video/flower.mp4": Expected("h264", (960, 540), "yuv420p", 0, 1, [("aac", 48000, 2)], False, 5.055,
                                 False),
    "video/friday.mp4": Expected("h264", (640, 480), "yuv420p", 0, 1, [("aac", 44100, 2)], False, 6.166,
                                 False),
    "video/iphone_rotated.mov": Expected("h264", (568, 320), "yuv420p", 90, 1, [("aac", 44100, 1)], True,
                                         2.202, True),
    "video/nasa_13013.mp4": Expected("h264", (320, 180), "yuv420p", 0, 2,
                                     [("aac", 8000, 2), ("aac", 16000, 2)], False, 16.570, False),
    "video/pixel-motion-photo-2-hevc-tracks.mp4": Expected("hevc", (1024, 768), "yuvj420p", 90, 2, [], True,
                                                           2.101, False),
    "video/portrait_4k60.mp4": Expected("h264", (3840, 2160), "yuvj420p", 90, 1, [("aac", 48000, 2)], True,
                                        0.313, False),
    "video/sample_android_slow_motion.mp4": Expected("h264", (1280, 720), "yuvj420p", 0, 1, [], True, 0.526,
                                                     False),
    "video/sample_portrait.mp4": Expected("h264", (720, 1080), "yuv420p", 0, 1, [("aac", 44100, 1)], False,
                                          1.089, True),
    "video/sample_rotate_and_reflect.mp4": Expected("h264", (1080, 720), "yuv420p", 90, 1,
                                                    [("aac", 44100, 1)], False, 1.024, True),
}


@functools.cache
def _probe(relative: str) -> VideoInfo:
    demuxer = "matroska" if relative.endswith(".webm") else "mov"
    return probe_video(media(relative), demuxer=demuxer, **PROBE)


def test_table_covers_every_shared_video() -> None:
    videos = {str(p.relative_to(SHARED_MEDIA)) for p in (SHARED_MEDIA / "video").iterdir()}
    assert videos <= set(TABLE), f"add these to TABLE: {sorted(videos - set(TABLE))}"


@pytest.mark.parametrize("relative", sorted(TABLE))
def test_probe_matches_the_sources_table(relative: str) -> None:
    expected = TABLE[relative]
    info = _probe(relative)
    main = info.video
    assert main is not None
    assert main.codec == expected.codec
    assert (main.coded_width, main.coded_height) == expected.coded
    assert main.pix_fmt == expected.pix_fmt
    assert main.rotation == expected.rotation
    swapped = expected.rotation in (90, 270)
    assert (main.display_width, main.display_height) == (expected.coded[::-1] if swapped else expected.coded)
    assert len([s for s in info.video_streams if not s.is_attached_picture]) == expected.video_streams
    assert [(a.codec, a.sample_rate, a.channels) for a in info.audio_streams] == expected.audio
    assert info.has_audio is bool(expected.audio)
    assert main.is_vfr is expected.vfr
    assert info.duration == pytest.approx(expected.duration, abs=0.002)
    assert info.has_location_metadata is expected.location
    assert main.r_frame_rate and main.avg_frame_rate and main.r_frame_rate > 0
    assert info.size_bytes == media(relative).stat().st_size
    assert info.to_dict()["main_video_index"] == main.index  # JSON-friendly summary


def test_mirror_only_for_the_transpose_matrix() -> None:
    for relative in TABLE:
        main = _probe(relative).video
        assert main is not None
        assert main.mirrored is (relative == "video/sample_rotate_and_reflect.mp4"), relative


def test_hdr_and_dolby_vision() -> None:
    main = _probe("video/dolbyVision-hdr.MOV").video
    assert main is not None
    assert main.is_hdr and main.dolby_vision
    assert (main.color_transfer, main.color_primaries) == ("arib-std-b67", "bt2020")
    assert not any(_probe(r).video.is_hdr for r in ("video/flower.mp4", "video/iphone_rotated.mov"))  # type: ignore[union-attr]


def test_alpha_and_frame_counts() -> None:
    alpha = _probe("logos/transparent_dot_vp9_alpha.webm").video
    assert alpha is not None and alpha.has_alpha
    flower = _probe("video/flower.mp4").video
    assert flower is not None and not flower.has_alpha and flower.frame_count == 150


def test_main_stream_choice_in_multi_track_files() -> None:
    pixel = _probe("video/pixel-motion-photo-2-hevc-tracks.mp4")
    assert pixel.video is not None and pixel.video.index == 0 and pixel.video.frame_count == 58
    assert pixel.data_stream_count == 2  # the two metadata tracks
    nasa = _probe("video/nasa_13013.mp4")
    assert nasa.video is not None and (nasa.video.index, nasa.video.coded_width) == (0, 320)
    assert nasa.subtitle_stream_count == 2
    # Subtitles run to 16.57 s; audio and video end at 13.06 s.
    assert nasa.media_duration == pytest.approx(13.056, abs=0.01)


@pytest.mark.parametrize("relative", ["video/sample_rotate_and_reflect.mp4", "video/iphone_rotated.mov"])
def test_orientation_filters_match_ffmpeg_autorotate(tmp_path: Path, relative: str) -> None:
    """Our (rotation, mirrored) reading, as filters, gives the same pixels as ffmpeg 5.1's autorotate."""
    main = _probe(relative).video
    assert main is not None
    source = safe_input_args(media(relative), "mov")
    auto, ours = tmp_path / "auto.rgb", tmp_path / "ours.rgb"
    raw = ["-frames:v", "1", "-pix_fmt", "rgb24", "-f", "rawvideo"]
    run_ffmpeg([*source, *raw, str(auto)], timeout=30)
    run_ffmpeg(["-noautorotate", *source, "-vf", ",".join(main.orientation_filters()), *raw, str(ours)],
               timeout=30)
    assert auto.stat().st_size == main.display_width * main.display_height * 3
    assert auto.read_bytes() == ours.read_bytes()


@pytest.mark.parametrize(("matrix", "expected"), [
    ([65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30], (0, False)),  # identity
    ([0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30], (90, False)),  # iPhone portrait (ffprobe: -90)
    ([0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30], (270, False)),  # ffprobe: 90
    ([-65536, 0, 0, 0, -65536, 0, 0, 0, 1 << 30], (180, False)),
    ([0, 65536, 0, 65536, 0, 0, 0, 0, 1 << 30], (90, True)),  # transpose: sample_rotate_and_reflect
    ([-65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30], (0, True)),  # horizontal flip
    ([65536, 0, 0, 0, -65536, 0, 0, 0, 1 << 30], (180, True)),  # vertical flip
    ([0, -65536, 0, -65536, 0, 0, 0, 0, 1 << 30], (270, True)),  # anti-transpose
    ([0, 0, 0, 0, 0, 0, 0, 0, 0], (0, False)),  # degenerate: ignored
])
def test_orientation_from_matrix(matrix: list[int], expected: tuple[int, bool]) -> None:
    assert orientation_from_matrix(matrix) == expected


def test_estimate_vfr() -> None:
    assert estimate_vfr([i / 25 for i in range(50)]) is False
    assert estimate_vfr([0.0, 0.033, 0.066, 0.2, 0.233]) is True
    assert estimate_vfr([0.0, 0.04]) is None


def test_probe_of_a_non_video_raises(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    with pytest.raises(FFmpegError):
        probe_video(text, demuxer="mov", **PROBE)


def test_probe_uses_the_configured_binary(tmp_path: Path) -> None:
    missing = {**PROBE, "binary": str(tmp_path / "no-ffprobe")}
    with pytest.raises(FFmpegError, match="could not be started"):
        probe_video(media("video/flower.mp4"), demuxer="mov", **missing)
