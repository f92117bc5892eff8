"""Fault: merchants' webhook receivers that drip or never answer, while a real worker runs everyone's jobs.

Before the outbox had its own senders, one dripping receiver held the worker's supervisor loop for
minutes: other merchants' deliveries waited, a killed job process was not restarted, and a job stayed
``running`` long past its lease. Here the slow merchants' deliveries are cut at the deadline and keep
to their own receivers, while the prompt merchant, the restarts and the lease reconciliation keep pace.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC
from io import BytesIO
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from media_service.jobs import queue
from media_service.models import Job, Webhook, WebhookDelivery, WorkerHeartbeat
from tests.conftest import add_merchant, start_worker, stop_process, wait_for_job
from tests.hardening.receivers import Receiver

SETTINGS = {"JOB_MODULES": ["tests.jobs.slow_job"], "WEBHOOK_TIMEOUT_SECONDS": 2.0}


def _enqueue(app: Flask, merchant_id: str, step_seconds: float) -> str:
    key = f"assets/{merchant_id}/src/original.bin"
    app.extensions["storage"].put_stream(key, BytesIO(os.urandom(10_000)))
    with app.extensions["database"].session() as session:
        job, _ = queue.enqueue(session, "test.slow_copy", {"source_key": key, "step_seconds": step_seconds},
                               merchant_id=merchant_id, max_attempts=3)
        return job.id


def _job_pid(app: Flask, job_id: str, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.extensions["database"].session() as session:
            row = session.scalar(select(WorkerHeartbeat).where(WorkerHeartbeat.current_job_id == job_id))
            if row is not None:
                return row.pid
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never started")


def test_slow_and_silent_receivers_stall_nobody_else(app: Flask, client: FlaskClient, data_dir: Path) -> None:
    drip, silent, prompt = Receiver(mode="drip", drip_seconds=0.5), Receiver(mode="silent"), Receiver()
    merchants = {name: add_merchant(app, name) for name in ("drip", "silent", "prompt")}
    try:
        for name, receiver in (("drip", drip), ("silent", silent), ("prompt", prompt)):
            created = client.post("/v1/webhooks", json={"url": receiver.url}, headers=merchants[name].headers)
            assert created.status_code == 201
        worker = start_worker(data_dir, concurrency=2, **SETTINGS)
        try:
            # The slow merchants finish many jobs first: a queue of deliveries to receivers that never complete.
            slow_jobs = [_enqueue(app, merchants[n].merchant_id, 0.0) for n in ("drip", "silent") for _ in range(8)]
            for job_id in slow_jobs:
                wait_for_job(app, job_id, timeout=60)
            # Then the prompt merchant's jobs: each delivery must arrive soon after its job ends.
            prompt_jobs = [_enqueue(app, merchants["prompt"].merchant_id, 0.01) for _ in range(4)]
            ended = {job_id: wait_for_job(app, job_id, timeout=60).finished_at for job_id in prompt_jobs}
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(prompt.calls) < len(prompt_jobs):
                time.sleep(0.05)
            delivered = {json.loads(c.body)["data"]["id"]: c.wall for c in prompt.calls}
            assert set(delivered) == set(prompt_jobs), f"{len(delivered)}/{len(prompt_jobs)} prompt deliveries"
            lags = [delivered[j] - ended[j].replace(tzinfo=UTC).timestamp() for j in prompt_jobs]
            print(f"prompt merchant's delivery lag after job end: max {max(lags):.2f} s")
            assert max(lags) < 5.0, lags  # before: behind 16 deliveries that each held the loop for minutes

            # A job process killed mid-job is restarted and its job re-run once its lease (3 s) expires.
            victim = _enqueue(app, merchants["prompt"].merchant_id, 0.2)
            pid = _job_pid(app, victim)
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            job = wait_for_job(app, victim, timeout=30)
            recovered_in = time.monotonic() - killed_at
            with app.extensions["database"].session() as session:
                pids = {row.pid for row in session.scalars(select(WorkerHeartbeat))}
                victim_row = session.get(Job, victim)
                slow_attempts = {d.last_error for d in session.scalars(
                    select(WebhookDelivery).join(Webhook).where(Webhook.url.in_([drip.url, silent.url])))}
            health = client.get("/v1/health").json
        finally:
            stop_process(worker)
    finally:
        for receiver in (drip, silent, prompt):
            receiver.close()
    assert job.state == "succeeded" and victim_row.attempts == 2
    assert recovered_in < 20, recovered_in  # lease 3 s + restart; before: never, the loop was held
    assert pid not in pids and len(pids) >= 2  # the killed process was replaced
    assert health["checks"]["workers"]["ok"], health
    assert any(e and "deadline" in e for e in slow_attempts), slow_attempts
    # Each slow receiver saw at most its 2 concurrent attempts per round, never all 8 deliveries at once.
    assert drip.connections <= 16 and silent.connections <= 16
