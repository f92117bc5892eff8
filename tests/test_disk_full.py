"""A full disk during an upload or a job: a clear error and nothing half-written published.

The storage root is a real 1 MiB tmpfs (mounting needs root, which ``make test`` in CI has).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from flask import Flask

from media_service import create_app
from media_service.db import upgrade
from media_service.jobs import queue
from tests.conftest import add_merchant, make_test_config, media, start_worker, stop_process, wait_for_job


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs make test as root)")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def full_app(small_disk: Path, data_dir: Path) -> Iterator[Flask]:
    app = create_app(make_test_config(data_dir, STORAGE_ROOT=str(small_disk), JOB_MODULES=["tests.jobs.slow_job"]))
    upgrade(app.config["DATABASE_URL"])
    yield app
    app.extensions["database"].dispose()


def _published(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and ".tmp" not in p.parts]


def test_upload_into_a_full_disk_is_507_and_keeps_nothing(full_app: Flask, small_disk: Path) -> None:
    who = add_merchant(full_app, "Full shop")
    client = full_app.test_client()
    big = media("video/flower.mp4")  # 1.1 MB: does not fit in 1 MiB
    response = client.post("/v1/assets", headers=who.headers, content_type="multipart/form-data",
                           data={"file": (BytesIO(big.read_bytes()), big.name)})
    assert response.status_code == 507 and response.json["code"] == "storage_full"
    assert _published(small_disk) == []
    assert list((small_disk / ".tmp").iterdir()) == []
    small = media("panorama/hill/1.JPG")
    ok = client.post("/v1/assets", headers=who.headers, content_type="multipart/form-data",
                     data={"file": (BytesIO(small.read_bytes()), small.name)})
    assert ok.status_code == 201


def test_job_that_fills_the_disk_fails_cleanly(full_app: Flask, small_disk: Path, data_dir: Path) -> None:
    who = add_merchant(full_app, "Full shop")
    storage = full_app.extensions["storage"]
    storage.put_stream(f"assets/{who.merchant_id}/src/original.bin", BytesIO(os.urandom(600_000)))
    with full_app.extensions["database"].session() as session:
        # the copy needs another 600 kB: the disk has ~400 kB left
        job, _ = queue.enqueue(session, "test.slow_copy", {"source_key": f"assets/{who.merchant_id}/src/original.bin",
                                                           "step_seconds": 0.0}, merchant_id=who.merchant_id)
    worker = start_worker(data_dir, STORAGE_ROOT=str(small_disk), JOB_MODULES=["tests.jobs.slow_job"])
    try:
        finished = wait_for_job(full_app, job.id)
    finally:
        stop_process(worker)
    assert finished.state == "failed" and finished.error["code"] == "storage_full"
    assert not storage.exists(f"jobs/{who.merchant_id}/{job.id}/copy.bin")
    assert [p.name for p in _published(small_disk)] == ["original.bin"]
