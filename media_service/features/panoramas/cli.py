"""``media-service panoramas stitch``: stitch photo files into a panorama folder (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from media_service import media_options
from media_service.commands import app_of, progress_bar
from media_service.errors import MediaServiceError
from media_service.media.panorama.build import build_panorama, panorama_options
from media_service.media.panorama.stitcher import Photo


@click.group("panoramas")
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
    limits = media_options.panorama_limits(app_of(ctx).config)
    raw: dict[str, Any] = {"projection": projection, "detector": detector, "crop": crop}
    if max_megapixels is not None:
        raw["max_output_megapixels"] = max_megapixels
    try:
        options = panorama_options(raw, limits)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    bar, update = progress_bar("stitching")
    try:
        with bar:
            summary = build_panorama([Photo(path, path.name) for path in files], out_dir, limits, options, update)
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


def register(main: click.Group) -> None:
    main.add_command(panoramas)
