"""Faults under real processes: the database locked by another process, storage that refuses writes, the web
process killed while a tus upload completes, the disk filling during a video ladder encode.

Each test runs the real service (gunicorn, worker processes, ffmpeg, SQLite) and is bounded in time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from tusclient import client as tus

from media_service import create_app
from media_service.db import upgrade
from media_service.jobs import queue
from media_service.models import Asset, Job, Upload
from tests.conftest import (
    add_merchant,
    free_port,
    make_test_config,
    media,
    service_env,
    start_worker,
    stop_process,
    wait_for_job,
)

TEST_JOBS = {"JOB_MODULES": ["tests.jobs.slow_job"]}


def _jobs(app: Flask, ids: list[str]) -> dict[str, Job]:
    with app.extensions["database"].session() as session:
        jobs = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(ids)))}
        session.expunge_all()
    return jobs


def _wait_all(app: Flask, ids: list[str], timeout: float) -> dict[str, Job]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = _jobs(app, ids)
        if all(job.state in ("succeeded", "failed", "cancelled") for job in jobs.values()):
            return jobs
        time.sleep(0.2)
    raise AssertionError(f"jobs not finished in {timeout} s: {Counter(j.state for j in _jobs(app, ids).values())}")


def _runs(data_dir: Path) -> Counter[str]:
    log = data_dir / "runs.log"
    return Counter(line.split()[0] for line in log.read_text().splitlines()) if log.exists() else Counter()


@pytest.mark.slow
@pytest.mark.parametrize("lease_seconds", [30.0, 3.0])
def test_database_locked_for_10_s_while_workers_run_jobs(tmp_path: Path, lease_seconds: float) -> None:
    """Another process holds ``BEGIN EXCLUSIVE`` for 10 s while two job processes work through 8 jobs.

    Claims, progress, heartbeats and outcomes wait for the lock (SQLite's busy timeout) and then go on:
    every job succeeds, exactly once recorded, nothing lost. With the production lease (30 s) each job also
    ran exactly once; with a lease shorter than the outage (3 s) a job whose lease expired may run again,
    but only one outcome is recorded and its single output is the right one.
    """
    data_dir = tmp_path / "data"
    app = create_app(make_test_config(data_dir, JOB_LEASE_SECONDS=lease_seconds, **TEST_JOBS))
    upgrade(app.config["DATABASE_URL"])
    who = add_merchant(app, "Locked shop")
    payload = os.urandom(100_000)
    app.extensions["storage"].put_stream(f"assets/{who.merchant_id}/src/a.bin", BytesIO(payload))
    with app.extensions["database"].session() as session:
        ids = [queue.enqueue(session, "test.slow_copy", {"source_key": f"assets/{who.merchant_id}/src/a.bin",
                                                         "step_seconds": 0.05}, merchant_id=who.merchant_id)[0].id
               for _ in range(8)]
    worker = start_worker(data_dir, concurrency=2, JOB_LEASE_SECONDS=lease_seconds, **TEST_JOBS)
    blocker = None
    try:
        deadline = time.monotonic() + 60
        while sum(_runs(data_dir).values()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(_runs(data_dir).values()) >= 2, "the worker never started a job"
        database = app.config["DATABASE_URL"].removeprefix("sqlite:///")
        blocker = subprocess.Popen([sys.executable, "-c", (
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({database!r}, isolation_level=None, timeout=30)\n"
            "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(10); c.execute('COMMIT')\n")],
            stdout=subprocess.PIPE, text=True)
        assert blocker.stdout is not None and blocker.stdout.readline().strip() == "locked"
        locked_at = time.monotonic()
        during = _jobs(app, ids)  # readers still read during the lock
        assert blocker.wait(timeout=30) == 0 and time.monotonic() - locked_at >= 9.5
        jobs = _wait_all(app, ids, timeout=90)
    finally:
        if blocker is not None and blocker.poll() is None:
            blocker.kill()
        stop_process(worker)
    assert any(job.state in ("queued", "running") for job in during.values()), "the lock came after all the work"
    assert Counter(job.state for job in jobs.values()) == {"succeeded": 8}
    runs = _runs(data_dir)
    assert set(runs) == set(ids)
    if lease_seconds >= 30:
        assert all(count == 1 for count in runs.values()), runs
    storage = app.extensions["storage"]
    for job in jobs.values():
        assert job.result is not None and job.result["size"] == len(payload)
        with storage.open(job.result["output_key"]) as handle:
            assert handle.read() == payload
    app.extensions["database"].dispose()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real tmpfs of 4 MiB as the storage root (mounting needs root, as tests/test_disk_full.py)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs make test as root)")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=False).returncode:
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _published(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and ".tmp" not in p.parts)


@pytest.mark.slow
def test_storage_that_refuses_writes_fails_the_job_with_a_clear_code(tmp_path: Path, small_disk: Path) -> None:
    """The storage folder turns read-only (a remount after an I/O error does this): the job that writes its
    output there fails with ``storage_unavailable``, publishes nothing, and the source is untouched."""
    data_dir = tmp_path / "data"
    app = create_app(make_test_config(data_dir, STORAGE_ROOT=str(small_disk), **TEST_JOBS))
    upgrade(app.config["DATABASE_URL"])
    who = add_merchant(app, "Read-only shop")
    source = f"assets/{who.merchant_id}/src/a.bin"
    app.extensions["storage"].put_stream(source, BytesIO(os.urandom(50_000)))
    before = _published(small_disk)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with app.extensions["database"].session() as session:
        job, _ = queue.enqueue(session, "test.slow_copy", {"source_key": source, "step_seconds": 0.0},
                               merchant_id=who.merchant_id, max_attempts=1)
    worker = start_worker(data_dir, STORAGE_ROOT=str(small_disk), **TEST_JOBS)
    try:
        finished = wait_for_job(app, job.id, timeout=60)
    finally:
        stop_process(worker)
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=False)
    assert finished.state == "failed", finished.state
    assert finished.error["code"] == "storage_unavailable", finished.error
    assert "traceback" not in finished.error
    assert _published(small_disk) == before
    app.extensions["database"].dispose()


def _start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "media_service", "serve", "--port", str(port), "--no-worker", "--processes", "2"],
        env=service_env(data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/v1/openapi.json", timeout=1).ok:
                return process
        except requests.ConnectionError:
            time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError("the server did not start in 30 s")


@pytest.mark.slow
def test_web_process_killed_during_the_last_patch_then_the_client_resumes(tmp_path: Path) -> None:
    """The whole gunicorn (master and workers) is SIGKILLed at moments around the last PATCH of a tus
    upload; a new server starts on the same data; the real tus client resumes. Each file becomes exactly
    one asset with the right SHA-256, and the upload says completed with that asset."""
    data_dir = tmp_path / "data"
    app = create_app(make_test_config(data_dir))
    upgrade(app.config["DATABASE_URL"])
    who = add_merchant(app, "Killed shop")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    source = media("video/flower.mp4").read_bytes()
    outcomes = []
    for trial, delay in enumerate([0.0, 0.005, 0.02, 0.05, 0.1, 0.2]):
        path = tmp_path / f"clip{trial}.mp4"
        path.write_bytes(source + b"\0" * (trial + 1))  # each trial a distinct file (assets dedupe by content)
        server = _start_server(data_dir, port)
        client = tus.TusClient(f"{base}/v1/uploads/", headers=who.headers)
        uploader = client.uploader(str(path), chunk_size=256 * 1024, metadata={"filename": path.name})
        url = uploader.create_url()
        uploader.set_url(url)
        while uploader.offset + uploader.chunk_size < uploader.get_file_size():
            uploader.upload_chunk()
        last = threading.Thread(target=_quietly, args=(uploader.upload_chunk,), daemon=True)
        last.start()
        time.sleep(delay)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        last.join(timeout=30)
        server = _start_server(data_dir, port)
        try:
            resumed = tus.TusClient(f"{base}/v1/uploads/", headers=who.headers).uploader(
                str(path), url=url, chunk_size=256 * 1024, metadata={"filename": path.name})
            resumed.upload()
            upload_id = url.rstrip("/").rsplit("/", 1)[1]
            state = requests.get(f"{base}/v1/uploads/{upload_id}", headers=who.headers, timeout=10).json()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=15)
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        with app.extensions["database"].session() as session:
            assets = session.scalars(select(Asset).where(Asset.merchant_id == who.merchant_id,
                                                         Asset.sha256 == sha256)).all()
            upload = session.get(Upload, upload_id)
            outcomes.append((delay, state["state"], len(assets), upload.asset_id == (assets[0].id if assets else 0)))
    assert all(o[1:] == ("completed", 1, True) for o in outcomes), outcomes
    with app.extensions["database"].session() as session:
        assert session.scalar(select(func.count()).select_from(Asset)) == len(outcomes)
    app.extensions["database"].dispose()


def _quietly(call: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):  # the server died under this request, which is the point
        call()


@pytest.mark.slow
def test_disk_full_during_a_ladder_encode_fails_with_storage_full(tmp_path: Path, small_disk: Path) -> None:
    """A real ``videos.process`` job whose ladder does not fit the storage disk (ffmpeg writes its renditions
    in a staging folder on that disk, which has 150 kB left): the job fails with ``storage_full``, the video
    says failed, nothing of it is published and the staging folder is gone; the source asset is untouched."""
    data_dir = tmp_path / "data"
    app = create_app(make_test_config(data_dir, STORAGE_ROOT=str(small_disk)))
    upgrade(app.config["DATABASE_URL"])
    who = add_merchant(app, "Full shop")
    client = app.test_client()
    source = media("video/friday.mp4")
    asset = client.post("/v1/assets", headers=who.headers, content_type="multipart/form-data",
                        data={"file": (BytesIO(source.read_bytes()), source.name)})
    assert asset.status_code == 201, asset.json
    free = os.statvfs(small_disk)
    (small_disk / "filler.bin").write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 150_000))
    before = _published(small_disk)
    created = client.post("/v1/videos", headers=who.headers, json={"asset_id": asset.json["id"],
                                                                  "profile": "buyer_show"})
    assert created.status_code == 202, created.json
    worker = start_worker(data_dir, STORAGE_ROOT=str(small_disk))
    try:
        finished = wait_for_job(app, created.json["job"]["id"], timeout=240)
    finally:
        stop_process(worker)
    assert finished.state == "failed" and finished.error["code"] == "storage_full", finished.error
    video = client.get(f"/v1/videos/{created.json['id']}", headers=who.headers).json
    assert video["state"] == "failed" and video["urls"] is None
    published = [p for p in _published(small_disk) if p not in before]
    assert all("/thumb" in str(p) for p in published), published  # at most the asset's thumbnail job
    assert list((small_disk / ".tmp").iterdir()) == []
    assert asset.json["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    originals = [p for p in before if p.name.startswith("original")]
    assert len(originals) == 1 and hashlib.sha256((small_disk / originals[0]).read_bytes()).hexdigest() \
        == asset.json["sha256"]
    app.extensions["database"].dispose()
