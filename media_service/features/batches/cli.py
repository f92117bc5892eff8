"""``media-service batch videos``: a whole folder of videos through the job system, with a report."""

from __future__ import annotations

from pathlib import Path

import click

from media_service.commands import app_of, database_of, progress_bar, worker_pool, workers_alive
from media_service.db import upgrade
from media_service.errors import MediaServiceError
from media_service.features.batches.service import (
    batch_inputs,
    batch_merchant,
    new_batch,
    queue_file,
    summarize,
    wait_for_batch,
    write_report,
)


@click.group("batch")
def batch() -> None:
    """Batch processing of whole folders through the job system."""


@batch.command("videos")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--profile", type=click.Choice(["buyer_show", "promo", "homepage"]), default="buyer_show",
              show_default=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for report.csv, report.html and the posters.")
@click.option("--merchant", "merchant_id", default=None, help="Merchant id (default: the only merchant).")
@click.option("--workers", type=int, default=None,
              help="Start a local pool of N job processes for the batch (default: only if no worker is running; "
                   "0: never start one).")
@click.option("--retries", type=int, default=1, show_default=True, help="Retries of each failed video.")
@click.option("--stabilize", is_flag=True, help="Stabilise shaky video.")
@click.option("--blur-faces", is_flag=True, help="Blur faces.")
@click.option("--timeout", type=float, default=24 * 3600.0, show_default=True, help="Give up after this many s.")
@click.pass_context
def batch_videos(ctx: click.Context, source: Path, profile: str, out_dir: Path, merchant_id: str | None,
                 workers: int | None, retries: int, stabilize: bool, blur_faces: bool, timeout: float) -> None:
    """Process every video in SOURCE (a folder, or a text file listing paths) and write a report to --out.

    Content already processed the same way is skipped (by SHA-256), failures are retried, and the run
    ends with report.csv and report.html (posters, flags). Exit status 1 when any input failed.
    """
    app = app_of(ctx)
    upgrade(app.config["DATABASE_URL"])
    db, storage = database_of(app), app.extensions["storage"]
    try:
        with db.session() as session:
            merchant_id = batch_merchant(session, merchant_id)
        with db.session() as session:
            batch_id = new_batch(session, merchant_id=merchant_id, profile=profile,
                                 options={"stabilize": stabilize, "blur_faces": blur_faces}, source="cli").id
    except MediaServiceError as exc:
        raise click.ClickException(exc.detail) from exc
    paths = batch_inputs(source)
    if not paths:
        raise click.ClickException(f"no input files in {source}")
    if workers is None and workers_alive(app) == 0:
        workers = app.config["WORKER_CONCURRENCY"]
    elif not workers and workers_alive(app) == 0:
        click.echo("warning: no worker is running; start 'media-service worker' or pass --workers N", err=True)
    with worker_pool(workers or 0) as pool:
        if pool is not None:
            click.echo(f"started a local worker pool of {workers} job processes (pid {pool.pid})")
        with click.progressbar(paths, label="queueing", item_show_func=lambda p: p.name if p else "") as bar:
            for path in bar:
                queue_file(db, storage, app.config, batch_id, path)
        bar, update = progress_bar(f"processing ({profile})")
        with bar:
            statuses = wait_for_batch(db, batch_id, retries=retries, timeout=timeout, on_progress=update)
    csv_path, html_path = write_report(statuses, storage, out_dir, profile=profile,
                                       title=f"Batch {batch_id}: {profile} videos from {source}")
    summary = summarize(statuses)
    counts = ", ".join(f"{n} {state}" for state, n in summary["counts"].items() if n)
    click.echo(f"batch {batch_id}: {counts}; {summary['skipped']} skipped (already done)")
    click.echo(f"report: {csv_path}\n        {html_path}")
    if summary["counts"]["failed"] or summary["counts"]["refused"] or summary["counts"]["cancelled"] \
            or summary["state"] != "done":
        ctx.exit(1)


def register(main: click.Group) -> None:
    main.add_command(batch)
