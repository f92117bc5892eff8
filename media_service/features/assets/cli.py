"""``media-service assets``: import files as a merchant's assets, delete one (the operator's tools)."""

from __future__ import annotations

from pathlib import Path

import click

from media_service.commands import app_of, database_of, delete_row
from media_service.errors import MediaServiceError
from media_service.features.assets.service import delete_asset, import_local_file
from media_service.models import Asset


@click.group("assets")
def assets() -> None:
    """Assets of a merchant."""


@assets.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--merchant", "merchant_id", required=True, help="Merchant id (mer_...).")
@click.pass_context
def assets_import(ctx: click.Context, paths: tuple[Path, ...], merchant_id: str) -> None:
    """Validate and store local files as assets of a merchant (same checks as the upload API)."""
    app = app_of(ctx)
    failures = 0
    with click.progressbar(paths, label="importing", item_show_func=lambda p: p.name if p else "") as bar:
        for path in bar:
            try:
                with database_of(app).session() as session:
                    asset, created = import_local_file(session, app.extensions["storage"], app.config,
                                                       merchant_id=merchant_id, path=path, source="cli")
                    click.echo(f"\n{path}: {asset.id} ({'new' if created else 'already there'})")
            except MediaServiceError as exc:
                failures += 1
                click.echo(f"\n{path}: refused ({exc.code}): {exc.detail}", err=True)
    if failures:
        ctx.exit(1)



@assets.command("delete")
@click.argument("asset_id")
@click.pass_context
def assets_delete(ctx: click.Context, asset_id: str) -> None:
    """Delete an asset, its files and what was made of it alone (videos, video indexes, tap cut-outs)."""
    delete_row(ctx, Asset, asset_id, delete_asset)


def register(main: click.Group) -> None:
    main.add_command(assets)
