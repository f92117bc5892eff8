"""The real ``videos.process`` job, run from a benchmark: an app on a scratch folder, a worker, one video."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass
class JobBench:
    app: Any
    merchant_id: str
    worker: subprocess.Popen[bytes]

    def run_buyer_show(self, path: Path, *, poll_seconds: float) -> tuple[Any, float]:
        """Store ``path`` as an asset, create its buyer_show video and wait: (the finished job, seconds taken)."""
        from media_service.features.videos.service import create_video
        from media_service.models import Asset, Job
        from media_service.storage import sha256_file

        db = self.app.extensions["database"]
        key = f"assets/{self.merchant_id}/bench/original.mp4"
        self.app.extensions["storage"].put_file(key, path)
        with db.session() as session:
            asset = Asset(merchant_id=self.merchant_id, kind="video", format="mp4", mime="video/mp4",
                          size=path.stat().st_size, sha256=sha256_file(path), storage_key=key, details={})
            session.add(asset)
            session.flush()
            started = time.perf_counter()
            video, _ = create_video(session, self.app.config, merchant_id=self.merchant_id, asset=asset,
                                    profile_name="buyer_show")
            job_id = video.job_id
        while True:
            with db.session() as session:
                job = session.get(Job, job_id)
                if job.state in ("succeeded", "failed"):
                    break
            time.sleep(poll_seconds)
        elapsed = time.perf_counter() - started
        if job.state != "succeeded":
            raise RuntimeError(f"the job failed: {job.error}")
        return job, elapsed


@contextmanager
def job_bench(data_dir: Path, **settings: str) -> Iterator[JobBench]:
    """An app on ``data_dir`` with a merchant, and a real ``media-service worker`` (one job process)."""
    from media_service import create_app
    from media_service.db import upgrade
    from media_service.security.api_keys import create_merchant

    app = create_app({"DATA_DIR": str(data_dir)})
    upgrade(app.config["DATABASE_URL"])
    with app.extensions["database"].session() as session:
        merchant, _ = create_merchant(session, "bench")
        merchant_id = merchant.id
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_SERVICE_")}
    env.update(MEDIA_SERVICE_DATA_DIR=str(data_dir), PYTHONPATH=str(REPO),
               **{f"MEDIA_SERVICE_{name}": value for name, value in settings.items()})
    worker = subprocess.Popen([sys.executable, "-m", "media_service", "worker", "--concurrency", "1"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(3)  # let the worker start (not part of a job's time)
        yield JobBench(app, merchant_id, worker)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        app.extensions["database"].dispose()
