"""Streaming frames out of ffmpeg: upright, at a fixed rate, never the whole video in memory; ffmpeg is
killed when the consumer stops, times out or the input is hostile."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from media_service.media.detection.frames import VideoGeometry, batched, decode_frame_at, prefetch, stream_frames
from media_service.media.video.ffmpeg import FFmpegError, FFmpegTimeout, open_ffmpeg_stream
from media_service.media_options import ingest_limits
from tests.conftest import media
from tests.support import hostile


def _ffmpeg_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "ffmpeg" in p.name()]


def test_frames_come_upright_at_the_asked_rate(settings: dict[str, Any]) -> None:
    path = media("video/flower.mp4")
    geometry = VideoGeometry.probe(path, "mp4", ingest_limits(settings))
    assert (geometry.display_width, geometry.display_height) == (960, 540)
    frames = list(stream_frames(path, demuxer="mp4", geometry=geometry, fps=4.0, max_side=480,
                                limits=ingest_limits(settings)))
    assert 20 <= len(frames) <= 21  # 5.05 s at 4 frames per second
    assert [f.t for f in frames[:3]] == [0.0, 0.25, 0.5]
    assert frames[0].image.shape == (270, 480, 3) and frames[0].image.dtype == np.uint8
    portrait = media("video/iphone_rotated.mov")  # coded 568x320 with a -90 display matrix
    geometry = VideoGeometry.probe(portrait, "mov", ingest_limits(settings))
    first = next(iter(stream_frames(portrait, demuxer="mov", geometry=geometry, fps=2.0, max_side=568,
                                    limits=ingest_limits(settings))))
    assert first.image.shape == (568, 320, 3)


def test_a_single_frame_at_t_matches_the_stream(settings: dict[str, Any]) -> None:
    path = media("video/bigbuckbunny.mp4")
    geometry = VideoGeometry.probe(path, "mp4", ingest_limits(settings))
    frames = list(stream_frames(path, demuxer="mp4", geometry=geometry, fps=2.0, max_side=320,
                                limits=ingest_limits(settings),
                                limit=5))
    single = decode_frame_at(path, 2.0, demuxer="mp4", geometry=geometry, max_side=320, limits=ingest_limits(settings))
    assert single is not None and single.shape == frames[4].image.shape
    assert np.abs(single.astype(int) - frames[4].image.astype(int)).mean() < 4
    assert decode_frame_at(path, 999.0, demuxer="mp4", geometry=geometry, max_side=320,
                           limits=ingest_limits(settings)) is None


def test_stopping_early_kills_ffmpeg(settings: dict[str, Any]) -> None:
    path = media("video/bottle-detection.mp4")  # 40 s
    geometry = VideoGeometry.probe(path, "mp4", ingest_limits(settings))
    stream = stream_frames(path, demuxer="mp4", geometry=geometry, fps=30.0, max_side=640,
                           limits=ingest_limits(settings))
    for frame in stream:
        if frame.index == 2:
            assert _ffmpeg_children()
            break
    stream.close()
    time.sleep(0.2)
    assert not [p for p in _ffmpeg_children() if p.status() != psutil.STATUS_ZOMBIE]


def test_timeouts_and_failures_of_a_stream() -> None:
    started = time.monotonic()
    with pytest.raises(FFmpegTimeout), open_ffmpeg_stream(
            ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-f", "rawvideo", "pipe:1"], timeout=1.0) as out:
        while out.read(320 * 240 * 3):
            time.sleep(0.01)
    assert time.monotonic() - started < 10
    with pytest.raises(FFmpegError, match="failed"), open_ffmpeg_stream(
            ["-i", "file:/nonexistent/clip.mp4", "-f", "rawvideo", "pipe:1"], timeout=10) as out:
        out.read()


def test_hostile_playlist_named_mp4_is_refused_without_reading_the_canary(tmp_path: Path,
                                                                         settings: dict[str, Any]) -> None:
    with hostile.canary() as trap:
        path = hostile.hls_playlist_as_mp4(tmp_path, trap.file_url)
        with pytest.raises(FFmpegError) as caught:
            geometry = VideoGeometry(stream_index=0, display_width=64, display_height=48)
            list(stream_frames(path, demuxer="mp4", geometry=geometry, fps=1.0, max_side=64,
                               limits=ingest_limits(settings)))
        trap.assert_untouched(caught.value)


def test_prefetch_overlaps_propagates_errors_and_stops() -> None:
    produced: list[int] = []

    def numbers() -> Any:
        for i in range(100):
            produced.append(i)
            yield i

    iterator = prefetch(numbers(), depth=2)
    assert [next(iterator) for _ in range(3)] == [0, 1, 2]
    iterator.close()  # type: ignore[attr-defined]
    assert len(produced) <= 7  # stopped: at most depth + a few ahead, not all 100

    def failing() -> Any:
        yield 1
        raise RuntimeError("decoder exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        list(prefetch(failing()))
    assert list(batched(range(5), 2)) == [[0, 1], [2, 3], [4]]
