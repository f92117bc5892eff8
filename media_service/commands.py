"""What every feature's CLI commands share: the application of the invocation, its database, a progress bar,
named sub-groups, and a local worker pool started for one command.

The root group and the platform's own commands (serve, worker, db, config, doctor) are in ``cli.py``; each
feature adds its commands through ``Feature.commands``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from flask import Flask

from media_service.db import Database
from media_service.errors import ConfigError
from media_service.jobs.queue import live_workers


def app_of(ctx: click.Context) -> Flask:
    """The application of this invocation, built once from the environment's settings."""
    root = ctx.find_root()
    if root.obj is None:
        from media_service import create_app  # the factory imports every feature, which import this module

        try:
            root.obj = create_app()
        except ConfigError as exc:
            raise click.ClickException(exc.detail) from exc
    return root.obj


def database_of(app: Flask) -> Database:
    return app.extensions["database"]


def group(main: click.Group, name: str, help_text: str) -> click.Group:
    """The sub-group ``name`` of ``main``, made on first use (several features add to ``videos``)."""
    existing = main.commands.get(name)
    if isinstance(existing, click.Group):
        return existing
    made = click.Group(name, help=help_text)
    main.add_command(made)
    return made


def progress_bar(label: str) -> tuple[Any, Callable[[float], None]]:
    """A click progress bar (0-100) and a callback taking a fraction; silent when not on a terminal."""
    bar = click.progressbar(length=100, label=label, hidden=not sys.stdout.isatty())
    state = {"shown": 0}

    def update(fraction: float) -> None:
        target = int(min(max(fraction, 0.0), 1.0) * 100)
        if target > state["shown"]:
            bar.update(target - state["shown"])
            state["shown"] = target

    return bar, update


def workers_alive(app: Flask) -> int:
    """How many job processes reported recently (any machine sharing the database)."""
    with database_of(app).session() as session:
        return live_workers(session, within_seconds=max(10.0, 4 * app.config["JOB_POLL_SECONDS"]))


@contextmanager
def worker_pool(concurrency: int) -> Iterator[subprocess.Popen[bytes] | None]:
    """A local worker with ``concurrency`` job processes for the duration of a command (none for 0).

    Jobs are claimed atomically, so running beside other workers is safe. The pool is stopped with SIGTERM
    (running jobs hand their lease back) and killed if it does not stop within 30 s.
    """
    if concurrency <= 0:
        yield None
        return
    pool = subprocess.Popen([sys.executable, "-m", "media_service", "worker", "--concurrency", str(concurrency)],
                            start_new_session=True)
    try:
        yield pool
    finally:
        pool.send_signal(signal.SIGTERM)
        try:
            pool.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pool.kill()


def delete_row(ctx: click.Context, model: type[Any], row_id: str, delete: Callable[..., None]) -> None:
    """Find a row by id (any merchant: this is the operator's tool) and delete it with ``delete``."""
    app = app_of(ctx)
    with database_of(app).session() as session:
        row = session.get(model, row_id)
        if row is None:
            raise click.ClickException(f"no {model.__tablename__.removesuffix('s')} {row_id}")
        delete(session, app.extensions["storage"], row)
    click.echo(f"{row_id}: deleted")
