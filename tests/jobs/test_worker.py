"""Real worker processes: outcomes recorded, progress visible, SIGKILL survived, webhooks signed."""

from __future__ import annotations

import http.server
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from media_service.jobs import queue
from media_service.models import Job, WorkerHeartbeat
from media_service.webhooks import SIGNATURE_HEADER, verify_signature
from tests.conftest import MerchantCredentials, start_worker, stop_process, wait_for_job

TEST_JOBS = {"JOB_MODULES": ["tests.jobs.slow_job"]}


class Receiver:
    """A webhook endpoint on 127.0.0.1 that fails the first ``fail_first`` calls."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append((dict(self.headers), body))
                self.send_response(500 if len(receiver.calls) <= receiver.fail_first else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    yield r
    r.close()


def _put_source(app: Flask, merchant_id: str, size: int = 200_000) -> str:
    key = f"assets/{merchant_id}/src/original.bin"
    app.extensions["storage"].put_stream(key, BytesIO(os.urandom(size)))
    return key


def _enqueue(app: Flask, merchant_id: str, kind: str, **params: object) -> str:
    with app.extensions["database"].session() as session:
        job, _ = queue.enqueue(session, kind, dict(params), merchant_id=merchant_id, max_attempts=3)
        return job.id


def test_success_failure_and_crash_are_recorded(app: Flask, client: FlaskClient, data_dir: Path,
                                                merchant: MerchantCredentials) -> None:
    source = _put_source(app, merchant.merchant_id)
    ok = _enqueue(app, merchant.merchant_id, "test.slow_copy", source_key=source, step_seconds=0.01)
    bad = _enqueue(app, merchant.merchant_id, "test.fails")
    crash = _enqueue(app, merchant.merchant_id, "test.crashes")
    unknown = _enqueue(app, merchant.merchant_id, "no.such.kind")
    worker = start_worker(data_dir, concurrency=2, **TEST_JOBS)
    try:
        for job_id in (ok, bad, crash, unknown):
            wait_for_job(app, job_id)
    finally:
        stop_process(worker)
    jobs = {j: client.get(f"/v1/jobs/{j}", headers=merchant.headers).json for j in (ok, bad, crash, unknown)}
    assert jobs[ok]["state"] == "succeeded" and jobs[ok]["progress"] == 100
    assert jobs[ok]["result"]["size"] == 200_000
    assert jobs[bad]["state"] == "failed" and jobs[bad]["error"]["code"] == "no_video_stream"
    assert jobs[crash]["state"] == "failed" and "ZeroDivisionError" in jobs[crash]["error"]["detail"]
    assert jobs[unknown]["error"]["code"] == "unknown_job_kind"


def test_progress_is_visible_while_running(app: Flask, client: FlaskClient, data_dir: Path,
                                           merchant: MerchantCredentials) -> None:
    source = _put_source(app, merchant.merchant_id)
    job_id = _enqueue(app, merchant.merchant_id, "test.slow_copy", source_key=source, step_seconds=0.2)
    worker = start_worker(data_dir, **TEST_JOBS)
    seen: list[float] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            body = client.get(f"/v1/jobs/{job_id}", headers=merchant.headers).json
            seen.append(body["progress"])
            if body["state"] == "succeeded":
                break
            time.sleep(0.1)
    finally:
        stop_process(worker)
    assert any(0 < p < 100 for p in seen), seen
    assert seen == sorted(seen) and seen[-1] == 100


@pytest.mark.slow
def test_sigkilled_worker_job_ends_succeeded_exactly_once(app: Flask, client: FlaskClient, data_dir: Path,
                                                          merchant: MerchantCredentials, receiver: Receiver) -> None:
    """Kill job processes with SIGKILL at random points of 5 jobs: all succeed once, outputs not doubled."""
    import random

    hook = client.post("/v1/webhooks", json={"url": receiver.url}, headers=merchant.headers).json
    source = _put_source(app, merchant.merchant_id)
    job_ids = [_enqueue(app, merchant.merchant_id, "test.slow_copy", source_key=source, step_seconds=0.1)
               for _ in range(5)]
    rng = random.Random(7)
    worker = start_worker(data_dir, concurrency=1, **TEST_JOBS)
    killed = 0
    try:
        for job_id in job_ids:
            # wait until this job is running, let it get a random way in, then SIGKILL its process
            deadline = time.monotonic() + 30
            pid = None
            while time.monotonic() < deadline and pid is None:
                with app.extensions["database"].session() as session:
                    row = session.query(WorkerHeartbeat).filter_by(current_job_id=job_id).first()
                    pid = row.pid if row else None
                time.sleep(0.05)
            if pid is None:
                continue
            time.sleep(rng.uniform(0.1, 1.8))
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        for job_id in job_ids:
            wait_for_job(app, job_id, timeout=90)
        # let the outbox drain, including retries after the receiver's first failures
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len({json.loads(b)["data"]["id"] for h, b in receiver.calls
                                                    if h.get("Media-Service-Event") == "job.succeeded"
                                                    and json.loads(b)["data"]["kind"] == "test.slow_copy"}) < 5:
            time.sleep(0.2)
    finally:
        stop_process(worker)
    assert killed >= 3
    with app.extensions["database"].session() as session:
        jobs = [session.get(Job, j) for j in job_ids]
        assert [j.state for j in jobs] == ["succeeded"] * 5
        assert any(j.attempts >= 2 for j in jobs)
    for job_id in job_ids:
        outputs = list((data_dir / "storage" / "jobs" / merchant.merchant_id / job_id).iterdir())
        assert [p.name for p in outputs] == ["copy.bin"]
        assert outputs[0].stat().st_size == 200_000
    succeeded_events = [json.loads(b) for h, b in receiver.calls if h.get("Media-Service-Event") == "job.succeeded"]
    slow_events = [e["data"]["id"] for e in succeeded_events if e["data"]["kind"] == "test.slow_copy"]
    assert sorted(set(slow_events)) == sorted(job_ids)
    # exactly one successful delivery per job (failed attempts were retried, not duplicated)
    delivered_ok = {}
    for headers, body in receiver.calls[receiver.fail_first:]:
        event = json.loads(body)
        if event["data"]["kind"] == "test.slow_copy":
            delivered_ok[headers["Media-Service-Delivery"]] = event["data"]["id"]
    assert sorted(delivered_ok.values()) == sorted(job_ids)
    for headers, body in receiver.calls:
        assert verify_signature(hook["secret"], body, headers[SIGNATURE_HEADER])
        assert not verify_signature("whsec_wrong", body, headers[SIGNATURE_HEADER])


def test_cancel_a_running_job(app: Flask, client: FlaskClient, data_dir: Path,
                              merchant: MerchantCredentials) -> None:
    source = _put_source(app, merchant.merchant_id)
    job_id = _enqueue(app, merchant.merchant_id, "test.slow_copy", source_key=source, step_seconds=0.3)
    worker = start_worker(data_dir, **TEST_JOBS)
    try:
        wait_for_job(app, job_id, states=("running",), timeout=30)
        assert client.post(f"/v1/jobs/{job_id}/cancel", headers=merchant.headers).status_code == 202
        job = wait_for_job(app, job_id, timeout=30)
    finally:
        stop_process(worker)
    assert job.state == "cancelled"
    assert not (data_dir / "storage" / "jobs" / merchant.merchant_id / job_id / "copy.bin").exists()


def test_graceful_stop_hands_the_job_back(app: Flask, data_dir: Path, merchant: MerchantCredentials) -> None:
    source = _put_source(app, merchant.merchant_id)
    job_id = _enqueue(app, merchant.merchant_id, "test.slow_copy", source_key=source, step_seconds=0.3)
    worker = start_worker(data_dir, **TEST_JOBS)
    wait_for_job(app, job_id, states=("running",), timeout=30)
    stop_process(worker)
    with app.extensions["database"].session() as session:
        job = session.get(Job, job_id)
        assert (job.state, job.attempts) == ("queued", 0)
