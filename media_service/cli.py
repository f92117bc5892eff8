"""The ``media-service`` command line: serve, worker, database, merchants, jobs, assets and doctor."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import Flask
from sqlalchemy import select

from media_service.db import Database, upgrade


def _app(ctx: click.Context) -> Flask:
    if ctx.obj is None:
        from media_service import create_app
        from media_service.errors import ConfigError

        try:
            ctx.obj = create_app()
        except ConfigError as exc:
            raise click.ClickException(exc.detail) from exc
    return ctx.obj


def _db(app: Flask) -> Database:
    return app.extensions["database"]


@click.group(help="media-service: rich product media for online merchants.")
@click.version_option(package_name="media-service")
def main() -> None:
    pass


def register_cli(app: Flask) -> None:
    """Expose the same commands as ``flask --app media_service ...`` for developers used to it."""
    for command in main.commands.values():
        app.cli.add_command(command)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--processes", default=2, show_default=True, help="HTTP worker processes.")
@click.option("--threads", default=8, show_default=True, help="Threads per HTTP process (slow uploads).")
@click.option("--worker/--no-worker", default=None, help="Also run a local job worker (default: setting).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, processes: int, threads: int, worker: bool | None) -> None:
    """Run the HTTP service (gunicorn) and, by default, a local job worker beside it."""
    from gunicorn.app.base import BaseApplication

    app = _app(ctx)
    upgrade(app.config["DATABASE_URL"])
    run_worker = app.config["RUN_LOCAL_WORKER"] if worker is None else worker
    worker_process = None
    if run_worker:
        worker_process = subprocess.Popen([sys.executable, "-m", "media_service", "worker"])

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", processes)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("timeout", 120)
            self.cfg.set("accesslog", "-")
            self.cfg.set("control_socket_disable", True)  # several instances may run side by side

        def load(self) -> Flask:
            return app

    click.echo(f"media-service on http://{host}:{port} (data in {app.config['DATA_DIR']})"
               + (" with a local job worker" if run_worker else ""))
    try:
        Server().run()
    finally:
        if worker_process is not None:
            worker_process.send_signal(signal.SIGTERM)
            try:
                worker_process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker_process.kill()


@main.command()
@click.option("--concurrency", type=int, default=None, help="Job processes (default: WORKER_CONCURRENCY).")
@click.pass_context
def worker(ctx: click.Context, concurrency: int | None) -> None:
    """Run a job worker until SIGTERM/Ctrl-C."""
    from media_service.jobs.worker import run_worker

    app = _app(ctx)
    upgrade(app.config["DATABASE_URL"])
    run_worker(dict(app.config), concurrency=concurrency)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate the database schema to the newest version."""
    app = _app(ctx.find_root())
    upgrade(app.config["DATABASE_URL"])
    click.echo(f"database ready: {app.config['DATABASE_URL']}")


@main.group()
def merchants() -> None:
    """Merchants and their API keys."""


@merchants.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def merchants_create(ctx: click.Context, name: str, as_json: bool) -> None:
    """Create a merchant and print its API key (shown only this once)."""
    from media_service.auth import create_merchant

    app = _app(ctx.find_root())
    with _db(app).session() as session:
        merchant, key = create_merchant(session, name)
        merchant_id = merchant.id
    if as_json:
        click.echo(json.dumps({"merchant_id": merchant_id, "name": name, "api_key": key}))
    else:
        click.echo(f"merchant {merchant_id} ({name})\nAPI key (shown once, keep it safe): {key}")


@merchants.command("list")
@click.pass_context
def merchants_list(ctx: click.Context) -> None:
    from media_service.models import Merchant

    app = _app(ctx.find_root())
    with _db(app).session() as session:
        for merchant in session.scalars(select(Merchant).order_by(Merchant.created_at)):
            click.echo(f"{merchant.id}\t{merchant.name}\t{merchant.created_at:%Y-%m-%d %H:%M}")


@main.group()
def jobs() -> None:
    """Inspect and steer jobs."""


@jobs.command("list")
@click.option("--state", default=None)
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def jobs_list(ctx: click.Context, state: str | None, limit: int) -> None:
    from media_service.models import Job

    app = _app(ctx.find_root())
    with _db(app).session() as session:
        query = select(Job).order_by(Job.created_at.desc()).limit(limit)
        if state:
            query = query.where(Job.state == state)
        for job in session.scalars(query):
            click.echo(f"{job.id}\t{job.kind}\t{job.state}\t{job.progress:.0f}%\tattempts={job.attempts}")


@jobs.command("show")
@click.argument("job_id")
@click.pass_context
def jobs_show(ctx: click.Context, job_id: str) -> None:
    from media_service.jobs.queue import get_job, job_to_dict

    app = _app(ctx.find_root())
    with _db(app).session() as session:
        click.echo(json.dumps(job_to_dict(get_job(session, job_id, None)), indent=2))


@jobs.command("cancel")
@click.argument("job_id")
@click.pass_context
def jobs_cancel(ctx: click.Context, job_id: str) -> None:
    from media_service.jobs.queue import cancel

    app = _app(ctx.find_root())
    with _db(app).session() as session:
        click.echo(f"{job_id}: {cancel(session, job_id, None).state}")


@jobs.command("retry")
@click.argument("job_id")
@click.pass_context
def jobs_retry(ctx: click.Context, job_id: str) -> None:
    from media_service.jobs.queue import retry

    app = _app(ctx.find_root())
    with _db(app).session() as session:
        click.echo(f"{job_id}: {retry(session, job_id, None).state}")


@jobs.command("wait")
@click.argument("job_id")
@click.option("--timeout", default=3600.0, show_default=True)
@click.pass_context
def jobs_wait(ctx: click.Context, job_id: str, timeout: float) -> None:
    """Show a progress bar until the job ends; exit 1 unless it succeeded."""
    from media_service.jobs.base import FINISHED_STATES
    from media_service.jobs.queue import get_job

    app = _app(ctx.find_root())
    deadline = time.monotonic() + timeout
    interactive = sys.stdout.isatty()
    last: tuple[str, int] | None = None
    with click.progressbar(length=100, label=job_id, file=None if interactive else open(os.devnull, "w")) as bar:
        while True:
            with _db(app).session() as session:
                job = get_job(session, job_id, None)
                state, progress, error = job.state, int(job.progress), job.error
            if interactive:
                bar.update(max(0, progress - bar.pos))
            elif (state, progress) != last:
                click.echo(f"{job_id}: {state} {progress}%")  # a log-friendly progress line
            last = (state, progress)
            if state in FINISHED_STATES or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    click.echo(f"{job_id}: {state}" + (f" ({error.get('detail')})" if error else ""))
    if state != "succeeded":
        ctx.exit(1)


@main.group()
def assets() -> None:
    """Assets of a merchant."""


@assets.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--merchant", "merchant_id", required=True, help="Merchant id (mer_...).")
@click.pass_context
def assets_import(ctx: click.Context, paths: tuple[Path, ...], merchant_id: str) -> None:
    """Validate and store local files as assets of a merchant (same checks as the upload API)."""
    import tempfile

    from media_service.assets import accept_file
    from media_service.errors import MediaServiceError
    from media_service.storage import sha256_file

    app = _app(ctx.find_root())
    failures = 0
    with click.progressbar(paths, label="importing", item_show_func=lambda p: p.name if p else "") as bar:
        for path in bar:
            with tempfile.TemporaryDirectory(dir=Path(app.config["DATA_DIR"])) as tmp:
                copy = Path(tmp) / "import"
                shutil.copyfile(path, copy)
                try:
                    with _db(app).session() as session:
                        asset, created = accept_file(session, app.extensions["storage"], app.config,
                                                     merchant_id=merchant_id, path=copy, sha256=sha256_file(copy),
                                                     filename=path.name, source="cli")
                        click.echo(f"\n{path}: {asset.id} ({'new' if created else 'already there'})")
                except MediaServiceError as exc:
                    failures += 1
                    click.echo(f"\n{path}: refused ({exc.code}): {exc.detail}", err=True)
    if failures:
        ctx.exit(1)


@main.command("config")
def config_list() -> None:
    """List every setting with its environment variable, default and meaning."""
    from media_service.config import describe_settings

    for item in describe_settings():
        click.echo(f"{item['env']} (default {item['default']!r})\n    {item['description']}")


@main.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check what this machine offers: ffmpeg, encoders, torch and CUDA, models, storage, database."""
    from media_service.video.ffmpeg import ffmpeg_encoders, ffmpeg_version

    app = _app(ctx)
    problems = 0

    def report(name: str, ok: bool, detail: str, required: bool = True) -> None:
        nonlocal problems
        mark = "ok  " if ok else ("FAIL" if required else "warn")
        problems += (not ok) and required
        click.echo(f"[{mark}] {name}: {detail}")

    version = ffmpeg_version(app.config["FFMPEG_BINARY"])
    report("ffmpeg", version is not None, version or "not found; install it (Debian: apt-get install ffmpeg)")
    if version:
        encoders = ffmpeg_encoders(app.config["FFMPEG_BINARY"])
        wanted = ["libx264", "aac", "libvpx-vp9", "libwebp", "mjpeg", "h264_nvenc"]
        report("encoders", {"libx264", "aac"} <= encoders,
               ", ".join(f"{e}={'yes' if e in encoders else 'no'}" for e in wanted))
    report("ffprobe", shutil.which(app.config["FFPROBE_BINARY"]) is not None, app.config["FFPROBE_BINARY"])
    if importlib.util.find_spec("torch") is not None:
        import torch

        cuda = torch.cuda.is_available()
        device = f"CUDA available: {torch.cuda.get_device_name(0)}" if cuda else "no CUDA (CPU inference)"
        report("torch", True, f"{torch.__version__}, {device}", required=False)
    else:
        report("torch", False, "not installed (needed only for the torchvision detector)", required=False)
    from media_service.model_files import check_manifest

    for line, ok in check_manifest():
        report("models", ok, line, required=False)
    try:
        app.extensions["storage"].check_writable()
        report("storage", True, f"{app.config['STORAGE_BACKEND']} at {app.config['STORAGE_ROOT']} is writable")
    except OSError as exc:
        report("storage", False, str(exc))
    try:
        _db(app).ping()
        report("database", True, app.config["DATABASE_URL"])
    except Exception as exc:
        report("database", False, f"{app.config['DATABASE_URL']}: {exc}")
    free = shutil.disk_usage(app.config["DATA_DIR"]).free
    report("disk", free > 1 << 30, f"{free / (1 << 30):.1f} GiB free in {app.config['DATA_DIR']}")
    click.echo(f"cpu cores: {os.cpu_count()}")
    if problems:
        ctx.exit(1)


def run() -> Any:
    return main(prog_name="media-service")


# ------------------------------------------------------------------------------------------------ videos


def _batch_merchant(app: Flask, merchant_id: str | None) -> str:
    """The merchant a batch runs for: the given one, the only one, or a new "Batch operator" merchant."""
    from media_service.auth import create_merchant
    from media_service.models import Merchant

    with _db(app).session() as session:
        if merchant_id:
            if session.get(Merchant, merchant_id) is None:
                raise click.ClickException(f"no merchant {merchant_id}; see 'media-service merchants list'")
            return merchant_id
        ids = list(session.scalars(select(Merchant.id).limit(2)))
        if len(ids) == 1:
            return ids[0]
        if len(ids) > 1:
            raise click.ClickException("several merchants exist: pass --merchant mer_...")
        merchant, _key = create_merchant(session, "Batch operator")
        return merchant.id


def _batch_inputs(source: Path) -> list[Path]:
    """Files of a folder (recursively, sorted), or the paths listed in a text file (one per line, # comments)."""
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
    head = source.read_bytes()[:4096]
    if b"\x00" not in head and source.suffix.lower() in {".txt", ".list", ".lst", ""}:
        paths = []
        for line in source.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                path = Path(line) if Path(line).is_absolute() else source.parent / line
                paths.append(path)
        return paths
    return [source]


def _alive_workers(app: Flask) -> int:
    from datetime import timedelta

    from sqlalchemy import func

    from media_service.models import WorkerHeartbeat, utcnow

    with _db(app).session() as session:
        since = utcnow() - timedelta(seconds=max(10.0, 4 * app.config["JOB_POLL_SECONDS"]))
        return session.scalar(select(func.count()).select_from(WorkerHeartbeat)
                              .where(WorkerHeartbeat.seen_at >= since)) or 0


@main.group()
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
    import tempfile

    from media_service.assets import accept_file
    from media_service.batch import add_asset, add_refused, item_statuses, new_batch, summarize, write_report
    from media_service.errors import MediaServiceError
    from media_service.jobs import queue
    from media_service.models import Asset, Batch
    from media_service.storage import sha256_file

    app = _app(ctx.find_root())
    upgrade(app.config["DATABASE_URL"])
    merchant_id = _batch_merchant(app, merchant_id)
    paths = _batch_inputs(source)
    if not paths:
        raise click.ClickException(f"no input files in {source}")
    options = {"stabilize": stabilize, "blur_faces": blur_faces}
    pool = None
    if workers is None and _alive_workers(app) == 0:
        workers = app.config["WORKER_CONCURRENCY"]
    if workers:
        pool = subprocess.Popen([sys.executable, "-m", "media_service", "worker", "--concurrency", str(workers)],
                                start_new_session=True)
        click.echo(f"started a local worker pool of {workers} job processes (pid {pool.pid})")
    elif _alive_workers(app) == 0:
        click.echo("warning: no worker is running; start 'media-service worker' or pass --workers N", err=True)
    storage = app.extensions["storage"]
    try:
        with _db(app).session() as session:
            batch_row = new_batch(session, merchant_id=merchant_id, profile=profile, options=options, source="cli")
            batch_id = batch_row.id
        with click.progressbar(paths, label="queueing", item_show_func=lambda p: p.name if p else "") as bar:
            for path in bar:
                name = str(path)
                with _db(app).session() as session:
                    batch_row = session.get(Batch, batch_id)
                    try:
                        if not path.is_file():
                            raise click.FileError(name, "not a file")
                        sha256 = sha256_file(path)
                        asset = session.scalar(select(Asset).where(Asset.merchant_id == merchant_id,
                                                                   Asset.sha256 == sha256))
                        if asset is None:
                            with tempfile.TemporaryDirectory(dir=Path(app.config["DATA_DIR"])) as tmp:
                                copy = Path(tmp) / "import"
                                shutil.copyfile(path, copy)
                                asset, _created = accept_file(session, storage, app.config, merchant_id=merchant_id,
                                                              path=copy, sha256=sha256, filename=path.name,
                                                              source="batch")
                        add_asset(session, app.config, batch_row, asset, input_name=name)
                    except MediaServiceError as exc:
                        session.rollback()
                        add_refused(session, session.get(Batch, batch_id), input_name=name, error=exc)
                    except (OSError, click.FileError) as exc:
                        session.rollback()
                        from media_service.errors import BadRequest

                        add_refused(session, session.get(Batch, batch_id), input_name=name,
                                    error=BadRequest(f"cannot read the file: {exc}", code="unreadable_input"))
        retried: dict[str, int] = {}
        deadline = time.monotonic() + timeout
        with click.progressbar(length=len(paths) * 100, label=f"processing ({profile})") as bar:
            while True:
                with _db(app).session() as session:
                    statuses = item_statuses(session, session.get(Batch, batch_id))
                    for status in statuses:
                        if status.state == "failed" and status.job is not None \
                                and retried.get(status.job.id, 0) < retries:
                            retried[status.job.id] = retried.get(status.job.id, 0) + 1
                            queue.retry(session, status.job.id, merchant_id)
                    summary = summarize(statuses)
                bar.update(int(summary["progress"] * len(paths)) - bar.pos)
                if (summary["state"] == "done" and not any(
                        s.state == "failed" and s.job is not None and retried.get(s.job.id, 0) < retries
                        for s in statuses)) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        with _db(app).session() as session:
            statuses = item_statuses(session, session.get(Batch, batch_id))
            csv_path, html_path = write_report(statuses, storage, out_dir, profile=profile,
                                               title=f"Batch {batch_id}: {profile} videos from {source}")
            summary = summarize(statuses)
    finally:
        if pool is not None:
            pool.send_signal(signal.SIGTERM)
            try:
                pool.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pool.kill()
    counts = ", ".join(f"{n} {state}" for state, n in summary["counts"].items() if n)
    click.echo(f"batch {batch_id}: {counts}; {summary['skipped']} skipped (already done)")
    click.echo(f"report: {csv_path}\n        {html_path}")
    if summary["counts"]["failed"] or summary["counts"]["refused"] or summary["counts"]["cancelled"] \
            or summary["state"] != "done":
        ctx.exit(1)


@assets.command("delete")
@click.argument("asset_id")
@click.pass_context
def assets_delete(ctx: click.Context, asset_id: str) -> None:
    """Delete an asset, its files and what was made of it alone (videos, video indexes, tap cut-outs)."""
    from media_service.deletion import delete_asset
    from media_service.models import Asset

    _delete_row(ctx, Asset, asset_id, delete_asset)


def _delete_row(ctx: click.Context, model: type[Any], row_id: str, delete: Callable[..., None]) -> None:
    """Find a row by id (any merchant: this is the operator's tool) and delete it with ``delete``."""
    app = _app(ctx.find_root())
    with _db(app).session() as session:
        row = session.get(model, row_id)
        if row is None:
            raise click.ClickException(f"no {model.__tablename__.removesuffix('s')} {row_id}")
        delete(session, app.extensions["storage"], row)
    click.echo(f"{row_id}: deleted")


@main.group()
def videos() -> None:
    """Processed videos: list, show, approve, reject, delete."""


@videos.command("list")
@click.option("--merchant", "merchant_id", default=None)
@click.option("--moderation", type=click.Choice(["pending", "approved", "rejected"]), default=None)
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def videos_list(ctx: click.Context, merchant_id: str | None, moderation: str | None, limit: int) -> None:
    from media_service.models import Job, Video
    from media_service.pipelines.video_records import video_state

    app = _app(ctx.find_root())
    with _db(app).session() as session:
        query = select(Video).order_by(Video.created_at.desc()).limit(limit)
        if merchant_id:
            query = query.where(Video.merchant_id == merchant_id)
        if moderation:
            query = query.where(Video.moderation_status == moderation)
        for video in session.scalars(query):
            job = session.get(Job, video.job_id) if video.job_id else None
            flags = ",".join(f["code"] for f in video.flags or []) or "-"
            click.echo(f"{video.id}\t{video.profile}\t{video_state(video, job)}\t{video.moderation_status}\t"
                       f"{flags}\t{video.asset_id}")


@videos.command("show")
@click.argument("video_id")
@click.pass_context
def videos_show(ctx: click.Context, video_id: str) -> None:
    """The video as the API shows it (URLs signed with PUBLIC_URL, or http://localhost:8000)."""
    from media_service.models import Job, Video
    from media_service.pipelines.video_records import video_to_dict

    app = _app(ctx.find_root())
    with _db(app).session() as session:
        video = session.get(Video, video_id)
        if video is None:
            raise click.ClickException(f"no video {video_id}")
        job = session.get(Job, video.job_id) if video.job_id else None
        config = app.config
        body = video_to_dict(video, job, secret=config["SECRET_KEY"],
                             base_url=config["PUBLIC_URL"] or "http://localhost:8000",
                             public_seconds=config["SIGNED_URL_SECONDS"],
                             review_seconds=config["VIDEO_REVIEW_URL_SECONDS"])
    click.echo(json.dumps(body, indent=2))


def _moderate_cli(ctx: click.Context, video_id: str, decision: str, reason: str | None) -> None:
    from media_service.errors import MediaServiceError
    from media_service.models import Video
    from media_service.pipelines.video_records import moderate

    app = _app(ctx.find_root())
    with _db(app).session() as session:
        video = session.get(Video, video_id)
        if video is None:
            raise click.ClickException(f"no video {video_id}")
        try:
            moderate(session, video, decision, reason, by="cli")
        except MediaServiceError as exc:
            raise click.ClickException(exc.detail) from exc
        click.echo(f"{video_id}: {video.moderation_status}")


@videos.command("approve")
@click.argument("video_id")
@click.pass_context
def videos_approve(ctx: click.Context, video_id: str) -> None:
    _moderate_cli(ctx, video_id, "approve", None)


@videos.command("reject")
@click.argument("video_id")
@click.option("--reason", default=None)
@click.pass_context
def videos_reject(ctx: click.Context, video_id: str, reason: str | None) -> None:
    _moderate_cli(ctx, video_id, "reject", reason)


@videos.command("delete")
@click.argument("video_id")
@click.pass_context
def videos_delete(ctx: click.Context, video_id: str) -> None:
    """Delete a video and its outputs (its job is cancelled if still running); the asset stays."""
    from media_service.models import Video
    from media_service.pipelines.video_records import delete_video

    _delete_row(ctx, Video, video_id, delete_video)


# --- Panoramas and spins ------------------------------------------------------------------------------


def _progress_bar(label: str) -> tuple[Any, Any]:
    """A click progress bar (0-100) and a callback taking a fraction; silent when not on a terminal."""
    bar = click.progressbar(length=100, label=label, hidden=not sys.stdout.isatty())
    state = {"shown": 0}

    def update(fraction: float) -> None:
        target = int(min(max(fraction, 0.0), 1.0) * 100)
        if target > state["shown"]:
            bar.update(target - state["shown"])
            state["shown"] = target

    return bar, update


@main.group()
def panoramas() -> None:
    """360-degree panoramas from overlapping photos."""


@panoramas.command("stitch")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for panorama.jpg, preview.jpg, tiles/ and manifest.json.")
@click.option("--projection", type=click.Choice(["auto", "spherical", "cylindrical", "flat"]), default="auto",
              show_default=True, help="'flat' for shelves, posters and other flat subjects.")
@click.option("--detector", type=click.Choice(["auto", "sift", "orb"]), default="auto", show_default=True)
@click.option("--crop/--no-crop", default=True, show_default=True, help="Crop to the fully covered rectangle.")
@click.option("--max-megapixels", type=float, default=None, help="Cap on the output size (default: setting).")
@click.pass_context
def panoramas_stitch(ctx: click.Context, files: tuple[Path, ...], out_dir: Path, projection: str, detector: str,
                     crop: bool, max_megapixels: float | None) -> None:
    """Stitch FILES (two or more overlapping photos, any order) into a panorama in --out."""
    from media_service.errors import MediaServiceError
    from media_service.panorama.build import build_panorama, panorama_options
    from media_service.panorama.stitcher import Photo

    settings = _app(ctx.find_root()).config
    raw: dict[str, Any] = {"projection": projection, "detector": detector, "crop": crop}
    if max_megapixels is not None:
        raw["max_output_megapixels"] = max_megapixels
    try:
        options = panorama_options(raw, settings)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    bar, update = _progress_bar("stitching")
    try:
        with bar:
            summary = build_panorama([Photo(path, path.name) for path in files], out_dir, settings, options, update)
    except MediaServiceError as exc:
        diagnostics = exc.extra.get("diagnostics") or {}
        for photo in diagnostics.get("photos", []):
            if photo.get("message"):
                click.echo(photo["message"], err=True)
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc
    fov = summary["field_of_view"]
    coverage = (f", {fov['horizontal']:.1f} x {fov['vertical']:.1f} degrees" if fov["horizontal"] else "")
    click.echo(f"\n{out_dir / 'panorama.jpg'}: {summary['width']}x{summary['height']} {summary['projection']}"
               f"{coverage}\n{summary['diagnostics']['summary']}")


@main.group()
def spins() -> None:
    """360-degree product spins from turntable photos or a turntable video."""


@spins.command("build")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--video", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A turntable video instead of photos.")
@click.option("--frames", type=click.Choice(["24", "36", "72"]), default=None,
              help="Frames in the spin (video default 36; photo sets default: every photo).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for frames/, sprite.jpg and manifest.json.")
@click.option("--clean-background", is_flag=True, help="Put the product on a plain background.")
@click.option("--background-color", default="#ffffff", show_default=True)
@click.pass_context
def spins_build(ctx: click.Context, files: tuple[Path, ...], video: Path | None, frames: str | None, out_dir: Path,
                clean_background: bool, background_color: str) -> None:
    """Build a spin from FILES (turntable photos, ordered by capture time or name) or from --video."""
    from media_service.errors import MediaServiceError
    from media_service.panorama.build import build_spin_from_photos, build_spin_from_video, spin_options
    from media_service.panorama.spin import SpinPhoto

    if bool(files) == (video is not None):
        raise click.UsageError("give either photo FILES or --video FILE")
    settings = _app(ctx.find_root()).config
    count = int(frames) if frames else (36 if video else None)
    try:
        options = spin_options(count, {"clean_background": clean_background, "background_color": background_color},
                               settings)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    bar, update = _progress_bar("building spin")
    try:
        with bar:
            if video is not None:
                manifest = build_spin_from_video(video, out_dir, settings, options, update)
            else:
                manifest = build_spin_from_photos([SpinPhoto(path, path.name) for path in files], out_dir, settings,
                                                  options, update)
    except MediaServiceError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc
    revolution = manifest.get("revolution")
    found = (f"; one turn = {revolution['period_frames']} video frames ({revolution['seconds']} s)"
             if revolution else f"; ordered by {manifest.get('ordered_by')}")
    click.echo(f"\n{out_dir / 'manifest.json'}: {manifest['frame_count']} frames{found}")


# --- Products and one-tap extraction (issue 5) -----------------------------------------------------


def _product_photos(folder: Path, value: str) -> list[Path]:
    """Photo paths of a CSV cell: separated by '|', relative to the CSV's folder."""
    paths = []
    for part in value.split("|"):
        part = part.strip()
        if part:
            path = Path(part)
            paths.append(path if path.is_absolute() else folder / path)
    return paths


def _product_rows(source: Path) -> list[dict[str, Any]]:
    """Products of a CSV (columns sku,title,price,currency,url,images) or of a folder of photos.

    In a folder, ``SKU.png`` is a product with one photo and ``SKU/`` a product with every photo inside.
    """
    import csv

    image_suffixes = {".png", ".jpg", ".jpeg", ".webp"}
    if source.is_dir():
        rows = []
        for entry in sorted(source.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                photos = sorted(p for p in entry.iterdir() if p.suffix.lower() in image_suffixes)
            elif entry.suffix.lower() in image_suffixes:
                photos = [entry]
            else:
                continue
            sku = entry.stem if entry.is_file() else entry.name
            rows.append({"sku": sku, "title": sku.replace("-", " ").replace("_", " ").title(), "photos": photos})
        return rows
    with source.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"sku", "title"} - set(reader.fieldnames or [])
        if missing:
            raise click.ClickException(f"{source}: the CSV needs the column(s) {', '.join(sorted(missing))} "
                                       "(and optionally price, currency, url, images)")
        rows = []
        for record in reader:
            row: dict[str, Any] = {k: (record.get(k) or "").strip()
                                   for k in ("sku", "title", "price", "currency", "url")}
            row["photos"] = _product_photos(source.parent, record.get("images") or "")
            rows.append({k: v for k, v in row.items() if v not in ("", None) or k in {"sku", "title", "photos"}})
        return rows


def _import_photo(app: Flask, session: Any, merchant_id: str, path: Path) -> str:
    import tempfile

    from media_service.assets import accept_file
    from media_service.storage import sha256_file

    with tempfile.TemporaryDirectory(dir=Path(app.config["DATA_DIR"])) as tmp:
        copy = Path(tmp) / "import"
        shutil.copyfile(path, copy)
        asset, _created = accept_file(session, app.extensions["storage"], app.config, merchant_id=merchant_id,
                                      path=copy, sha256=sha256_file(copy), filename=path.name, source="cli")
        return asset.id


@main.group("products")
def products_group() -> None:
    """The product catalog that videos are searched for."""


@products_group.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--merchant", "merchant_id", required=True, help="Merchant id (mer_...).")
@click.option("--update/--skip-existing", default=True, show_default=True,
              help="Change products whose SKU exists, or leave them.")
@click.pass_context
def products_import(ctx: click.Context, source: Path, merchant_id: str, update: bool) -> None:
    """Import products from SOURCE: a CSV (sku,title,price,currency,url,images with '|'-separated photo
    paths relative to the CSV) or a folder (SKU.png files and SKU/ folders of photos). Photos are
    validated like uploads and indexed for detection. Exit status 1 when any row failed."""
    from media_service import products
    from media_service.errors import MediaServiceError, NotFound
    from media_service.models import Merchant

    app = _app(ctx.find_root())
    upgrade(app.config["DATABASE_URL"])
    with _db(app).session() as session:
        if session.get(Merchant, merchant_id) is None:
            raise click.ClickException(f"no merchant {merchant_id}; see 'media-service merchants list'")
    rows = _product_rows(source)
    if not rows:
        raise click.ClickException(f"no products found in {source}")
    failures = 0
    with click.progressbar(rows, label="importing products", item_show_func=lambda r: r["sku"] if r else "",
                           hidden=not sys.stdout.isatty()) as bar:
        for row in bar:
            try:
                with _db(app).session() as session:
                    ids = [_import_photo(app, session, merchant_id, photo) for photo in row["photos"]]
                    body = {k: row[k] for k in ("sku", "title", "price", "currency", "url") if k in row}
                    fields = products.parse_fields({**body, "image_asset_ids": ids}, partial=False)
                    try:
                        existing = products.get_product(session, merchant_id, fields["sku"])
                    except NotFound:
                        existing = None
                    if existing is None:
                        product = products.create_product(session, app.extensions["storage"], app.config,
                                                          merchant_id, fields)
                        verb = "added"
                    elif update:
                        product = products.update_product(session, app.extensions["storage"], app.config, existing,
                                                          fields)
                        verb = "updated"
                    else:
                        click.echo(f"{row['sku']}: exists, skipped")
                        continue
                    warnings = [i["warning"] for i in product.images if "warning" in i]
                    click.echo(f"{product.sku}: {verb}, {len(product.images)} photo(s) indexed"
                               + (f" (warning: {warnings[0]})" if warnings else ""))
            except MediaServiceError as exc:
                failures += 1
                click.echo(f"{row.get('sku') or '?'}: refused ({exc.code}): {exc.detail}", err=True)
            except OSError as exc:
                failures += 1
                click.echo(f"{row.get('sku') or '?'}: cannot read a photo: {exc}", err=True)
    if failures:
        ctx.exit(1)


def _workers_alive(app: Flask) -> int:
    from datetime import timedelta

    from sqlalchemy import func

    from media_service.models import WorkerHeartbeat, utcnow

    with _db(app).session() as session:
        since = utcnow() - timedelta(seconds=max(10.0, 4 * app.config["JOB_POLL_SECONDS"]))
        return session.scalar(select(func.count()).select_from(WorkerHeartbeat)
                              .where(WorkerHeartbeat.seen_at >= since)) or 0


def _videos_group() -> click.Group:
    existing = main.commands.get("videos")
    if isinstance(existing, click.Group):
        return existing

    @main.group("videos")
    def videos_fallback() -> None:
        """Videos."""

    return videos_fallback


@_videos_group().command("index")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--merchant", "merchant_id", required=True, help="Merchant id (mer_...).")
@click.option("--detector", type=click.Choice(["catalog", "torchvision", "none"]), default=None,
              help="Default: the PRODUCT_DETECTOR setting.")
@click.option("--fps", type=float, default=None, help="Frames searched per second (default: INDEX_FPS).")
@click.option("--force", is_flag=True, help="Index again even if this catalog already indexed this video.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write contact_sheet.jpg and tracks.json here.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Job processes of a local worker started for this command (0: rely on running workers).")
@click.option("--timeout", type=float, default=3600.0, show_default=True)
@click.pass_context
def videos_index(ctx: click.Context, file: Path, merchant_id: str, detector: str | None, fps: float | None,
                 force: bool, out_dir: Path | None, workers: int, timeout: float) -> None:
    """Import FILE as a video of the merchant (if new), find and track the catalog's products in it, and
    print the tracks. Runs as a videos.index job, so the API answers taps on it afterwards."""
    from media_service import product_index
    from media_service.errors import MediaServiceError
    from media_service.jobs.base import FINISHED_STATES
    from media_service.models import Job, Merchant, VideoIndex

    app = _app(ctx.find_root())
    upgrade(app.config["DATABASE_URL"])
    with _db(app).session() as session:
        if session.get(Merchant, merchant_id) is None:
            raise click.ClickException(f"no merchant {merchant_id}; see 'media-service merchants list'")
    body: dict[str, Any] = {"force": force}
    if detector:
        body["detector"] = detector
    if fps is not None:
        body["fps"] = fps
    try:
        with _db(app).session() as session:
            asset_id = _import_photo(app, session, merchant_id, file)
            index, job, created = product_index.start_index(session, app.config, merchant_id, asset_id, body)
            index_id, job_id = index.id, job.id
    except MediaServiceError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc
    click.echo(f"{file.name}: asset {asset_id}, index {index_id} ({'queued' if created else 'already there'})")
    pool = None
    if workers > 0:  # jobs are claimed atomically: running beside other workers is safe
        pool = subprocess.Popen([sys.executable, "-m", "media_service", "worker", "--concurrency", str(workers)],
                                start_new_session=True)
    elif _workers_alive(app) == 0:
        click.echo("warning: no worker seems to be running; start 'media-service worker'", err=True)
    try:
        deadline = time.monotonic() + timeout
        with click.progressbar(length=100, label="indexing", hidden=not sys.stdout.isatty()) as bar:
            while True:
                with _db(app).session() as session:
                    job_row = session.get(Job, job_id)
                    state, progress, error = job_row.state, int(job_row.progress), job_row.error
                bar.update(max(0, progress - bar.pos))
                if state in FINISHED_STATES or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
    finally:
        if pool is not None:
            pool.send_signal(signal.SIGTERM)
            try:
                pool.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pool.kill()
    if state != "succeeded":
        raise click.ClickException(f"index {index_id}: {state}" + (f" ({error.get('detail')})" if error else ""))
    with _db(app).session() as session:
        index_row = session.get(VideoIndex, index_id)
        tracks = product_index.list_tracks(session, index_row)
        click.echo(f"\n{len(tracks)} product track(s) in {index_row.frame_count} frames "
                   f"({index_row.stats.get('frames_per_second')} frames/s):")
        for track in tracks:
            click.echo(f"  #{track.number:<3} {product_index.effective_sku(track) or '?':<24} "
                       f"{track.start_t:7.2f}-{track.end_t:7.2f} s  confidence {track.sku_confidence:.2f}  "
                       f"{track.id}")
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            storage = app.extensions["storage"]
            for name in ("contact_sheet.jpg", "tracks.json"):
                with storage.open(f"{index_row.output_prefix}/{name}") as source, (out_dir / name).open("wb") as target:
                    shutil.copyfileobj(source, target)
            click.echo(f"contact sheet: {out_dir / 'contact_sheet.jpg'}")


def _models_group() -> click.Group:
    existing = main.commands.get("models")
    if isinstance(existing, click.Group):
        return existing

    @main.group("models")
    def models_group() -> None:
        """Model weights: fine-tuned detectors and the manifest."""

    return models_group


@_models_group().command("train-detector")
@click.option("--merchant", "merchant_id", required=True, help="Whose catalog and videos to train on.")
@click.option("--name", default=None, help="Manifest name (default: detector-<merchant id>, what TORCHVISION_MODEL "
                                           "looks for).")
@click.option("--architecture", default="fasterrcnn_mobilenet_v3_large_320_fpn", show_default=True,
              type=click.Choice(["fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn",
                                 "retinanet_resnet50_fpn", "ssdlite320_mobilenet_v3_large", "tiny_fasterrcnn"]))
@click.option("--steps", default=3000, show_default=True, type=int)
@click.option("--batch-size", default=8, show_default=True, type=int)
@click.option("--image-size", default=320, show_default=True, type=int)
@click.option("--learning-rate", default=0.01, show_default=True, type=float)
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cuda or cpu.")
@click.option("--videos", "video_count", default=10, show_default=True, type=int,
              help="Backgrounds come from this many of the merchant's newest videos.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.pass_context
def models_train_detector(ctx: click.Context, merchant_id: str, name: str | None, architecture: str, steps: int,
                          batch_size: int, image_size: int, learning_rate: float, device: str, video_count: int,
                          seed: int) -> None:
    """Fine-tune a torchvision detector on the merchant's catalog: product photos composited onto frames of
    the merchant's videos (scale, perspective, light, blur), saved under models/ with its sha256."""
    import numpy as np

    from media_service.detection.catalog import estimate_alpha
    from media_service.detection.frames import VideoGeometry, stream_frames
    from media_service.detection.training import TrainingConfig, save_detector, train_detector
    from media_service.errors import MediaServiceError
    from media_service.ingest.images import open_image_as_array
    from media_service.model_files import models_dir_for
    from media_service.models import Asset, Product

    app = _app(ctx.find_root())
    settings = app.config
    storage = app.extensions["storage"]
    name = name or f"detector-{merchant_id}"
    catalog: list[tuple[str, list[Any]]] = []
    backgrounds: list[Any] = []
    try:
        with _db(app).session() as session:
            for product in session.scalars(select(Product).where(Product.merchant_id == merchant_id)
                                           .order_by(Product.sku)):
                photos = []
                for image in product.images or []:
                    asset = session.get(Asset, image["asset_id"])
                    if asset is None:
                        continue
                    with storage.local_path(asset.storage_key) as path:
                        pixels = open_image_as_array(path, settings)
                    if pixels.shape[2] == 3:
                        pixels = np.dstack([pixels, estimate_alpha(pixels)])
                    photos.append(pixels)
                if photos:
                    catalog.append((product.sku, photos))
            videos = session.scalars(select(Asset).where(Asset.merchant_id == merchant_id, Asset.kind == "video")
                                     .order_by(Asset.created_at.desc()).limit(video_count)).all()
            for video in videos:
                with storage.local_path(video.storage_key) as path:
                    geometry = VideoGeometry.probe(path, video.format, settings)
                    rate = min(1.0, 12 / max(geometry.duration or 12.0, 1.0))
                    backgrounds += [f.image.copy() for f in stream_frames(path, demuxer=video.format, geometry=geometry,
                                                                          fps=rate, max_side=640, settings=settings,
                                                                          limit=12)]
    except MediaServiceError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc
    if not catalog:
        raise click.ClickException("the merchant has no product with a photo; import products first")
    if not backgrounds:
        raise click.ClickException("the merchant has no video to take backgrounds from; upload or index one first")
    click.echo(f"training {architecture} on {len(catalog)} product(s), {len(backgrounds)} background frames")
    config = TrainingConfig(architecture=architecture, image_size=image_size, steps=steps, batch_size=batch_size,
                            learning_rate=learning_rate, device=device, seed=seed,
                            warmup_steps=min(100, max(1, steps // 10)))
    losses: list[float] = []
    try:
        with click.progressbar(length=steps, label="training", hidden=not sys.stdout.isatty()) as bar:
            def on_step(step: int, loss: float) -> None:
                losses.append(loss)
                bar.update(1)
                if not sys.stdout.isatty() and (step % max(1, steps // 10) == 0 or step == steps - 1):
                    click.echo(f"step {step + 1}/{steps}: loss {loss:.3f}")

            result = train_detector(catalog, backgrounds, config, on_step=on_step)
    except MediaServiceError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc
    models_dir = models_dir_for(settings)
    from datetime import UTC, datetime

    entry = save_detector(result, models_dir, name, image_size=image_size,
                          source=f"media-service models train-detector, merchant {merchant_id}, {architecture}, "
                                 f"{steps} steps on {result.device}, {datetime.now(UTC):%Y-%m-%d}")
    head, tail = sum(losses[:10]) / max(1, len(losses[:10])), sum(losses[-10:]) / max(1, len(losses[-10:]))
    click.echo(f"saved {models_dir / entry['file']} (sha256 {entry['sha256'][:12]}...) in {result.seconds:.0f} s; "
               f"loss {head:.3f} -> {tail:.3f}")
    click.echo(f"index with it: POST /v1/videos/<id>/index {{\"detector\": \"torchvision\"}} "
               f"(TORCHVISION_MODEL finds '{name}')")
