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
