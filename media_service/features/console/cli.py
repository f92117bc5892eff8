"""``media-service users``: operators invite people to a merchant's console, create accounts, list them."""

from __future__ import annotations

import json
import sys

import click

from media_service.commands import app_of, database_of
from media_service.errors import MediaServiceError
from media_service.features.console.service import ROLES, create_user, invite_user, list_users, user_to_dict


@click.group("users")
def users() -> None:
    """People who sign in to a merchant's web console (/console/)."""


def _fail(exc: MediaServiceError) -> click.ClickException:
    return click.ClickException(exc.detail)


@users.command("invite")
@click.option("--merchant", "merchant_id", required=True, help="The merchant (mer_...).")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(ROLES), default="editor", show_default=True)
@click.option("--base-url", default=None, help="The console's public address (default: PUBLIC_URL setting).")
@click.pass_context
def users_invite(ctx: click.Context, merchant_id: str, email: str, role: str, base_url: str | None) -> None:
    """Invite EMAIL: prints a one-time link (valid 7 days) where they choose their password."""
    app = app_of(ctx)
    base = (base_url or app.config["PUBLIC_URL"] or "http://127.0.0.1:8000").rstrip("/")
    try:
        with database_of(app).session() as session:
            user, token = invite_user(session, merchant_id, email, role)
            email = user.email
    except MediaServiceError as exc:
        raise _fail(exc) from exc
    click.echo(f"invited {email} as {role}; send them this link (shown once, valid 7 days):\n"
               f"{base}/console/invite/{token}")


@users.command("create")
@click.option("--merchant", "merchant_id", required=True, help="The merchant (mer_...).")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(ROLES), default="owner", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (else prompted).")
@click.pass_context
def users_create(ctx: click.Context, merchant_id: str, email: str, role: str, password_stdin: bool) -> None:
    """Create an account with a password at once (an invitation is the usual way)."""
    app = app_of(ctx)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else \
        click.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        with database_of(app).session() as session:
            user = create_user(session, merchant_id, email, role, password=password)
            user_id = user.id
    except MediaServiceError as exc:
        raise _fail(exc) from exc
    click.echo(f"{user_id}\t{email.strip().lower()}\t{role}")


@users.command("list")
@click.option("--merchant", "merchant_id", default=None, help="Only this merchant's users.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def users_list(ctx: click.Context, merchant_id: str | None, as_json: bool) -> None:
    app = app_of(ctx)
    with database_of(app).session() as session:
        rows = [user_to_dict(user) for user in list_users(session, merchant_id)]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['id']}\t{row['merchant_id']}\t{row['email']}\t{row['role']}\t{row['status']}")


def register(main: click.Group) -> None:
    main.add_command(users)
