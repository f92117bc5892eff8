"""Job kinds, job states and the executor seam.

A job kind is a plain function ``handler(ctx) -> dict`` registered under a name; it reads its inputs
from storage keys in ``ctx.params`` and writes outputs under keys derived from the job, so a re-run
after a crash overwrites the same objects instead of adding new ones. The job table is the source of
truth; an executor only wakes workers up.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from media_service.storage import Storage

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from media_service.models import Job



class JobState(StrEnum):
    """Where a job is; stored as its value. A job reaches a finished state once."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = JobState
STATES = tuple(JobState)
FINISHED_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass
class JobContext:
    """What a running job sees: its parameters, storage, settings and a way to report progress."""

    job_id: str
    merchant_id: str | None
    params: dict[str, Any]
    storage: Storage
    settings: Mapping[str, Any]
    report_progress: Callable[[float], None] = field(default=lambda fraction: None)

    def progress(self, fraction: float) -> None:
        """Report progress in 0..1; raises ``JobCancelled`` when the job was cancelled meanwhile."""
        self.report_progress(min(max(fraction, 0.0), 1.0))

    def output_key(self, name: str) -> str:
        """A storage key owned by this job: the same on every attempt, so re-runs overwrite."""
        return f"{job_output_root(self.merchant_id, self.job_id)}/{name}"


def job_output_root(merchant_id: str | None, job_id: str) -> str:
    """The storage prefix under which a job writes its outputs (``JobContext.output_key``)."""
    return f"jobs/{merchant_id or 'system'}/{job_id}"


JobHandler = Callable[[JobContext], dict[str, Any]]
# Runs in the transaction that marks the job succeeded: records outputs on the owning rows. When the row
# that would own them was deleted while the job ran, it returns the storage prefixes of those outputs,
# which the worker deletes once the job is recorded (nothing is left behind that nothing points to).
SuccessHook = Callable[["Session", "Job"], Sequence[str]]


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: JobHandler
    on_success: SuccessHook | None = None


_REGISTRY: dict[str, JobKind] = {}


def register_job_kinds(kinds: Iterable[JobKind]) -> None:
    """Make job kinds known to this process (the features' kinds, from ``media_service.features``)."""
    for kind in kinds:
        _REGISTRY[kind.name] = kind


def job_kind(name: str, *, on_success: SuccessHook | None = None) -> Callable[[JobHandler], JobHandler]:
    """Register ``handler`` as job kind ``name``: for extra modules named in the ``JOB_MODULES`` setting."""

    def decorator(handler: JobHandler) -> JobHandler:
        _REGISTRY[name] = JobKind(name, handler, on_success)
        return handler

    return decorator


def load_job_modules(modules: Iterable[str] = ()) -> dict[str, JobKind]:
    """Import the extra modules named in ``JOB_MODULES`` (they register with ``@job_kind``); the registry."""
    for module in modules:
        importlib.import_module(module)
    return dict(_REGISTRY)


def kind_for(name: str) -> JobKind | None:
    return _REGISTRY.get(name)


class Executor(ABC):
    """Wakes workers for queued jobs. The job row is written before ``submit`` is called."""

    @abstractmethod
    def submit(self, job_id: str) -> None: ...


class LocalExecutor(Executor):
    """Local worker processes poll the job table, so submitting needs no message at all."""

    def submit(self, job_id: str) -> None:
        return None


_executor: Executor = LocalExecutor()


def set_executor(executor: Executor) -> None:
    """Choose how workers are woken; ``enqueue`` hands every committed job to it."""
    global _executor
    _executor = executor


def current_executor() -> Executor:
    return _executor
