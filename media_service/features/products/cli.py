"""``media-service products import``: a catalog from a CSV file or a folder of photos."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from media_service.commands import app_of, database_of
from media_service.db import upgrade
from media_service.errors import MediaServiceError, NotFound
from media_service.features.assets.service import import_local_file
from media_service.features.products import service as products
from media_service.models import Merchant

# --- Products and one-tap extraction (issue 5) -----------------------------------------------------


def _product_photos(folder: Path, value: str) -> list[Path]:
    """Photo paths of a CSV cell: separated by '|', relative to the CSV's folder."""
    paths = []
    for part in value.split("|"):
        part = part.strip()
        if part:
            path = Path(part)
            paths.append(path if path.is_absolute() else folder / path)
    return paths


def _product_rows(source: Path) -> list[dict[str, Any]]:
    """Products of a CSV (columns sku,title,price,currency,url,images) or of a folder of photos.

    In a folder, ``SKU.png`` is a product with one photo and ``SKU/`` a product with every photo inside.
    """
    import csv

    image_suffixes = {".png", ".jpg", ".jpeg", ".webp"}
    if source.is_dir():
        rows = []
        for entry in sorted(source.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                photos = sorted(p for p in entry.iterdir() if p.suffix.lower() in image_suffixes)
            elif entry.suffix.lower() in image_suffixes:
                photos = [entry]
            else:
                continue
            sku = entry.stem if entry.is_file() else entry.name
            rows.append({"sku": sku, "title": sku.replace("-", " ").replace("_", " ").title(), "photos": photos})
        return rows
    with source.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"sku", "title"} - set(reader.fieldnames or [])
        if missing:
            raise click.ClickException(f"{source}: the CSV needs the column(s) {', '.join(sorted(missing))} "
                                       "(and optionally price, currency, url, images)")
        rows = []
        for record in reader:
            row: dict[str, Any] = {k: (record.get(k) or "").strip()
                                   for k in ("sku", "title", "price", "currency", "url")}
            row["photos"] = _product_photos(source.parent, record.get("images") or "")
            rows.append({k: v for k, v in row.items() if v not in ("", None) or k in {"sku", "title", "photos"}})
        return rows


@click.group("products")
def products_group() -> None:
    """The product catalog that videos are searched for."""


@products_group.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--merchant", "merchant_id", required=True, help="Merchant id (mer_...).")
@click.option("--update/--skip-existing", default=True, show_default=True,
              help="Change products whose SKU exists, or leave them.")
@click.pass_context
def products_import(ctx: click.Context, source: Path, merchant_id: str, update: bool) -> None:
    """Import products from SOURCE: a CSV (sku,title,price,currency,url,images with '|'-separated photo
    paths relative to the CSV) or a folder (SKU.png files and SKU/ folders of photos). Photos are
    validated like uploads and indexed for detection. Exit status 1 when any row failed."""
    app = app_of(ctx)
    upgrade(app.config["DATABASE_URL"])
    with database_of(app).session() as session:
        if session.get(Merchant, merchant_id) is None:
            raise click.ClickException(f"no merchant {merchant_id}; see 'media-service merchants list'")
    rows = _product_rows(source)
    if not rows:
        raise click.ClickException(f"no products found in {source}")
    failures = 0
    with click.progressbar(rows, label="importing products", item_show_func=lambda r: r["sku"] if r else "",
                           hidden=not sys.stdout.isatty()) as bar:
        for row in bar:
            try:
                with database_of(app).session() as session:
                    ids = [import_local_file(session, app.extensions["storage"], app.config, merchant_id=merchant_id,
                                             path=photo, source="cli")[0].id for photo in row["photos"]]
                    body = {k: row[k] for k in ("sku", "title", "price", "currency", "url") if k in row}
                    fields = products.parse_fields({**body, "image_asset_ids": ids}, partial=False)
                    try:
                        existing = products.get_product(session, merchant_id, fields["sku"])
                    except NotFound:
                        existing = None
                    if existing is None:
                        product = products.create_product(session, app.extensions["storage"], app.config,
                                                          merchant_id, fields)
                        verb = "added"
                    elif update:
                        product = products.update_product(session, app.extensions["storage"], app.config, existing,
                                                          fields)
                        verb = "updated"
                    else:
                        click.echo(f"{row['sku']}: exists, skipped")
                        continue
                    warnings = [i["warning"] for i in product.images if "warning" in i]
                    click.echo(f"{product.sku}: {verb}, {len(product.images)} photo(s) indexed"
                               + (f" (warning: {warnings[0]})" if warnings else ""))
            except MediaServiceError as exc:
                failures += 1
                click.echo(f"{row.get('sku') or '?'}: refused ({exc.code}): {exc.detail}", err=True)
            except OSError as exc:
                failures += 1
                click.echo(f"{row.get('sku') or '?'}: cannot read a photo: {exc}", err=True)
    if failures:
        ctx.exit(1)


def register(main: click.Group) -> None:
    main.add_command(products_group)
