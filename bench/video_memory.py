"""Peak memory of a worker processing a 1-minute and a 10-minute video: it must stay flat with length.

Each video (a cheap 480x270 test pattern with a tone, ``bench/video_sources.py``) is processed by a
real ``media-service worker`` with one job process; the process tree is sampled every 20 ms and the
peak resident memory is reported for the Python processes (supervisor + job process, summed) and for
the largest single ffmpeg/ffprobe process.

    .venv/bin/python bench/video_memory.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
    from bench.video_job_overhead import REPO
    from media_service import create_app
    from media_service.auth import create_merchant
    from media_service.db import upgrade
    from media_service.models import Asset, Job
    from media_service.pipelines.video_records import create_video
    from media_service.storage import sha256_file

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        data_dir = Path(tmp)
        app = create_app({"DATA_DIR": str(data_dir)})
        upgrade(app.config["DATABASE_URL"])
        db = app.extensions["database"]
        with db.session() as session:
            merchant, _ = create_merchant(session, "bench")
            merchant_id = merchant.id
        key = f"assets/{merchant_id}/bench/original.mp4"
        app.extensions["storage"].put_file(key, path)
        import os

        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_SERVICE_")}
        env.update(MEDIA_SERVICE_DATA_DIR=str(data_dir), PYTHONPATH=str(REPO))
        worker = subprocess.Popen([sys.executable, "-m", "media_service", "worker", "--concurrency", "1"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            time.sleep(3)
            with TreeSampler(worker.pid) as sampler:
                with db.session() as session:
                    asset = Asset(merchant_id=merchant_id, kind="video", format="mp4", mime="video/mp4",
                                  size=path.stat().st_size, sha256=sha256_file(path), storage_key=key, details={})
                    session.add(asset)
                    session.flush()
                    started = time.perf_counter()
                    video, _ = create_video(session, app.config, merchant_id=merchant_id, asset=asset,
                                            profile_name="buyer_show")
                    job_id = video.job_id
                while True:
                    with db.session() as session:
                        job = session.get(Job, job_id)
                        if job.state in ("succeeded", "failed"):
                            break
                    time.sleep(0.1)
                elapsed = time.perf_counter() - started
            if job.state != "succeeded":
                raise RuntimeError(f"job failed: {job.error}")
            largest_python = max((rss for (_, name), rss in sampler.per_process.items() if "python" in name),
                                 default=0)
            return elapsed, sampler.python_peak, sampler.ffmpeg_peak, largest_python
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            db.dispose()


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
