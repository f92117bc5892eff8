"""A resource made by a job: a row (video, panorama, spin, video index) whose content a job produces.

One place for what such resources share: creating the row with its job in one transaction (a repeated
request returns the first), the state clients see (from the row and its job: the job table is the truth
until the success hook marks the row ready), and deleting the row with the work in flight for it and every
file made for it. A queued job is cancelled at once; a running one is asked to stop, and should it finish
anyway its success hook finds its row gone and hands the outputs back for deletion
(``jobs.base.SuccessHook``), so nothing is left behind that nothing points to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from media_service.db import begin_write
from media_service.errors import Conflict, NotFound
from media_service.jobs.base import JobState, job_output_root
from media_service.jobs.queue import enqueue, stop_jobs
from media_service.models import Asset, Base, Job, utcnow
from media_service.storage import Storage


class ResourceState(StrEnum):
    """The one state vocabulary of resources made by jobs, as clients see it."""

    QUEUED = "queued"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"
    CANCELLED = "cancelled"


_FROM_JOB = {JobState.QUEUED: ResourceState.QUEUED, JobState.RUNNING: ResourceState.PROCESSING,
             JobState.SUCCEEDED: ResourceState.READY, JobState.FAILED: ResourceState.FAILED,
             JobState.CANCELLED: ResourceState.CANCELLED}


def public_state(stored_state: str | None, job: Job | None) -> ResourceState:
    """Ready once the success hook marked the row; before that, what its job says."""
    if stored_state == ResourceState.READY:
        return ResourceState.READY
    if job is None:
        return ResourceState.PROCESSING
    return _FROM_JOB.get(JobState(job.state), ResourceState.PROCESSING)


@dataclass
class Dependents:
    """What hangs on a row being deleted: jobs to stop and storage prefixes to delete (rows go by cascade)."""

    job_ids: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)


#: Tells what of a feature's own was made from an asset alone (deleted with it); listed in ``Feature``.
DependentsFinder = Callable[[Session, Asset], Dependents]


class MadeByJob(Protocol):
    id: Any
    job_id: Any
    merchant_id: Any


R = TypeVar("R", bound=Base)


def create_with_job(session: Session, row: R, kind: str, params: Callable[[R], dict[str, Any]], *,
                    merchant_id: str, max_attempts: int = 3, idempotency_key: str | None = None) -> tuple[R, Job, bool]:
    """Insert ``row`` and the job that makes it, in one transaction. Returns ``(row, job, created)``.

    ``params`` builds the job's parameters from the row (its id is drawn first); the job is inserted before the
    row, whose ``job_id`` may be required. With an idempotency
    key a repeat (or a racing twin) returns the first row and job; a key used for another kind of resource is
    a 409. A unique constraint of the row itself raises ``IntegrityError`` to the caller, whose rule it is.
    """
    model = type(row)
    if idempotency_key:
        earlier = session.scalar(select(Job).where(Job.merchant_id == merchant_id,
                                                   Job.idempotency_key == idempotency_key))
        if earlier is not None:
            return _row_of(session, model, earlier), earlier, False
    begin_write(session)
    if getattr(row, "id", None) is None:  # the job's parameters name the row, and the row names its job
        row.id = model.__table__.c.id.default.arg(None)  # type: ignore[attr-defined]
    job, created = enqueue(session, kind, params(row), merchant_id=merchant_id, max_attempts=max_attempts,
                           idempotency_key=idempotency_key)
    if not created:  # a twin request committed first
        return _row_of(session, model, job), job, False
    row.job_id = job.id  # type: ignore[attr-defined]
    session.add(row)
    session.flush()
    session.commit()
    return row, job, True


def get_owned(session: Session, model: type[R], row_id: str, merchant_id: str, what: str) -> R:
    """The merchant's row by id; another merchant's id is simply not found (404 ``<what>_not_found``)."""
    row = session.scalar(select(model).where(model.id == row_id,  # type: ignore[attr-defined]
                                             model.merchant_id == merchant_id))  # type: ignore[attr-defined]
    if row is None:
        raise NotFound(f"no {what} {row_id!r}", code=f"{what}_not_found")
    return row


def ready_result(row: Any, what: str) -> dict[str, Any]:
    """The result of a ready resource, for embedding; 409 ``not_ready`` before that."""
    if row.state != ResourceState.READY or not row.result:
        raise Conflict(f"this {what} is not ready yet; embed it once its state is 'ready'", code="not_ready")
    return row.result


def _row_of(session: Session, model: type[R], job: Job) -> R:
    row = session.scalar(select(model).where(model.job_id == job.id))  # type: ignore[attr-defined]
    if row is None:
        raise Conflict("this Idempotency-Key was already used for another kind of request",
                       code="idempotency_key_reused")
    return row


def delete_with_files(session: Session, storage: Storage, rows: Iterable[Base], *, job_ids: Iterable[str | None],
                      prefixes: Iterable[str | None]) -> None:
    """Stop the jobs, delete the rows (one transaction), then the files under the prefixes."""
    begin_write(session)
    stop_jobs(session, [job_id for job_id in job_ids if job_id])
    for row in rows:
        session.delete(row)
    session.commit()
    for prefix in prefixes:
        if prefix:
            storage.delete_prefix(prefix)


def job_files(row: MadeByJob) -> str | None:
    """Where a resource's files are (or will be): its job's output folder."""
    return job_output_root(row.merchant_id, row.job_id) if row.job_id else None


def delete_job_result(session: Session, storage: Storage, row: MadeByJob) -> None:
    """Delete a row whose files are exactly what its job made (a panorama, a spin)."""
    delete_with_files(session, storage, [row], job_ids=[row.job_id], prefixes=[job_files(row)])  # type: ignore[list-item]


def record_result(session: Session, row: Any, job: Job) -> list[str]:
    """Success hook body of a resource whose files are its job's result (panoramas, spins): the row is ready
    with the job's result; a row deleted
    while the job ran gives the job's published folder back for deletion."""
    if row is None:
        return [job.result["prefix"]] if job.result else []
    if job.result:
        row.state, row.result, row.finished_at = ResourceState.READY, job.result, utcnow()
    return []
