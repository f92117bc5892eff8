"""``media-service campaigns ...``: create, preview, publish, close, draw, stats, delete a logo campaign."""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from media_service.commands import app_of, database_of, worker_pool
from media_service.db import upgrade
from media_service.errors import MediaServiceError
from media_service.features.assets.service import import_local_file
from media_service.features.campaigns import service
from media_service.jobs.base import FINISHED_STATES
from media_service.models import Job


@click.group("campaigns")
def campaigns() -> None:
    """Fun-logo prize campaigns in promo videos."""


def _fail(exc: MediaServiceError) -> click.ClickException:
    return click.ClickException(f"{exc.code}: {exc.detail}")


def _summary(session: Any, campaign: Any) -> dict[str, Any]:
    job = session.get(Job, campaign.job_id) if campaign.job_id else None
    return {"id": campaign.id, "state": campaign.state, "mode": campaign.mode,
            "render": service.render_state(campaign, job), "error": job.error if job and job.error else None,
            "fragments": campaign.fragment_count, "rule": campaign.rule,
            "seed_commitment": campaign.seed_commitment, "merkle_root": campaign.merkle_root,
            "entries": service.entry_count(session, campaign.id), "winners": campaign.winners,
            "placements": campaign.plan.get("placements", [])}


@campaigns.command("create")
@click.option("--merchant", "merchant_id", required=True)
@click.option("--video", "video_id", required=True, help="A processed video (vid_...).")
@click.option("--logo", "logo_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A PNG/WebP logo file (imported as an asset).")
@click.option("--logo-asset", "logo_asset_id", help="Or an image asset id (ast_...).")
@click.option("--title", required=True)
@click.option("--mode", type=click.Choice(service.MODES), default="overlay", show_default=True)
@click.option("--fragments", type=int, default=5, show_default=True)
@click.option("--rule", default="all", show_default=True, help="any, all, or a number N.")
@click.option("--prize", "prizes", multiple=True, required=True, help="NAME or NAME:QUANTITY (repeatable).")
@click.option("--rules", "rules_text", required=True, help="Published rules text.")
@click.option("--odds", required=True, help="Published odds text.")
@click.option("--alternative-entry", required=True, help="How to enter for free without collecting.")
@click.option("--starts", type=click.DateTime(), default=None)
@click.option("--ends", type=click.DateTime(), default=None)
@click.option("--seed", type=int, default=None)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Render now with a local worker.")
@click.option("--timeout", type=float, default=1800.0, show_default=True)
@click.pass_context
def create(ctx: click.Context, merchant_id: str, video_id: str, logo_file: Path | None, logo_asset_id: str | None,
           title: str, mode: str, fragments: int, rule: str, prizes: tuple[str, ...], rules_text: str, odds: str,
           alternative_entry: str, starts: datetime | None, ends: datetime | None, seed: int | None, wait: bool,
           timeout: float) -> None:
    """Create a campaign and render it (fragments, plan, preview sheet and video)."""
    app = app_of(ctx)
    upgrade(app.config["DATABASE_URL"])
    body: dict[str, Any] = {
        "video_id": video_id, "title": title, "mode": mode, "fragments": fragments,
        "rule": {"kind": "n", "n": int(rule)} if rule.isdigit() else {"kind": rule},
        "prizes": [{"name": p.rsplit(":", 1)[0], "quantity": int(p.rsplit(":", 1)[1])} if ":" in p
                   and p.rsplit(":", 1)[1].isdigit() else {"name": p, "quantity": 1} for p in prizes],
        "rules": rules_text, "odds": odds, "alternative_entry": alternative_entry}
    for name, value in (("starts_at", starts), ("ends_at", ends)):
        if value is not None:
            body[name] = value.astimezone().isoformat()
    if seed is not None:
        body["seed"] = seed
    try:
        with database_of(app).session() as session:
            if logo_file is not None:
                logo_asset_id = import_local_file(session, app.extensions["storage"], app.config,
                                                  merchant_id=merchant_id, path=logo_file, source="cli")[0].id
            if not logo_asset_id:
                raise click.UsageError("give --logo FILE or --logo-asset ID")
            body["logo_asset_id"] = logo_asset_id
            campaign, job, _ = service.create_campaign(session, app.config, merchant_id, body, None)
            campaign_id, job_id = campaign.id, job.id
    except MediaServiceError as exc:
        raise _fail(exc) from exc
    if wait:
        with worker_pool(1):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                with database_of(app).session() as session:
                    if session.get(Job, job_id).state in FINISHED_STATES:
                        break
                time.sleep(0.5)
    with database_of(app).session() as session:
        click.echo(json.dumps(_summary(session, service.get_campaign(session, merchant_id, campaign_id)), indent=2))


def _simple(name: str, action: Any, help_text: str) -> None:
    @campaigns.command(name, help=help_text)
    @click.argument("campaign_id")
    @click.option("--merchant", "merchant_id", required=True)
    @click.pass_context
    def command(ctx: click.Context, campaign_id: str, merchant_id: str) -> None:
        app = app_of(ctx)
        try:
            with database_of(app).session() as session, app.test_request_context():
                result = action(session, app, service.get_campaign(session, merchant_id, campaign_id))
                click.echo(json.dumps(result, indent=2, default=str))
        except MediaServiceError as exc:
            raise _fail(exc) from exc


_simple("show", lambda s, app, c: _summary(s, c), "Show a campaign: state, render, plan, commitments, winners.")
_simple("publish", lambda s, app, c: _summary(s, service.publish(s, c)), "Open collecting (commits to the seed).")
_simple("close", lambda s, app, c: _summary(s, service.close(s, c)), "Stop collecting (publishes the Merkle root).")
_simple("draw", lambda s, app, c: service.draw_record(s, service.run_draw(s, c)),
        "Reveal the seed and pick the winners; prints the public draw record.")
_simple("stats", lambda s, app, c: service.stats(s, c), "Views, fragments seen, collects, entries, conversion.")


@campaigns.command("preview")
@click.argument("campaign_id")
@click.option("--merchant", "merchant_id", required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def preview(ctx: click.Context, campaign_id: str, merchant_id: str, out_dir: Path) -> None:
    """Copy the preview sheet, preview video (and burned-in video) to --out."""
    app = app_of(ctx)
    storage = app.extensions["storage"]
    with database_of(app).session() as session:
        campaign = service.get_campaign(session, merchant_id, campaign_id)
        if not campaign.rendered:
            raise click.ClickException("the campaign is not rendered yet")
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in ("sheet", "preview", "burned", "poster"):
            relative = campaign.outputs.get(name)
            if relative:
                with storage.open(f"{campaign.outputs['prefix']}/{relative}") as source, \
                        (out_dir / relative).open("wb") as target:
                    shutil.copyfileobj(source, target)
                click.echo(out_dir / relative)


@campaigns.command("delete")
@click.argument("campaign_id")
@click.option("--merchant", "merchant_id", required=True)
@click.pass_context
def delete(ctx: click.Context, campaign_id: str, merchant_id: str) -> None:
    """Delete a campaign, its entries and its rendered files."""
    app = app_of(ctx)
    with database_of(app).session() as session:
        service.delete_campaign(session, app.extensions["storage"],
                                service.get_campaign(session, merchant_id, campaign_id))
    click.echo(f"deleted {campaign_id}")


def register(main: click.Group) -> None:
    main.add_command(campaigns)
