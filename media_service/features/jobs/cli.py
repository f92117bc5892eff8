"""``media-service jobs``: list, show, cancel, retry and wait for jobs."""

from __future__ import annotations

import json
import os
import sys
import time

import click
from sqlalchemy import select

from media_service.commands import app_of, database_of
from media_service.jobs.base import FINISHED_STATES
from media_service.jobs.queue import cancel, get_job, job_to_dict, retry
from media_service.models import Job


@click.group("jobs")
def jobs() -> None:
    """Inspect and steer jobs."""


@jobs.command("list")
@click.option("--state", default=None)
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def jobs_list(ctx: click.Context, state: str | None, limit: int) -> None:
    app = app_of(ctx)
    with database_of(app).session() as session:
        query = select(Job).order_by(Job.created_at.desc()).limit(limit)
        if state:
            query = query.where(Job.state == state)
        for job in session.scalars(query):
            click.echo(f"{job.id}\t{job.kind}\t{job.state}\t{job.progress:.0f}%\tattempts={job.attempts}")


@jobs.command("show")
@click.argument("job_id")
@click.pass_context
def jobs_show(ctx: click.Context, job_id: str) -> None:
    app = app_of(ctx)
    with database_of(app).session() as session:
        click.echo(json.dumps(job_to_dict(get_job(session, job_id, None)), indent=2))


@jobs.command("cancel")
@click.argument("job_id")
@click.pass_context
def jobs_cancel(ctx: click.Context, job_id: str) -> None:
    app = app_of(ctx)
    with database_of(app).session() as session:
        click.echo(f"{job_id}: {cancel(session, job_id, None).state}")


@jobs.command("retry")
@click.argument("job_id")
@click.pass_context
def jobs_retry(ctx: click.Context, job_id: str) -> None:
    app = app_of(ctx)
    with database_of(app).session() as session:
        click.echo(f"{job_id}: {retry(session, job_id, None).state}")


@jobs.command("wait")
@click.argument("job_id")
@click.option("--timeout", default=3600.0, show_default=True)
@click.pass_context
def jobs_wait(ctx: click.Context, job_id: str, timeout: float) -> None:
    """Show a progress bar until the job ends; exit 1 unless it succeeded."""
    app = app_of(ctx)
    deadline = time.monotonic() + timeout
    interactive = sys.stdout.isatty()
    last: tuple[str, int] | None = None
    with click.progressbar(length=100, label=job_id, file=None if interactive else open(os.devnull, "w")) as bar:
        while True:
            with database_of(app).session() as session:
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


def register(main: click.Group) -> None:
    main.add_command(jobs)
