"""``media-service videos index`` (find and track the catalog's products in a video) and
``media-service models train-detector``."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from media_service import media_options
from media_service.commands import app_of, database_of, group, worker_pool, workers_alive
from media_service.db import upgrade
from media_service.errors import MediaServiceError
from media_service.features.assets.service import import_local_file
from media_service.features.video_index import service as product_index
from media_service.jobs.base import FINISHED_STATES
from media_service.media.detection.catalog import estimate_alpha
from media_service.media.detection.frames import VideoGeometry, stream_frames
from media_service.media.ingest.images import open_image_as_array
from media_service.models import Asset, Job, Merchant, Product, VideoIndex


@click.command("index")
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
    app = app_of(ctx)
    upgrade(app.config["DATABASE_URL"])
    with database_of(app).session() as session:
        if session.get(Merchant, merchant_id) is None:
            raise click.ClickException(f"no merchant {merchant_id}; see 'media-service merchants list'")
    body: dict[str, Any] = {"force": force}
    if detector:
        body["detector"] = detector
    if fps is not None:
        body["fps"] = fps
    try:
        with database_of(app).session() as session:
            asset_id = import_local_file(session, app.extensions["storage"], app.config, merchant_id=merchant_id,
                                         path=file, source="cli")[0].id
            index, job, created = product_index.start_index(session, app.config, merchant_id, asset_id, body)
            index_id, job_id = index.id, job.id
    except MediaServiceError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc
    click.echo(f"{file.name}: asset {asset_id}, index {index_id} ({'queued' if created else 'already there'})")
    if workers <= 0 and workers_alive(app) == 0:
        click.echo("warning: no worker seems to be running; start 'media-service worker'", err=True)
    with worker_pool(workers):
        deadline = time.monotonic() + timeout
        with click.progressbar(length=100, label="indexing", hidden=not sys.stdout.isatty()) as bar:
            while True:
                with database_of(app).session() as session:
                    job_row = session.get(Job, job_id)
                    state, progress, error = job_row.state, int(job_row.progress), job_row.error
                bar.update(max(0, progress - bar.pos))
                if state in FINISHED_STATES or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
    if state != "succeeded":
        raise click.ClickException(f"index {index_id}: {state}" + (f" ({error.get('detail')})" if error else ""))
    with database_of(app).session() as session:
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



@click.command("train-detector")
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

    from media_service.media.detection.training import (  # torch is optional (the detection extra)
        TrainingConfig,
        save_detector,
        train_detector,
    )

    app = app_of(ctx)
    settings = app.config
    limits = media_options.ingest_limits(settings)
    storage = app.extensions["storage"]
    name = name or f"detector-{merchant_id}"
    catalog: list[tuple[str, list[Any]]] = []
    backgrounds: list[Any] = []
    try:
        with database_of(app).session() as session:
            for product in session.scalars(select(Product).where(Product.merchant_id == merchant_id)
                                           .order_by(Product.sku)):
                photos = []
                for image in product.images or []:
                    asset = session.get(Asset, image["asset_id"])
                    if asset is None:
                        continue
                    with storage.local_path(asset.storage_key) as path:
                        pixels = open_image_as_array(path, limits)
                    if pixels.shape[2] == 3:
                        pixels = np.dstack([pixels, estimate_alpha(pixels)])
                    photos.append(pixels)
                if photos:
                    catalog.append((product.sku, photos))
            videos = session.scalars(select(Asset).where(Asset.merchant_id == merchant_id, Asset.kind == "video")
                                     .order_by(Asset.created_at.desc()).limit(video_count)).all()
            for video in videos:
                with storage.local_path(video.storage_key) as path:
                    geometry = VideoGeometry.probe(path, video.format, limits)
                    rate = min(1.0, 12 / max(geometry.duration or 12.0, 1.0))
                    backgrounds += [f.image.copy() for f in stream_frames(path, demuxer=video.format, geometry=geometry,
                                                                          fps=rate, max_side=640, limits=limits,
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
    models_dir = media_options.models_dir(settings)
    from datetime import UTC, datetime

    entry = save_detector(result, models_dir, name, image_size=image_size,
                          source=f"media-service models train-detector, merchant {merchant_id}, {architecture}, "
                                 f"{steps} steps on {result.device}, {datetime.now(UTC):%Y-%m-%d}")
    head, tail = sum(losses[:10]) / max(1, len(losses[:10])), sum(losses[-10:]) / max(1, len(losses[-10:]))
    click.echo(f"saved {models_dir / entry['file']} (sha256 {entry['sha256'][:12]}...) in {result.seconds:.0f} s; "
               f"loss {head:.3f} -> {tail:.3f}")
    click.echo(f"index with it: POST /v1/videos/<id>/index {{\"detector\": \"torchvision\"}} "
               f"(TORCHVISION_MODEL finds '{name}')")


def register(main: click.Group) -> None:
    group(main, "videos", "Processed videos: list, show, approve, reject, delete, index.").add_command(videos_index)
    group(main, "models", "Model weights: fine-tuned detectors and the manifest.").add_command(models_train_detector)
