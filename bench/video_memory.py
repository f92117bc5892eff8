"""Peak memory of a worker processing a 1-minute and a 10-minute video: it must stay flat with length.

Each video (a cheap 480x270 test pattern with a tone, ``bench/video_sources.py``) is processed by a
real ``media-service worker`` with one job process; the process tree is sampled every 20 ms and the
peak resident memory is reported for the Python processes (supervisor + job process, summed) and for
the largest single ffmpeg/ffprobe process.

    .venv/bin/python bench/video_memory.py
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.video_jobs import job_bench
from bench.video_sources import source_long

MiB = 1024 * 1024


class TreeSampler:
    """Peak RSS of the Python processes and of any single ffmpeg process in a process tree."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.python_peak = 0
        self.ffmpeg_peak = 0
        self.per_process: dict[tuple[int, str], int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            python = 0
            for process in processes:
                try:
                    rss = process.memory_info().rss
                    name = process.name()
                except psutil.Error:
                    continue
                key = (process.pid, name)
                self.per_process[key] = max(self.per_process.get(key, 0), rss)
                if "ffmpeg" in name or "ffprobe" in name:
                    self.ffmpeg_peak = max(self.ffmpeg_peak, rss)
                elif "python" in name or "media-service" in name:
                    python += rss
            self.python_peak = max(self.python_peak, python)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(path: Path) -> tuple[float, int, int, int]:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp, job_bench(Path(tmp)) as bench:
        with TreeSampler(bench.worker.pid) as sampler:
            _job, elapsed = bench.run_buyer_show(path, poll_seconds=0.1)
        largest_python = max((rss for (_, name), rss in sampler.per_process.items() if "python" in name), default=0)
        return elapsed, sampler.python_peak, sampler.ffmpeg_peak, largest_python


def main() -> None:
    results = {}
    for seconds in (60, 600):
        results[seconds] = measure(source_long(seconds))
        elapsed, python, ffmpeg, largest = results[seconds]
        print(f"{seconds:4d} s video: job {elapsed:6.1f} s, peak RSS: job process {largest / MiB:6.1f} MiB, "
              f"all Python processes {python / MiB:6.1f} MiB, largest ffmpeg {ffmpeg / MiB:6.1f} MiB")
    short, long = results[60], results[600]
    print(f"10 min / 1 min peak: job process {long[3] / short[3]:.2f}x, all Python {long[1] / short[1]:.2f}x, "
          f"ffmpeg {long[2] / short[2]:.2f}x (goal: flat, about 1x)")


if __name__ == "__main__":
    main()
