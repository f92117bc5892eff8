"""``media-service spins build``: a product spin folder from photo files or a turntable video."""

from __future__ import annotations

from pathlib import Path

import click

from media_service import media_options
from media_service.commands import app_of, progress_bar
from media_service.errors import MediaServiceError
from media_service.media.panorama.build import build_spin_from_photos, build_spin_from_video, spin_options
from media_service.media.spin import SpinPhoto


@click.group("spins")
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
    if bool(files) == (video is not None):
        raise click.UsageError("give either photo FILES or --video FILE")
    limits = media_options.spin_limits(app_of(ctx).config)
    count = int(frames) if frames else (36 if video else None)
    try:
        options = spin_options(count, {"clean_background": clean_background, "background_color": background_color},
                               limits)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    bar, update = progress_bar("building spin")
    try:
        with bar:
            if video is not None:
                manifest = build_spin_from_video(video, out_dir, limits, options, update)
            else:
                manifest = build_spin_from_photos([SpinPhoto(path, path.name) for path in files], out_dir, limits,
                                                  options, update)
    except MediaServiceError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc
    revolution = manifest.get("revolution")
    found = (f"; one turn = {revolution['period_frames']} video frames ({revolution['seconds']} s)"
             if revolution else f"; ordered by {manifest.get('ordered_by')}")
    click.echo(f"\n{out_dir / 'manifest.json'}: {manifest['frame_count']} frames{found}")


def register(main: click.Group) -> None:
    main.add_command(spins)
