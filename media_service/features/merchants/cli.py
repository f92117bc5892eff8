"""``media-service merchants``: create a merchant (its API key is printed once) and list them."""

from __future__ import annotations

import json

import click
from sqlalchemy import select

from media_service.commands import app_of, database_of
from media_service.models import Merchant
from media_service.security.api_keys import create_merchant


@click.group("merchants")
def merchants() -> None:
    """Merchants and their API keys."""


@merchants.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def merchants_create(ctx: click.Context, name: str, as_json: bool) -> None:
    """Create a merchant and print its API key (shown only this once)."""
    app = app_of(ctx)
    with database_of(app).session() as session:
        merchant, key = create_merchant(session, name)
        merchant_id = merchant.id
    if as_json:
        click.echo(json.dumps({"merchant_id": merchant_id, "name": name, "api_key": key}))
    else:
        click.echo(f"merchant {merchant_id} ({name})\nAPI key (shown once, keep it safe): {key}")


@merchants.command("list")
@click.pass_context
def merchants_list(ctx: click.Context) -> None:
    app = app_of(ctx)
    with database_of(app).session() as session:
        for merchant in session.scalars(select(Merchant).order_by(Merchant.created_at)):
            click.echo(f"{merchant.id}\t{merchant.name}\t{merchant.created_at:%Y-%m-%d %H:%M}")


def register(main: click.Group) -> None:
    main.add_command(merchants)
