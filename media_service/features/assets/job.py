"""``assets.thumbnail``: a small preview of every new asset (JPEG, at most 640 px wide, no metadata)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps
from sqlalchemy.orm import Session

from media_service import media_options
from media_service.features.assets.service import asset_prefix
from media_service.jobs.base import JobContext, JobKind
from media_service.media.ingest.images import open_image_safely
from media_service.media.video.ffmpeg import run_ffmpeg, safe_input_args
from media_service.models import Asset, Job

THUMBNAIL_WIDTH = 640


def thumbnail_key(merchant_id: str, asset_id: str) -> str:
    return f"{asset_prefix(merchant_id, asset_id)}/thumbnail.jpg"


def image_thumbnail(source: Path, target: Path, settings: dict) -> None:
    """Re-encode an image upright and small; EXIF/GPS is not carried over."""
    limits = media_options.ingest_limits(settings)
    with open_image_safely(source, limits, draft_size=(THUMBNAIL_WIDTH, THUMBNAIL_WIDTH)) as image:
        upright = ImageOps.exif_transpose(image)
        upright.thumbnail((THUMBNAIL_WIDTH, THUMBNAIL_WIDTH * 4), Image.Resampling.LANCZOS)
        if upright.mode not in {"RGB", "L"}:
            background = Image.new("RGB", upright.size, (255, 255, 255))
            rgba = upright.convert("RGBA")
            background.paste(rgba, mask=rgba.getchannel("A"))
            upright = background
        upright.save(target, "JPEG", quality=85, optimize=True)


def video_thumbnail(source: Path, target: Path, *, demuxer: str, duration: float | None, stream_index: int,
                    settings: dict) -> None:
    """One frame a tenth into the main video stream, upright (ffmpeg applies the rotation), no metadata."""
    at = f"{max(0.0, (duration or 0.0) * 0.1):.3f}"
    args = ["-ss", at, *safe_input_args(source, demuxer), "-map", f"0:{stream_index}", "-frames:v", "1",
            "-vf", f"scale='min({THUMBNAIL_WIDTH},iw)':-2", "-map_metadata", "-1", "-q:v", "3",
            "-f", "image2", "-c:v", "mjpeg", "-y", str(target)]
    run_ffmpeg(args, binary=settings["FFMPEG_BINARY"], timeout=min(120.0, settings["FFMPEG_TIMEOUT_SECONDS"]))


def _record_thumbnail(session: Session, job: Job) -> list[str]:
    asset = session.get(Asset, job.params["asset_id"])
    if asset is None:  # deleted meanwhile: the thumbnail would be the last file left of it
        return [asset_prefix(job.merchant_id or "system", job.params["asset_id"])]
    if job.result:
        asset.thumbnail_key = job.result["thumbnail_key"]
    return []


def make_thumbnail(ctx: JobContext) -> dict:
    params = ctx.params
    key = thumbnail_key(ctx.merchant_id or "system", params["asset_id"])
    with ctx.storage.local_path(params["source_key"]) as source, ctx.storage.staging_dir() as staging:
        target = staging / "thumbnail.jpg"
        ctx.progress(0.1)
        if params["kind"] == "image":
            image_thumbnail(source, target, dict(ctx.settings))
        else:
            video_thumbnail(source, target, demuxer=params.get("format", "mov"), duration=params.get("duration"),
                            stream_index=params.get("stream_index", 0), settings=dict(ctx.settings))
        ctx.progress(0.9)
        ctx.storage.put_file(key, target, move=True)
    return {"thumbnail_key": key}


THUMBNAIL_JOB = JobKind("assets.thumbnail", make_thumbnail, on_success=_record_thumbnail)
