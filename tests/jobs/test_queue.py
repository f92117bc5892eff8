"""Job table semantics: claim, lease, heartbeat, finish, reconcile, cancel, retry, idempotency."""

from __future__ import annotations

import time

from flask import Flask

from media_service.jobs import queue
from media_service.models import Job
from tests.conftest import MerchantCredentials


def _enqueue(app: Flask, merchant_id: str, kind: str = "test.slow_copy", **params: object) -> str:
    with app.extensions["database"].session() as session:
        job, created = queue.enqueue(session, kind, dict(params), merchant_id=merchant_id, max_attempts=2)
        assert created
        return job.id


def test_two_workers_never_claim_the_same_job(app: Flask, merchant: MerchantCredentials) -> None:
    job_id = _enqueue(app, merchant.merchant_id)
    db = app.extensions["database"]
    with db.session() as first, db.session() as second:
        claimed_first = queue.claim_next(first, "w1", 30)
        claimed_second = queue.claim_next(second, "w2", 30)
    assert claimed_first is not None and claimed_first.id == job_id
    assert claimed_second is None


def test_finish_only_by_the_lease_owner(app: Flask, merchant: MerchantCredentials) -> None:
    job_id = _enqueue(app, merchant.merchant_id)
    db = app.extensions["database"]
    with db.session() as session:
        queue.claim_next(session, "w1", 30)
        assert not queue.finish(session, job_id, "intruder", "succeeded", result={"x": 1}).recorded
        assert queue.finish(session, job_id, "w1", "succeeded", result={"x": 1}).recorded
        assert not queue.finish(session, job_id, "w1", "succeeded", result={"x": 2}).recorded
        job = session.get(Job, job_id, populate_existing=True)
        assert (job.state, job.result, job.progress) == ("succeeded", {"x": 1}, 100.0)


def test_expired_lease_is_requeued_then_failed_after_max_attempts(app: Flask, merchant: MerchantCredentials) -> None:
    job_id = _enqueue(app, merchant.merchant_id)
    db = app.extensions["database"]
    for attempt in (1, 2):
        with db.session() as session:
            job = queue.claim_next(session, f"dead-{attempt}", 0.05)
            assert job is not None and job.attempts == attempt
        time.sleep(0.1)
        with db.session() as session:
            assert queue.reconcile_expired(session) == [job_id]
            state = session.get(Job, job_id, populate_existing=True).state
        assert state == ("queued" if attempt == 1 else "failed")
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job.error["code"] == "worker_lost"
        # the dead worker's late result is dropped
        assert not queue.finish(session, job_id, "dead-2", "succeeded", result={}).recorded


def test_renew_reports_lost_lease_and_cancel(app: Flask, merchant: MerchantCredentials) -> None:
    job_id = _enqueue(app, merchant.merchant_id)
    db = app.extensions["database"]
    with db.session() as session:
        queue.claim_next(session, "w1", 30)
        assert queue.renew_lease(session, job_id, "w1", 30, 0.5).held
        queue.cancel(session, job_id, merchant.merchant_id)
        status = queue.renew_lease(session, job_id, "w1", 30)
        assert status.held and status.cancel_requested
        assert not queue.renew_lease(session, job_id, "w2", 30).held
        assert session.get(Job, job_id, populate_existing=True).progress == 50.0


def test_idempotency_key_gives_one_job(app: Flask, merchant: MerchantCredentials) -> None:
    with app.extensions["database"].session() as session:
        first, created_first = queue.enqueue(session, "test.slow_copy", {}, merchant_id=merchant.merchant_id,
                                             idempotency_key="same")
        second, created_second = queue.enqueue(session, "test.slow_copy", {}, merchant_id=merchant.merchant_id,
                                               idempotency_key="same")
    assert first.id == second.id and created_first and not created_second


def test_cancel_queued_and_retry(app: Flask, client, merchant: MerchantCredentials,
                                 other_merchant: MerchantCredentials) -> None:
    job_id = _enqueue(app, merchant.merchant_id)
    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=other_merchant.headers).status_code == 404
    response = client.post(f"/v1/jobs/{job_id}/cancel", headers=merchant.headers)
    assert response.status_code == 202 and response.json["state"] == "cancelled"
    again = client.post(f"/v1/jobs/{job_id}/cancel", headers=merchant.headers)
    assert again.status_code == 409 and again.json["code"] == "job_finished"
    retried = client.post(f"/v1/jobs/{job_id}/retry", headers=merchant.headers)
    assert retried.status_code == 202 and retried.json["state"] == "queued"
    listed = client.get("/v1/jobs?state=queued", headers=merchant.headers).json["items"]
    assert [j["id"] for j in listed if j["kind"] == "test.slow_copy"] == [job_id]
    assert client.get("/v1/jobs", headers=other_merchant.headers).json["items"] == []


def test_every_committed_job_is_handed_to_the_executor(app: Flask, client, merchant: MerchantCredentials) -> None:
    """The executor seam: a job reaches it after its row is committed, whatever code enqueued it; a rolled
    back job never does. (A recording executor stands in for the Celery one the brief puts later.)"""
    from io import BytesIO

    from media_service.jobs.base import Executor, LocalExecutor, set_executor
    from tests.conftest import media

    class Recording(Executor):
        def __init__(self) -> None:
            self.submitted: list[str] = []

        def submit(self, job_id: str) -> None:
            self.submitted.append(job_id)

    recording = Recording()
    set_executor(recording)
    try:
        committed = _enqueue(app, merchant.merchant_id)
        with app.extensions["database"].sessions() as session:
            dropped, _ = queue.enqueue(session, "test.slow_copy", {}, merchant_id=merchant.merchant_id)
            session.rollback()
        photo = media("panorama/hill/1.JPG")
        client.post("/v1/assets", headers=merchant.headers, content_type="multipart/form-data",
                    data={"file": (BytesIO(photo.read_bytes()), photo.name)})
        thumbnail = client.get("/v1/jobs?kind=assets.thumbnail", headers=merchant.headers).json["items"][0]["id"]
    finally:
        set_executor(LocalExecutor())
    assert recording.submitted == [committed, thumbnail]
    assert dropped.id not in recording.submitted
