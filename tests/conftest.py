"""Shared fixtures: an app on a temporary data folder, merchants with keys, a live server, a worker.

Everything is real: SQLite files, the filesystem storage, ffmpeg, gunicorn on 127.0.0.1, worker processes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from media_service import create_app
from media_service.db import upgrade
from media_service.security.api_keys import create_merchant

#: Shared fixture families: the shop with an indexed catalog video (products, video index, widget tests) and
#: one headless Chromium for every browser test.
pytest_plugins = ["tests.support.products.shop", "tests.support.browser"]

REPO = Path(__file__).resolve().parent.parent
SHARED_MEDIA = Path(os.environ.get("MEDIA_SERVICE_TEST_MEDIA", REPO.parent / "shared" / "media"))

# Quick job timings, and every unsafe SQLite transaction fails at once (in the app, live servers and workers).
TEST_SETTINGS = {"DATABASE_STRICT_WRITES": True, "JOB_LEASE_SECONDS": 3.0, "JOB_HEARTBEAT_SECONDS": 0.5,
                 "JOB_POLL_SECONDS": 0.1,
                 "WEBHOOK_ALLOW_PRIVATE_NETWORKS": True, "WEBHOOK_BACKOFF_SECONDS": 0.2}


def media(relative: str) -> Path:
    """A file of the shared real-media corpus (read-only)."""
    path = SHARED_MEDIA / relative
    if not path.exists():
        pytest.fail(f"shared media file missing: {path}")
    return path


def make_test_config(data_dir: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"TESTING": True, "DATA_DIR": str(data_dir), **TEST_SETTINGS}
    config.update(overrides)
    return config


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def app(data_dir: Path) -> Iterator[Flask]:
    config = make_test_config(data_dir)
    app = create_app(config)
    upgrade(app.config["DATABASE_URL"])
    yield app
    app.extensions["database"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass
class MerchantCredentials:
    merchant_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def add_merchant(app: Flask, name: str) -> MerchantCredentials:
    with app.extensions["database"].session() as session:
        merchant, key = create_merchant(session, name)
        return MerchantCredentials(merchant.id, key)


@pytest.fixture
def merchant(app: Flask) -> MerchantCredentials:
    return add_merchant(app, "Shop A")


@pytest.fixture
def other_merchant(app: Flask) -> MerchantCredentials:
    return add_merchant(app, "Shop B")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(data_dir: Path, **settings: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_SERVICE_")}
    env["MEDIA_SERVICE_DATA_DIR"] = str(data_dir)
    for key, value in {**TEST_SETTINGS, **settings}.items():
        env[f"MEDIA_SERVICE_{key}"] = ",".join(value) if isinstance(value, list) else str(value)
    env["PYTHONPATH"] = str(REPO)
    return env


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path


@pytest.fixture
def live_server(app: Flask, data_dir: Path) -> Iterator[LiveServer]:
    """The real service (gunicorn, 2 processes) on 127.0.0.1, sharing the test's data folder."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "media_service", "serve", "--port", str(port), "--no-worker", "--processes", "2"],
        env=service_env(data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/v1/openapi.json", timeout=1).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode() if process.stderr else "server died")
    else:
        process.kill()
        raise RuntimeError("live server did not start in 30 s")
    yield LiveServer(url, process, data_dir)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def start_worker(data_dir: Path, concurrency: int = 1, **settings: Any) -> subprocess.Popen[bytes]:
    """A real ``media-service worker`` process (supervisor plus job processes)."""
    return subprocess.Popen([sys.executable, "-m", "media_service", "worker", "--concurrency", str(concurrency)],
                            env=service_env(data_dir, **settings), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def worker(data_dir: Path, app: Flask) -> Iterator[subprocess.Popen[bytes]]:
    process = start_worker(data_dir)
    yield process
    stop_process(process)


def wait_for_job(app: Flask, job_id: str, states: tuple[str, ...] = ("succeeded", "failed", "cancelled"),
                 timeout: float = 60) -> Any:
    from media_service.models import Job

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.extensions["database"].session() as session:
            job = session.get(Job, job_id)
            if job is not None and job.state in states:
                session.expunge(job)
                return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {states} in {timeout} s")
