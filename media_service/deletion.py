"""Deleting what a merchant owns: the row, the work still in flight for it and every file made for it.

A queued job is cancelled at once; a running one is asked to stop, and should it finish anyway its success
hook finds its row gone and hands the outputs back for deletion (``jobs.base.SuccessHook``). So a deleted
buyer-show video, panorama or spin leaves no file behind that nothing points to.

Deleting an asset also deletes what was made of it alone. Features say what that is by registering an
``@asset_dependents`` function (videos and their renditions, video indexes and tap cut-outs); derived works
that stand on their own (a panorama stitched from several photos, a spin) are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from media_service.assets import asset_prefix
from media_service.db import begin_write
from media_service.jobs.base import job_output_root
from media_service.jobs.queue import stop_jobs
from media_service.models import Asset, Base, Panorama, Spin
from media_service.storage import Storage


@dataclass
class Dependents:
    """What hangs on an asset: jobs to stop and storage prefixes to delete (rows go by foreign-key cascade)."""

    job_ids: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)


DependentsFinder = Callable[[Session, Asset], Dependents]
_FINDERS: list[DependentsFinder] = []


def asset_dependents(finder: DependentsFinder) -> DependentsFinder:
    """Register a function telling what of a feature's own belongs to an asset being deleted."""
    _FINDERS.append(finder)
    return finder


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


def delete_job_result(session: Session, storage: Storage, row: Panorama | Spin) -> None:
    """Delete a row whose files are exactly what its job made (a panorama, a spin)."""
    delete_with_files(session, storage, [row], job_ids=[row.job_id],
                      prefixes=[job_output_root(row.merchant_id, row.job_id)])


def delete_asset(session: Session, storage: Storage, asset: Asset) -> None:
    """Delete an asset with its files and everything made of it alone."""
    found = Dependents(prefixes=[asset_prefix(asset.merchant_id, asset.id)])
    for finder in _FINDERS:
        more = finder(session, asset)
        found.job_ids += more.job_ids
        found.prefixes += more.prefixes
    delete_with_files(session, storage, [asset], job_ids=found.job_ids, prefixes=found.prefixes)
