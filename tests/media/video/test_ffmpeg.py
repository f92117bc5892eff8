"""run_ffmpeg / run_ffprobe with the real ffmpeg 5.1: progress, errors, timeouts, output caps, kills."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest

from media_service.errors import JobCancelled, ProcessingError
from media_service.media.video.ffmpeg import (
    ERROR_TAIL_BYTES,
    STDERR_KEEP_BYTES,
    FFmpegError,
    FFmpegTimeout,
    OutputTooLarge,
    ffmpeg_encoders,
    ffmpeg_version,
    run_ffmpeg,
    run_ffprobe,
    safe_input_args,
)
from tests.conftest import media
from tests.support.hostile import canary, dash_manifest_as_mp4, ffconcat_as_mov, hls_playlist_as_mp4


def _running_with(token: str) -> list[int]:
    """PIDs of live processes whose command line contains ``token`` (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if token.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def _endless(token: str) -> list[str]:
    """An encode that never ends on its own; ``token`` marks it in the process list."""
    return ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-metadata", f"comment={token}"]


def test_progress_fractions_increase_and_end_at_one(tmp_path: Path) -> None:
    seen: list[float] = []
    out = tmp_path / "out.mp4"
    # -re paces the input at real time, so a 2 s encode reports progress several times.
    result = run_ffmpeg(["-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=2",
                         "-c:v", "libx264", "-preset", "ultrafast", str(out)],
                        timeout=30, duration=2.0, on_progress=seen.append)
    assert result.returncode == 0 and out.stat().st_size > 0
    assert len(seen) >= 3, seen
    assert seen == sorted(seen) and len(set(seen)) == len(seen), "fractions must strictly increase"
    assert all(0.0 <= f <= 1.0 for f in seen)
    assert seen[-1] == 1.0 and 0.0 < seen[-2] < 1.0
    assert result.out_time == pytest.approx(2.0, abs=0.1)
    assert result.progress.get("progress") == "end"


def test_without_duration_progress_only_reports_the_end(tmp_path: Path) -> None:
    seen: list[float] = []
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1", "-f", "null", "-"],
               timeout=30, on_progress=seen.append)
    assert seen == [1.0]


def test_failure_keeps_command_and_stderr_tail(tmp_path: Path) -> None:
    missing = tmp_path / "secret-folder" / "missing.mp4"
    with pytest.raises(FFmpegError) as caught:
        run_ffmpeg([*safe_input_args(missing, "mov"), "-f", "null", "-"], timeout=30)
    error = caught.value
    assert isinstance(error, ProcessingError) and error.status == 422
    assert error.returncode not in (0, None)
    assert error.command[0] == "ffmpeg" and f"file:{missing}" in error.command
    assert "No such file or directory" in error.stderr_tail
    assert "exit status" in error.detail and "No such file" in error.detail
    assert str(tmp_path) not in error.detail, "server paths must not reach the error detail"
    assert "command" not in error.to_problem(), "the command line stays out of the API problem"


def test_stderr_is_bounded() -> None:
    # -v debug on a short encode prints far more than we keep.
    result = run_ffmpeg(["-v", "debug", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=2",
                         "-f", "null", "-"], timeout=30)
    assert 0 < len(result.stderr_tail.encode()) <= STDERR_KEEP_BYTES + 4
    with pytest.raises(FFmpegError) as caught:
        run_ffmpeg(["-v", "debug", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1",
                    "-c:v", "no-such-encoder", "-f", "null", "-"], timeout=30)
    assert len(caught.value.stderr_tail) <= ERROR_TAIL_BYTES


def test_timeout_kills_the_process_group() -> None:
    token = secrets.token_hex(8)
    started = time.monotonic()
    with pytest.raises(FFmpegTimeout) as caught:
        run_ffmpeg([*_endless(token), "-f", "null", "-"], timeout=1.0)
    assert time.monotonic() - started < 5
    assert caught.value.code == "ffmpeg_timeout" and "longer than 1 s" in caught.value.detail
    assert _running_with(token) == []


def test_output_cap_kills(tmp_path: Path) -> None:
    token = secrets.token_hex(8)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    cap = 300_000
    started = time.monotonic()
    with pytest.raises(OutputTooLarge) as caught:
        # Paced raw video (~1.4 MB/s), so the overshoot after the cap is predictable.
        run_ffmpeg(["-re", *_endless(token), "-s", "160x120", "-pix_fmt", "rgb24", "-c:v", "rawvideo",
                    "-f", "nut", str(out_dir / "raw.nut")],
                   timeout=30, max_output_bytes=cap, watch_paths=[out_dir])
    assert time.monotonic() - started < 5
    assert caught.value.code == "output_too_large"
    assert _running_with(token) == []
    # Killed within about one watch interval of crossing the cap.
    assert cap < (out_dir / "raw.nut").stat().st_size < 4 * cap


def test_output_cap_counts_files_in_nested_folders(tmp_path: Path) -> None:
    out_dir = tmp_path / "hls"
    (out_dir / "v0").mkdir(parents=True)
    with pytest.raises(OutputTooLarge):
        run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=20", "-c:v", "rawvideo",
                    "-f", "segment", "-segment_time", "1", str(out_dir / "v0" / "seg%03d.nut")],
                   timeout=30, max_output_bytes=500_000, watch_paths=[out_dir])


def test_raising_progress_callback_kills_and_propagates() -> None:
    token = secrets.token_hex(8)
    calls: list[float] = []

    def cancel(fraction: float) -> None:
        calls.append(fraction)
        raise JobCancelled("the job was cancelled")

    with pytest.raises(JobCancelled):
        run_ffmpeg(["-re", *_endless(token), "-f", "null", "-"], timeout=30, duration=60.0,
                   on_progress=cancel)
    assert len(calls) == 1
    assert _running_with(token) == []


def test_run_ffprobe_returns_parsed_json() -> None:
    data = run_ffprobe(["-show_format", "-show_streams", *safe_input_args(media("video/flower.mp4"), "mov")],
                       timeout=30)
    assert data["format"]["format_name"].startswith("mov,")
    assert {s["codec_type"] for s in data["streams"]} == {"video", "audio"}


def test_run_ffprobe_timeout_kills() -> None:
    # ffprobe counting frames of an endless lavfi source never ends on its own.
    token = secrets.token_hex(3)  # a colour: the only free text a lavfi source takes
    with pytest.raises(FFmpegTimeout):
        run_ffprobe(["-f", "lavfi", "-count_frames", "-show_streams",
                     f"color=c=0x{token}:size=64x48:rate=1000"], timeout=1.0)
    assert _running_with(token) == []


def test_missing_binary_is_a_clear_error() -> None:
    with pytest.raises(FFmpegError) as caught:
        run_ffprobe(["-show_format"], timeout=5, binary="/nonexistent/ffprobe")
    assert "could not be started" in caught.value.detail
    assert ffmpeg_version("/nonexistent/ffmpeg") is None
    assert ffmpeg_encoders("/nonexistent/ffmpeg") == set()


def test_version_and_encoders() -> None:
    version = ffmpeg_version("ffmpeg")
    assert version is not None and version[0].isdigit()
    encoders = ffmpeg_encoders("ffmpeg")
    assert {"libx264", "aac", "png"} <= encoders
    encoders.add("mutated")
    assert "mutated" not in ffmpeg_encoders("ffmpeg"), "the cached answer must not be mutable"


def test_safe_input_args_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = safe_input_args("-x", "mov")
    assert args[-2:] == ["-i", f"file:{tmp_path}/-x"], "relative, option-like names become absolute files"
    assert args[args.index("-protocol_whitelist") + 1] == "file"
    assert args[args.index("-format_whitelist") + 1] == "mov,matroska"
    assert args[args.index("-f") + 1] == "mov"
    assert args[args.index("-enable_drefs") + 1] == "0"
    assert "-f" not in safe_input_args("http://127.0.0.1/x.mp4", None)
    assert safe_input_args("http://127.0.0.1/x.mp4", None)[-1] == "file:" + os.path.abspath("http://127.0.0.1/x.mp4")
    for fmt, demuxer in {"mp4": "mov", "3gp": "mov", "webm": "matroska", "matroska": "matroska"}.items():
        args = safe_input_args("x", fmt)
        assert args[args.index("-f") + 1] == demuxer, "MediaFacts.format names map to their demuxer"
    with pytest.raises(ValueError):
        safe_input_args("x.m3u8", "hls")
    with pytest.raises(ValueError):
        safe_input_args("list.txt", "concat")


@pytest.mark.parametrize("demuxer", [None, "mov", "matroska"])
def test_safe_input_args_refuse_playlists_even_past_the_sniffer(tmp_path: Path, demuxer: str | None) -> None:
    """Defence in depth: even if the sniffer were bypassed, ffmpeg itself must not follow a playlist."""
    with canary() as trap:
        files = [hls_playlist_as_mp4(tmp_path, trap.url, "url.mp4"),
                 hls_playlist_as_mp4(tmp_path, trap.file_url, "file.mp4"),
                 dash_manifest_as_mp4(tmp_path, trap.url.rsplit("/", 1)[0] + "/"),
                 ffconcat_as_mov(tmp_path, trap.path)]
        errors = []
        for path in files:
            with pytest.raises(FFmpegError) as caught:
                run_ffprobe(["-show_format", "-show_streams", *safe_input_args(path, demuxer)], timeout=10)
            errors.append(caught.value)
        time.sleep(0.2)  # let a late connection reach the listener before asserting
        trap.assert_untouched(*errors)
