"""ffmpeg started by a process that is SIGKILLed dies with it (no encoder keeps running for a lost job)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

from tests.conftest import REPO

CHILD = """
from media_service.media.video.ffmpeg import run_ffmpeg
run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "600", "-f", "null", "-"], timeout=600)
"""


def _ffmpeg_child(parent: psutil.Process, timeout: float = 20) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [c for c in parent.children(recursive=True) if c.name() == "ffmpeg"]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError("ffmpeg did not start")


def _alive(process: psutil.Process) -> bool:
    """Running, not a zombie waiting for whoever inherited it to reap it."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_ffmpeg_dies_with_the_process_that_started_it() -> None:
    kills = []
    for _ in range(5):
        job = subprocess.Popen([sys.executable, "-c", CHILD], cwd=REPO, stderr=subprocess.DEVNULL)
        ffmpeg = _ffmpeg_child(psutil.Process(job.pid))
        time.sleep(0.3)
        os.kill(job.pid, signal.SIGKILL)
        job.wait()
        killed = time.monotonic()
        while _alive(ffmpeg) and time.monotonic() - killed < 5:
            time.sleep(0.01)
        if _alive(ffmpeg):
            ffmpeg.kill()
            raise AssertionError("ffmpeg outlived its process by 5 s")
        kills.append(time.monotonic() - killed)
    assert max(kills) < 0.5, kills
