"""``media-service videos``: list, show, approve, reject and delete processed videos."""

from __future__ import annotations

import json

import click
from sqlalchemy import select

from media_service.commands import app_of, database_of, delete_row
from media_service.errors import MediaServiceError
from media_service.features.videos.service import delete_video, moderate, video_to_dict
from media_service.jobs.resources import public_state
from media_service.models import Job, Video


@click.group("videos")
def videos() -> None:
    """Processed videos: list, show, approve, reject, delete."""


@videos.command("list")
@click.option("--merchant", "merchant_id", default=None)
@click.option("--moderation", type=click.Choice(["pending", "approved", "rejected"]), default=None)
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def videos_list(ctx: click.Context, merchant_id: str | None, moderation: str | None, limit: int) -> None:
    app = app_of(ctx)
    with database_of(app).session() as session:
        query = select(Video).order_by(Video.created_at.desc()).limit(limit)
        if merchant_id:
            query = query.where(Video.merchant_id == merchant_id)
        if moderation:
            query = query.where(Video.moderation_status == moderation)
        for video in session.scalars(query):
            job = session.get(Job, video.job_id) if video.job_id else None
            flags = ",".join(f["code"] for f in video.flags or []) or "-"
            click.echo(f"{video.id}\t{video.profile}\t{public_state(video.state, job)}\t{video.moderation_status}\t"
                       f"{flags}\t{video.asset_id}")


@videos.command("show")
@click.argument("video_id")
@click.pass_context
def videos_show(ctx: click.Context, video_id: str) -> None:
    """The video as the API shows it (URLs signed with PUBLIC_URL, or http://localhost:8000)."""
    app = app_of(ctx)
    with database_of(app).session() as session:
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
    app = app_of(ctx)
    with database_of(app).session() as session:
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
    delete_row(ctx, Video, video_id, delete_video)


def register(main: click.Group) -> None:
    main.add_command(videos)
