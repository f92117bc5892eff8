"""Job table operations: enqueue, claim with a lease, heartbeat, finish, cancel, reconcile.

Every state change is a conditional UPDATE (``WHERE state = ... AND lease_owner = ...``), so two
workers can never both claim a job, and a worker whose lease was taken away can never overwrite the
result of the run that replaced it: a job reaches ``succeeded`` exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from media_service.db import begin_write
from media_service.errors import Conflict, NotFound
from media_service.jobs.base import (
    CANCELLED,
    FAILED,
    FINISHED_STATES,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    current_executor,
    kind_for,
)
from media_service.models import Job, WorkerHeartbeat, utcnow
from media_service.webhooks.outbox import record_job_event

_NEW_JOBS = "media_service.new_jobs"


@event.listens_for(Session, "after_commit")
def _submit_new_jobs(session: Session) -> None:
    """Jobs are handed to the executor only once their row is committed (a worker must find it)."""
    for job_id in session.info.pop(_NEW_JOBS, []):
        current_executor().submit(job_id)


@event.listens_for(Session, "after_rollback")
def _forget_new_jobs(session: Session) -> None:
    session.info.pop(_NEW_JOBS, None)


def enqueue(session: Session, kind: str, params: dict[str, Any], *, merchant_id: str | None,
            max_attempts: int = 3, idempotency_key: str | None = None) -> tuple[Job, bool]:
    """Insert a queued job; with an idempotency key a repeat returns the first job. Returns (job, created)."""
    if idempotency_key:
        existing = session.scalar(select(Job).where(Job.merchant_id == merchant_id,
                                                    Job.idempotency_key == idempotency_key))
        if existing is not None:
            return existing, False
        begin_write(session)
    job = Job(kind=kind, params=params, merchant_id=merchant_id, max_attempts=max_attempts,
              idempotency_key=idempotency_key, state=QUEUED)
    session.add(job)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        existing = session.scalar(select(Job).where(Job.merchant_id == merchant_id,
                                                    Job.idempotency_key == idempotency_key))
        if existing is None:
            raise
        return existing, False
    session.info.setdefault(_NEW_JOBS, []).append(job.id)
    return job, True


def claim_next(session: Session, owner: str, lease_seconds: float,
               kinds: list[str] | None = None) -> Job | None:
    """Atomically take the oldest queued job and lease it to ``owner``."""
    now = utcnow()
    query = select(Job.id).where(Job.state == QUEUED).order_by(Job.created_at).limit(5)
    if kinds is not None:
        query = query.where(Job.kind.in_(kinds))
    candidates = session.scalars(query).all()
    begin_write(session)
    for job_id in candidates:
        claimed = session.execute(
            update(Job).where(Job.id == job_id, Job.state == QUEUED).values(
                state=RUNNING, lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds),
                heartbeat_at=now, attempts=Job.attempts + 1, started_at=now, error=None))
        if claimed.rowcount == 1:
            session.commit()
            return session.get(Job, job_id, populate_existing=True)
    session.commit()
    return None


@dataclass(frozen=True)
class LeaseStatus:
    held: bool
    cancel_requested: bool


def renew_lease(session: Session, job_id: str, owner: str, lease_seconds: float,
                progress: float | None = None) -> LeaseStatus:
    """Extend the lease (and store progress); tells whether we still hold it and if cancel was asked."""
    begin_write(session)
    now = utcnow()
    values: dict[str, Any] = {"lease_expires_at": now + timedelta(seconds=lease_seconds), "heartbeat_at": now}
    if progress is not None:
        values["progress"] = round(progress * 100, 1)
    renewed = session.execute(update(Job).where(Job.id == job_id, Job.lease_owner == owner,
                                                Job.state == RUNNING).values(**values))
    cancel = session.scalar(select(Job.cancel_requested).where(Job.id == job_id))
    session.commit()
    return LeaseStatus(held=renewed.rowcount == 1, cancel_requested=bool(cancel))


@dataclass(frozen=True)
class Finished:
    """How ``finish`` went: ``recorded`` is False when the lease was lost (the outcome was dropped);
    ``orphaned`` lists storage prefixes of outputs whose owner was deleted while the job ran."""

    recorded: bool
    orphaned: tuple[str, ...] = ()


def finish(session: Session, job_id: str, owner: str, state: str, *, result: dict[str, Any] | None = None,
           error: dict[str, Any] | None = None) -> Finished:
    """Move a leased job to a final state, running its kind's success hook in the same transaction."""
    begin_write(session)
    values: dict[str, Any] = {"state": state, "finished_at": utcnow(), "lease_owner": None,
                              "lease_expires_at": None, "result": result, "error": error}
    if state == SUCCEEDED:
        values["progress"] = 100.0
    done = session.execute(update(Job).where(Job.id == job_id, Job.lease_owner == owner,
                                             Job.state == RUNNING).values(**values))
    if done.rowcount != 1:
        session.rollback()
        return Finished(recorded=False)
    job = session.get(Job, job_id, populate_existing=True)
    orphaned: tuple[str, ...] = ()
    if job is not None:
        registered = kind_for(job.kind)
        if state == SUCCEEDED and registered is not None and registered.on_success is not None:
            orphaned = tuple(registered.on_success(session, job))
        if orphaned:
            job.result = {**(job.result or {}), "outputs_discarded": "what this job made for was deleted meanwhile"}
        record_job_event(session, job, job_to_dict(job))
    session.commit()
    return Finished(recorded=True, orphaned=orphaned)


def release(session: Session, job_id: str, owner: str) -> None:
    """Give a leased job back to the queue (worker shutting down); the attempt is not counted."""
    begin_write(session)
    session.execute(update(Job).where(Job.id == job_id, Job.lease_owner == owner, Job.state == RUNNING).values(
        state=QUEUED, lease_owner=None, lease_expires_at=None, attempts=Job.attempts - 1))
    session.commit()


def reconcile_expired(session: Session) -> list[str]:
    """Re-queue running jobs whose lease expired (their worker died); fail those out of attempts."""
    now = utcnow()
    expired = session.scalars(select(Job).where(Job.state == RUNNING, Job.lease_expires_at < now)).all()
    begin_write(session)
    changed: list[str] = []
    for job in expired:
        out_of_attempts = job.attempts >= job.max_attempts
        values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
        if job.cancel_requested:
            values.update(state=CANCELLED, finished_at=now)
        elif out_of_attempts:
            values.update(state=FAILED, finished_at=now, error={
                "code": "worker_lost",
                "detail": f"the worker running this job stopped {job.attempts} times; "
                          "retry it, and check the worker logs or its memory limit"})
        else:
            values.update(state=QUEUED)
        moved = session.execute(update(Job).where(Job.id == job.id, Job.state == RUNNING,
                                                  Job.lease_expires_at < now).values(**values))
        if moved.rowcount == 1:
            changed.append(job.id)
            if values.get("state") in FINISHED_STATES:
                ended = session.get(Job, job.id, populate_existing=True)
                if ended is not None:
                    record_job_event(session, ended, job_to_dict(ended))
    session.commit()
    return changed


def get_job(session: Session, job_id: str, merchant_id: str | None) -> Job:
    job = session.get(Job, job_id)
    if job is None or (merchant_id is not None and job.merchant_id != merchant_id):
        raise NotFound(f"no job {job_id!r}", code="job_not_found")
    return job


def cancel(session: Session, job_id: str, merchant_id: str | None) -> Job:
    """Cancel a queued job at once; ask a running one to stop (it ends ``cancelled`` at its next check)."""
    job = get_job(session, job_id, merchant_id)
    if job.state in FINISHED_STATES:
        raise Conflict(f"job {job_id} already ended as {job.state}; nothing to cancel", code="job_finished")
    begin_write(session)
    stop_jobs(session, [job_id])
    session.commit()
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None
    return job


def stop_jobs(session: Session, job_ids: list[str]) -> None:
    """Cancel queued jobs at once and ask running ones to stop (in the caller's write transaction)."""
    if not job_ids:
        return
    session.execute(update(Job).where(Job.id.in_(job_ids), Job.state == QUEUED).values(
        state=CANCELLED, finished_at=utcnow()))
    session.execute(update(Job).where(Job.id.in_(job_ids), Job.state == RUNNING).values(cancel_requested=True))


def retry(session: Session, job_id: str, merchant_id: str | None) -> Job:
    """Queue a failed or cancelled job again, with fresh attempts."""
    job = get_job(session, job_id, merchant_id)
    begin_write(session)
    moved = session.execute(update(Job).where(Job.id == job_id, Job.state.in_((FAILED, CANCELLED))).values(
        state=QUEUED, attempts=0, cancel_requested=False, error=None, result=None, progress=0.0,
        finished_at=None))
    if moved.rowcount != 1:
        raise Conflict(f"job {job_id} is {job.state}; only failed or cancelled jobs can be retried",
                       code="job_not_retryable")
    session.commit()
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None
    return job


def job_to_dict(job: Job) -> dict[str, Any]:
    return {
        "id": job.id, "kind": job.kind, "state": job.state, "progress": job.progress,
        "params": job.params, "attempts": job.attempts, "max_attempts": job.max_attempts,
        "result": job.result, "error": job.error, "cancel_requested": job.cancel_requested,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def live_workers(session: Session, *, within_seconds: float) -> int:
    """Job processes that reported (heartbeat or poll) within the last ``within_seconds``."""
    since = utcnow() - timedelta(seconds=within_seconds)
    return session.scalar(select(func.count()).select_from(WorkerHeartbeat)
                          .where(WorkerHeartbeat.seen_at >= since)) or 0
