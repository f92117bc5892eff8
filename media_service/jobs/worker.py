"""The local job worker: a supervisor process with a pool of job processes.

Each job process claims one job at a time from the job table, runs it while a heartbeat thread renews
its lease, and records the outcome. The supervisor restarts job processes that die and runs the
housekeeping: re-queueing jobs whose lease expired (their process was killed) and removing expired
uploads. Webhooks are delivered by the outbox dispatcher on its own thread and sender pool, so a slow
receiver can never hold this loop. Any number of workers, on any number of machines sharing the database, can run
side by side.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, update

from media_service.db import Database, begin_write
from media_service.errors import JobCancelled, MediaServiceError
from media_service.jobs import queue
from media_service.jobs.base import (
    CANCELLED,
    FAILED,
    SUCCEEDED,
    JobContext,
    JobKind,
    kind_for,
    load_job_modules,
    register_job_kinds,
)
from media_service.media.ingest.images import configure_image_limits
from media_service.media_options import ingest_limits
from media_service.models import WorkerHeartbeat, utcnow
from media_service.storage import make_storage
from media_service.storage.base import storage_full_as_error
from media_service.webhooks.outbox import OutboxDispatcher

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker now owns the job (ours was presumed dead); stop without recording anything."""


class _RunningJob:
    """Progress and lease bookkeeping of the job a process is running (shared with its heartbeat thread)."""

    def __init__(self, db: Database, job_id: str, owner: str, settings: Mapping[str, Any]) -> None:
        self.db, self.job_id, self.owner, self.settings = db, job_id, owner, settings
        self.progress: float | None = None
        self.cancel_requested = False
        self.lease_lost = False
        self._stop = threading.Event()
        self._last_write = 0.0
        self._last_seen = time.monotonic()
        self._written_progress = -1.0
        self._thread = threading.Thread(target=self._heartbeat, daemon=True, name=f"heartbeat-{job_id}")

    def __enter__(self) -> _RunningJob:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _renew(self) -> None:
        with self.db.session() as session:
            status = queue.renew_lease(session, self.job_id, self.owner, self.settings["JOB_LEASE_SECONDS"],
                                       self.progress)
            if time.monotonic() - self._last_seen >= 5.0:  # a long job still counts as a live worker (health)
                begin_write(session)
                session.execute(update(WorkerHeartbeat).where(WorkerHeartbeat.id == self.owner).values(
                    seen_at=utcnow()))
                self._last_seen = time.monotonic()
        self._written_progress = self.progress if self.progress is not None else self._written_progress
        self._last_write = time.monotonic()
        self.cancel_requested = status.cancel_requested
        self.lease_lost = not status.held

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.settings["JOB_HEARTBEAT_SECONDS"]):
            try:
                self._renew()
            except Exception:  # a database hiccup must not kill the job; the next beat retries
                log.exception("heartbeat of job %s failed", self.job_id)

    def report(self, fraction: float) -> None:
        """Called by the job; writes at most once a second or per whole percent, then checks flags."""
        self.progress = fraction
        if (fraction - self._written_progress >= 0.01 and time.monotonic() - self._last_write >= 1.0) \
                or fraction >= 1.0:
            self._renew()
        if self.lease_lost:
            raise LeaseLost(self.job_id)
        if self.cancel_requested:
            raise JobCancelled("the job was cancelled")


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its supervisor dies, so no orphan keeps a job."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


_TERMINATION = {signal.SIGTERM, signal.SIGINT}


def run_one(db: Database, settings: Mapping[str, Any], owner: str) -> str | None:
    """Claim and run one job; returns its id, or None when the queue was empty.

    SIGTERM is held back from the claim until the job is inside the block that hands it back on shutdown,
    so a stop that arrives just after the claim never strands the job in ``running`` until its lease expires.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, _TERMINATION)
    try:
        with db.session() as session:
            job = queue.claim_next(session, owner, settings["JOB_LEASE_SECONDS"])
            if job is None:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _TERMINATION)
                return None
            job_id, kind, params, merchant_id = job.id, job.kind, dict(job.params), job.merchant_id
            begin_write(session)
            session.execute(update(WorkerHeartbeat).where(WorkerHeartbeat.id == owner).values(
                current_job_id=job_id, seen_at=utcnow()))
        log.info("job %s (%s) started by %s", job_id, kind, owner)
        job_kind = kind_for(kind)
        storage = make_storage(settings)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _TERMINATION)
        raise
    state, result, error = FAILED, None, None
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _TERMINATION)  # a pending stop is raised here, inside
        with _RunningJob(db, job_id, owner, settings) as running:
            if job_kind is None:
                raise MediaServiceError(f"no worker knows job kind {kind!r}", code="unknown_job_kind")
            context = JobContext(job_id=job_id, merchant_id=merchant_id, params=params,
                                 storage=storage, settings=settings,
                                 report_progress=running.report)
            with storage_full_as_error():
                result = job_kind.handler(context)
            state = SUCCEEDED
    except LeaseLost:
        log.warning("job %s: lease lost, outcome dropped", job_id)
        return job_id
    except (SystemExit, KeyboardInterrupt):
        # Graceful shutdown: hand the job back at once instead of waiting for the lease to expire.
        with db.session() as session:
            queue.release(session, job_id, owner)
        raise
    except JobCancelled:
        state, error = CANCELLED, {"code": "job_cancelled", "detail": "the job was cancelled"}
    except MediaServiceError as exc:
        error = {"code": exc.code, "detail": exc.detail, **_jsonable(exc.extra)}
    except Exception as exc:  # a bug in a job kind: record it, never lose it
        log.exception("job %s crashed", job_id)
        error = {"code": "internal_error", "detail": f"{type(exc).__name__}: {exc}",
                 "traceback": traceback.format_exc(limit=8)[-4000:]}
    with db.session() as session:
        finished = queue.finish(session, job_id, owner, state, result=result, error=error)
        session.execute(update(WorkerHeartbeat).where(WorkerHeartbeat.id == owner).values(current_job_id=None))
    for prefix in finished.orphaned:
        storage.delete_prefix(prefix)
    log.info("job %s %s%s%s", job_id, state, "" if finished.recorded else " (lease lost, not recorded)",
             " (its owner was deleted: outputs discarded)" if finished.orphaned else "")
    return job_id


def _jsonable(extra: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str | int | float | bool | list | dict | None) else str(v)
            for k, v in extra.items()}


def _exit_on_signal(_signum: int, _frame: object) -> None:
    raise SystemExit(0)  # unwinds the running job, which hands its lease back


#: Returns the job kinds a worker runs; a module-level function, because job processes are spawned and
#: receive it by reference (``media_service.features.job_kinds``).
JobKindsSource = Callable[[], Iterable[JobKind]]
#: A supervisor chore run every round beside re-queueing expired leases: ``chore(session, settings)``.
Chore = Callable[[Any, Mapping[str, Any]], Any]


def job_process_main(settings: dict[str, Any], owner: str, parent_pid: int, job_kinds: JobKindsSource) -> None:
    """Entry point of one job process."""
    _die_with_parent()
    signal.signal(signal.SIGTERM, _exit_on_signal)
    logging.basicConfig(level=settings["LOG_LEVEL"], format="%(asctime)s %(processName)s %(message)s")
    configure_image_limits(ingest_limits(settings))
    register_job_kinds(job_kinds())
    load_job_modules(settings["JOB_MODULES"])
    db = Database.from_settings(settings)
    with db.session(write=True) as session:
        session.merge(WorkerHeartbeat(id=owner, hostname=socket.gethostname(), pid=os.getpid(),
                                      started_at=utcnow(), seen_at=utcnow()))
    while os.getppid() == parent_pid:
        try:
            ran = run_one(db, settings, owner)
        except Exception:
            log.exception("worker %s: claim failed; retrying", owner)
            ran = None
        if ran is None:
            with db.session() as session:
                session.execute(update(WorkerHeartbeat).where(WorkerHeartbeat.id == owner).values(
                    seen_at=utcnow()))
            time.sleep(settings["JOB_POLL_SECONDS"])


def housekeeping(db: Database, settings: Mapping[str, Any], chores: Sequence[Chore] = ()) -> None:
    """One round of the supervisor's chores: expired leases, the features' own chores, old heartbeats.

    Webhooks are delivered by the ``OutboxDispatcher`` on its own threads, never here."""
    with db.session() as session:
        requeued = queue.reconcile_expired(session)
        if requeued:
            log.warning("re-queued or failed jobs with expired leases: %s", ", ".join(requeued))
    for chore in chores:
        with db.session() as session:
            chore(session, settings)
    with db.session() as session:
        session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.seen_at < utcnow() - timedelta(hours=1)))


def run_worker(settings: dict[str, Any], *, job_kinds: JobKindsSource, chores: Sequence[Chore] = (),
               concurrency: int | None = None, stop: threading.Event | None = None) -> None:
    """Run the supervisor until SIGTERM/SIGINT (or ``stop``): keeps ``concurrency`` job processes alive."""
    concurrency = concurrency or settings["WORKER_CONCURRENCY"]
    stop = stop or threading.Event()
    ctx = multiprocessing.get_context("spawn")
    db = Database.from_settings(settings)
    name = f"{socket.gethostname()}-{os.getpid()}"
    processes: dict[int, multiprocessing.process.BaseProcess] = {}

    def start(slot: int) -> None:
        process = ctx.Process(target=job_process_main, args=(settings, f"{name}-{slot}", os.getpid(), job_kinds),
                              name=f"job-process-{slot}", daemon=False)
        process.start()
        processes[slot] = process

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    for slot in range(concurrency):
        start(slot)
    outbox = OutboxDispatcher(db, settings).start()
    log.info("worker %s running %d job processes", name, concurrency)
    try:
        while not stop.is_set():
            for slot, process in list(processes.items()):
                if not process.is_alive():
                    log.warning("job process %s exited (%s); restarting", process.name, process.exitcode)
                    start(slot)
            try:
                housekeeping(db, settings, chores)
            except Exception:
                log.exception("housekeeping failed; retrying")
            stop.wait(min(1.0, settings["JOB_LEASE_SECONDS"] / 4))
    finally:
        outbox.stop(timeout=5)
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        db.dispose()
