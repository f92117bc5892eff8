"""Batches of videos: many inputs, one profile, through the job system; with a CSV and HTML report.

Used by ``POST /v1/batches`` (inputs are asset ids) and by ``media-service batch videos`` (inputs are
files, imported as assets first). Content already processed the same way is skipped (assets are
unique per merchant and SHA-256, videos per asset, profile and options); failed items are retried.
"""

from __future__ import annotations

import csv
import html
import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from media_service.db import Database, begin_write
from media_service.errors import BadRequest, MediaServiceError, NotFound
from media_service.features.assets.service import import_local_file
from media_service.features.videos.service import create_video, find_video
from media_service.jobs import queue
from media_service.jobs.resources import public_state
from media_service.media.video.presets import get_profile, parse_options
from media_service.models import Asset, Batch, BatchItem, Job, Merchant, Video
from media_service.security.api_keys import create_merchant
from media_service.storage import Storage, sha256_file

#: Item states that are final.
DONE_STATES = ("ready", "failed", "cancelled", "refused")


@dataclass(frozen=True)
class ItemStatus:
    """One batch item as the report shows it."""

    position: int
    input_name: str
    sha256: str | None
    asset_id: str | None
    video_id: str | None
    state: str  # queued | processing | ready | failed | cancelled | refused
    skipped: bool
    attempts: int
    error: dict[str, Any] | None
    video: Video | None
    job: Job | None


def new_batch(session: Session, *, merchant_id: str, profile: str, options: Mapping[str, Any] | None,
              source: str) -> Batch:
    batch = Batch(merchant_id=merchant_id, profile=get_profile(profile).name, options=parse_options(options),
                  source=source, total=0)
    session.add(batch)
    session.flush()
    return batch


def add_asset(session: Session, settings: Mapping[str, Any], batch: Batch, asset: Asset, *,
              input_name: str = "") -> BatchItem:
    """Add an asset to a batch: reuse a finished video of it, retry a failed one, or start a new one."""
    item = BatchItem(batch_id=batch.id, position=batch.total, input_name=input_name or asset.filename or asset.id,
                     sha256=asset.sha256, asset_id=asset.id)
    existing = find_video(session, batch.merchant_id, asset.id, batch.profile, batch.options)
    if existing is not None:
        job = session.get(Job, existing.job_id) if existing.job_id else None
        state = public_state(existing.state, job)
        item.video_id, item.skipped = existing.id, state == "ready"
        if state in ("failed", "cancelled") and job is not None:
            queue.retry(session, job.id, batch.merchant_id)
    else:
        video, _ = create_video(session, settings, merchant_id=batch.merchant_id, asset=asset,
                                profile_name=batch.profile, options=batch.options)
        item.video_id = video.id
    return _append(session, batch, item)


def add_refused(session: Session, batch: Batch, *, input_name: str, error: MediaServiceError,
                sha256: str | None = None) -> BatchItem:
    """Record an input that never became a video (not found, not a video, refused at validation)."""
    item = BatchItem(batch_id=batch.id, position=batch.total, input_name=input_name, sha256=sha256,
                     error={"code": error.code, "detail": error.detail, "status": error.status})
    return _append(session, batch, item)


def _append(session: Session, batch: Batch, item: BatchItem) -> BatchItem:
    begin_write(session)
    batch = session.merge(batch)
    batch.total += 1
    session.add(item)
    session.commit()
    return item


def create_api_batch(session: Session, settings: Mapping[str, Any], *, merchant_id: str, asset_ids: Sequence[str],
                     profile: str, options: Mapping[str, Any] | None) -> Batch:
    """A batch over a merchant's assets (unknown ids become refused items, not a failed request)."""
    batch = new_batch(session, merchant_id=merchant_id, profile=profile, options=options, source="api")
    session.commit()
    for asset_id in asset_ids:
        asset = session.scalar(select(Asset).where(Asset.id == asset_id, Asset.merchant_id == merchant_id))
        if asset is None:
            add_refused(session, batch, input_name=asset_id,
                        error=NotFound(f"no asset {asset_id!r}", code="asset_not_found"))
            continue
        try:
            add_asset(session, settings, batch, asset, input_name=asset_id)
        except MediaServiceError as exc:
            session.rollback()
            add_refused(session, batch, input_name=asset_id, error=exc, sha256=asset.sha256)
    return batch


def item_statuses(session: Session, batch: Batch) -> list[ItemStatus]:
    items = list(session.scalars(select(BatchItem).where(BatchItem.batch_id == batch.id)
                                 .order_by(BatchItem.position)))
    video_ids = [i.video_id for i in items if i.video_id]
    videos = {v.id: v for v in session.scalars(select(Video).where(Video.id.in_(video_ids)))} if video_ids else {}
    job_ids = [v.job_id for v in videos.values() if v.job_id]
    jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids)))} if job_ids else {}
    statuses = []
    for item in items:
        video = videos.get(item.video_id) if item.video_id else None
        job = jobs.get(video.job_id) if video is not None and video.job_id else None
        state = "refused" if video is None else public_state(video.state, job)
        error = item.error if video is None else (job.error if job is not None and state != "ready" else None)
        statuses.append(ItemStatus(position=item.position, input_name=item.input_name, sha256=item.sha256,
                                   asset_id=item.asset_id, video_id=item.video_id, state=state,
                                   skipped=item.skipped, attempts=job.attempts if job else 0, error=error,
                                   video=video, job=job))
    return statuses


def summarize(statuses: Sequence[ItemStatus]) -> dict[str, Any]:
    counts = Counter(s.state for s in statuses)
    done = all(s.state in DONE_STATES for s in statuses)
    progress = 0.0
    if statuses:
        progress = sum(100.0 if s.state in DONE_STATES else (s.job.progress if s.job else 0.0)
                       for s in statuses) / len(statuses)
    return {"state": "done" if done else "running", "total": len(statuses), "progress": round(progress, 1),
            "counts": {state: counts.get(state, 0) for state in ("queued", "processing", *DONE_STATES)},
            "skipped": sum(1 for s in statuses if s.skipped)}


def retry_failed(session: Session, batch: Batch) -> int:
    """Queue every failed or cancelled item's job again; returns how many."""
    retried = 0
    for status in item_statuses(session, batch):
        if status.state in ("failed", "cancelled") and status.job is not None:
            queue.retry(session, status.job.id, batch.merchant_id)
            retried += 1
    return retried


# ------------------------------------------------------------------------------------------------ report

REPORT_COLUMNS = ("position", "input", "sha256", "state", "skipped", "attempts", "asset_id", "video_id",
                  "profile", "duration", "width", "height", "renditions", "moderation", "flags", "poster", "error")


def write_report(statuses: Sequence[ItemStatus], storage: Storage, out_dir: Path, *, profile: str,
                 title: str) -> tuple[Path, Path]:
    """``report.csv`` and ``report.html`` (posters copied beside it) in ``out_dir``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    posters = out_dir / "posters"
    posters.mkdir(exist_ok=True)
    rows = []
    for status in statuses:
        video = status.video
        poster = ""
        if video is not None and video.state == "ready" and video.output_prefix:
            key = f"{video.output_prefix}/poster.jpg"
            if storage.exists(key):
                poster = f"posters/{video.id}.jpg"
                with storage.open(key) as src, (out_dir / poster).open("wb") as dst:
                    shutil.copyfileobj(src, dst)
        flags = video.flags if video is not None else []
        rows.append({
            "position": status.position + 1, "input": status.input_name, "sha256": status.sha256 or "",
            "state": status.state, "skipped": "yes" if status.skipped else "", "attempts": status.attempts,
            "asset_id": status.asset_id or "", "video_id": status.video_id or "", "profile": profile,
            "duration": f"{video.duration:.2f}" if video is not None and video.duration else "",
            "width": video.width if video is not None and video.width else "",
            "height": video.height if video is not None and video.height else "",
            "renditions": " ".join(f"{r['width']}x{r['height']}" for r in (video.outputs or {}).get("renditions", []))
            if video is not None else "",
            "moderation": video.moderation_status if video is not None and video.state == "ready" else "",
            "flags": "; ".join(f"{f['code']}: {f['detail']}" for f in flags or []),
            "poster": poster,
            "error": f"{status.error.get('code')}: {status.error.get('detail')}" if status.error else "",
        })
    csv_path = out_dir / "report.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    html_path = out_dir / "report.html"
    html_path.write_text(_html(rows, title, summarize(statuses)))
    return csv_path, html_path


def _html(rows: list[dict[str, Any]], title: str, summary: dict[str, Any]) -> str:
    esc = html.escape
    counts = ", ".join(f"{count} {state}" for state, count in summary["counts"].items() if count)
    body = []
    for row in rows:
        poster = f'<img src="{esc(row["poster"])}" alt="poster">' if row["poster"] else ""
        flags = "".join(f"<li>{esc(flag)}</li>" for flag in row["flags"].split("; ") if flag)
        body.append(
            f'<tr class="{esc(row["state"])}"><td>{row["position"]}</td><td>{poster}</td>'
            f'<td>{esc(row["input"])}<br><small>{esc(row["video_id"])}</small></td>'
            f'<td>{esc(row["state"])}{" (skipped: done before)" if row["skipped"] else ""}</td>'
            f'<td>{esc(str(row["duration"]))}</td><td>{esc(row["renditions"])}</td>'
            f'<td>{esc(row["moderation"])}</td><td><ul>{flags}</ul></td><td>{esc(row["error"])}</td></tr>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self'; style-src 'unsafe-inline'">
<style>
body{{font-family:system-ui,sans-serif;margin:1.5rem}} table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ddd;padding:.4rem;vertical-align:top;text-align:left}}
img{{max-width:160px;max-height:160px}} tr.failed,tr.refused{{background:#fee}} ul{{margin:0;padding-left:1rem}}
</style></head><body>
<h1>{esc(title)}</h1><p>{summary["total"]} inputs: {esc(counts)}; {summary["skipped"]} skipped (already done).</p>
<table><thead><tr><th>#</th><th>poster</th><th>input</th><th>state</th><th>seconds</th><th>renditions</th>
<th>moderation</th><th>flags</th><th>error</th></tr></thead><tbody>
{"".join(body)}
</tbody></table></body></html>
"""


def batch_to_dict(session: Session, batch: Batch) -> dict[str, Any]:
    statuses = item_statuses(session, batch)
    return {
        "id": batch.id, "profile": batch.profile, "options": batch.options, "source": batch.source,
        **summarize(statuses), "created_at": batch.created_at.isoformat(),
        "items": [{"position": s.position, "input": s.input_name, "asset_id": s.asset_id, "video_id": s.video_id,
                   "state": s.state, "skipped": s.skipped, "attempts": s.attempts,
                   "progress": s.job.progress if s.job is not None else None,
                   "moderation": s.video.moderation_status if s.video is not None and s.state == "ready" else None,
                   "flags": [f["code"] for f in (s.video.flags or [])] if s.video is not None else [],
                   "error": s.error} for s in statuses],
    }


# ------------------------------------------------------------------------------------- local folder runs


def batch_inputs(source: Path) -> list[Path]:
    """Files of a folder (recursively, sorted), or the paths listed in a text file (one per line, # comments)."""
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
    head = source.read_bytes()[:4096]
    if b"\x00" not in head and source.suffix.lower() in {".txt", ".list", ".lst", ""}:
        paths = []
        for line in source.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                paths.append(Path(line) if Path(line).is_absolute() else source.parent / line)
        return paths
    return [source]


def batch_merchant(session: Session, merchant_id: str | None) -> str:
    """The merchant a local batch runs for: the given one, the only one, or a new "Batch operator" merchant."""
    if merchant_id:
        if session.get(Merchant, merchant_id) is None:
            raise NotFound(f"no merchant {merchant_id}; see 'media-service merchants list'", code="merchant_not_found")
        return merchant_id
    ids = list(session.scalars(select(Merchant.id).limit(2)))
    if len(ids) == 1:
        return ids[0]
    if len(ids) > 1:
        raise BadRequest("several merchants exist: pass --merchant mer_...", code="merchant_required")
    merchant, _key = create_merchant(session, "Batch operator")
    return merchant.id


def queue_file(db: Database, storage: Storage, settings: Mapping[str, Any], batch_id: str, path: Path) -> None:
    """One local file into the batch: the merchant's existing asset with that content, or a new one; a file
    that cannot be read or is refused becomes a refused item (with the reason) instead of stopping the run."""
    name = str(path)
    with db.session() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        try:
            if not path.is_file():
                raise BadRequest(f"cannot read the file: {name} is not a file", code="unreadable_input")
            sha256 = sha256_file(path)
            asset = session.scalar(select(Asset).where(Asset.merchant_id == batch.merchant_id,
                                                       Asset.sha256 == sha256))
            if asset is None:
                asset, _created = import_local_file(session, storage, settings, merchant_id=batch.merchant_id,
                                                    path=path, source="batch", sha256=sha256)
            add_asset(session, settings, batch, asset, input_name=name)
        except MediaServiceError as exc:
            session.rollback()
            add_refused(session, session.get(Batch, batch_id), input_name=name, error=exc)
        except OSError as exc:
            session.rollback()
            add_refused(session, session.get(Batch, batch_id), input_name=name,
                        error=BadRequest(f"cannot read the file: {exc}", code="unreadable_input"))


def wait_for_batch(db: Database, batch_id: str, *, retries: int, timeout: float,
                   on_progress: Callable[[float], None] = lambda fraction: None,
                   poll_seconds: float = 0.5) -> list[ItemStatus]:
    """Wait until every item of the batch ended (or ``timeout``), retrying each failed video ``retries``
    times; returns the final statuses."""
    retried: dict[str, int] = {}
    deadline = time.monotonic() + timeout

    def retry_left(status: ItemStatus) -> bool:
        return status.state == "failed" and status.job is not None and retried.get(status.job.id, 0) < retries

    while True:
        with db.session() as session:
            batch = session.get(Batch, batch_id)
            assert batch is not None
            statuses = item_statuses(session, batch)
            for status in statuses:
                if retry_left(status):
                    assert status.job is not None
                    retried[status.job.id] = retried.get(status.job.id, 0) + 1
                    queue.retry(session, status.job.id, batch.merchant_id)
            summary = summarize(statuses)
        on_progress(summary["progress"])
        if (summary["state"] == "done" and not any(retry_left(s) for s in statuses)) \
                or time.monotonic() > deadline:
            break
        time.sleep(poll_seconds)
    with db.session() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        return item_statuses(session, batch)
