"""``panoramas.stitch``: photos (storage keys) in; panorama, preview, tiles and viewer manifest out.

The handler is a thin shell around :func:`media_service.media.panorama.build.build_panorama`: it makes the
photos local files, writes the outputs to a staging folder and publishes them under keys owned by the
job (a re-run overwrites the same objects), the manifest last. The panorama row is updated in the
transaction that marks the job succeeded.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from media_service import media_options
from media_service.jobs.base import JobContext, JobKind
from media_service.jobs.resources import record_result
from media_service.media.panorama.build import build_panorama, panorama_options
from media_service.media.panorama.errors import StitchingError
from media_service.media.panorama.stitcher import Photo
from media_service.models import Job, Panorama
from media_service.storage import Storage

MANIFEST = "manifest.json"


def publish_folder(storage: Storage, folder: Path, prefix: str) -> list[str]:
    """Store every file under ``folder`` at ``prefix/<relative path>``, the manifest last (it points at the rest)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name == MANIFEST)
    keys = []
    for path in files:
        key = f"{prefix}/{path.relative_to(folder).as_posix()}"
        storage.put_file(key, path, move=True)
        keys.append(key)
    return keys


def local_input(stack: ExitStack, storage: Storage, item: Mapping[str, Any]) -> Path:
    """A job input as a local file; an asset deleted since the request is a clear error, not a crash."""
    try:
        return stack.enter_context(storage.local_path(item["key"]))
    except FileNotFoundError as exc:
        raise StitchingError(f"asset {item.get('asset_id')} ({item.get('name') or 'no name'}) was deleted after the "
                             "request was made; upload it again and make a new request", code="asset_missing") from exc


def _record_panorama(session: Session, job: Job) -> list[str]:
    return record_result(session, session.get(Panorama, job.params["panorama_id"]), job)


def stitch_panorama(ctx: JobContext) -> dict[str, Any]:
    params = ctx.params
    limits = media_options.panorama_limits(ctx.settings)
    options = panorama_options(params.get("options"), limits)
    prefix = ctx.output_key("panorama")
    with ExitStack() as stack:
        photos = [Photo(local_input(stack, ctx.storage, photo), photo.get("name", "")) for photo in params["photos"]]
        staging = stack.enter_context(ctx.storage.staging_dir())
        out_dir = staging / "out"
        out_dir.mkdir()
        summary = build_panorama(photos, out_dir, limits, options, lambda f: ctx.progress(0.95 * f))
        publish_folder(ctx.storage, out_dir, prefix)
    return {"panorama_id": params["panorama_id"], "prefix": prefix, **summary}


STITCH_JOB = JobKind("panoramas.stitch", stitch_panorama, on_success=_record_panorama)
