"""The ``media-service`` command line: the root group, the platform's commands (serve, worker, db, config,
doctor), and every feature's commands (``Feature.commands``, iterated from ``FEATURES``)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from typing import Any

import click
from flask import Flask

from media_service import features
from media_service.commands import app_of, database_of
from media_service.config import describe_settings
from media_service.db import upgrade
from media_service.jobs.worker import run_worker
from media_service.media.detection.model_files import check_manifest
from media_service.media.video.ffmpeg import ffmpeg_encoders, ffmpeg_version


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

    app = app_of(ctx)
    upgrade(app.config["DATABASE_URL"])
    with_worker = app.config["RUN_LOCAL_WORKER"] if worker is None else worker
    worker_process = None
    if with_worker:
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
               + (" with a local job worker" if with_worker else ""))
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
    app = app_of(ctx)
    upgrade(app.config["DATABASE_URL"])
    run_worker(dict(app.config), job_kinds=features.job_kinds, chores=features.chores(), concurrency=concurrency)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate the database schema to the newest version."""
    app = app_of(ctx)
    upgrade(app.config["DATABASE_URL"])
    click.echo(f"database ready: {app.config['DATABASE_URL']}")



@main.command("config")
def config_list() -> None:
    """List every setting with its environment variable, default and meaning."""
    for item in describe_settings():
        click.echo(f"{item['env']} (default {item['default']!r})\n    {item['description']}")


@main.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check what this machine offers: ffmpeg, encoders, torch and CUDA, models, storage, database."""
    app = app_of(ctx)
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

    for line, ok in check_manifest():
        report("models", ok, line, required=False)
    try:
        app.extensions["storage"].check_writable()
        report("storage", True, f"{app.config['STORAGE_BACKEND']} at {app.config['STORAGE_ROOT']} is writable")
    except OSError as exc:
        report("storage", False, str(exc))
    try:
        database_of(app).ping()
        report("database", True, app.config["DATABASE_URL"])
    except Exception as exc:
        report("database", False, f"{app.config['DATABASE_URL']}: {exc}")
    free = shutil.disk_usage(app.config["DATA_DIR"]).free
    report("disk", free > 1 << 30, f"{free / (1 << 30):.1f} GiB free in {app.config['DATA_DIR']}")
    click.echo(f"cpu cores: {os.cpu_count()}")
    if problems:
        ctx.exit(1)


for _feature in features.FEATURES:
    if _feature.commands is not None:
        _feature.commands(main)


def run() -> Any:
    return main(prog_name="media-service")

