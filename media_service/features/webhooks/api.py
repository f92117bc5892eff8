"""``/v1/webhooks``: where a merchant is told that jobs ended or campaigns changed state (signed with the
webhook's secret). The events a hook may name are ``webhooks.known_events()``: the job events and the
features' ``Feature.webhook_events``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, url_for
from sqlalchemy import select

from media_service.db import begin_write, get_session
from media_service.errors import BadRequest, NotFound
from media_service.models import Webhook, WebhookDelivery
from media_service.security.api_keys import current_merchant_id, require
from media_service.web.requests import created, json_body
from media_service.webhooks import check_webhook_url, known_events, new_secret

bp = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks")


def _to_dict(hook: Webhook, *, with_secret: bool = False) -> dict[str, Any]:
    data = {"id": hook.id, "url": hook.url, "events": hook.events or list(known_events()),
            "created_at": hook.created_at.isoformat()}
    if with_secret:
        data["secret"] = hook.secret
    return data


@bp.post("")
@require("webhooks:manage")
def create_webhook() -> Any:
    body = json_body(required=["url"])
    url, events = body["url"], body.get("events", [])
    if not isinstance(url, str) or len(url) > 2000:
        raise BadRequest("url must be a string of at most 2000 characters", code="invalid_webhook_url")
    known = known_events()
    if not isinstance(events, list) or any(e not in known for e in events):
        raise BadRequest(f"events must be a list drawn from {', '.join(known)}", code="invalid_events")
    check_webhook_url(url, allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"])
    session = get_session()
    hook = Webhook(merchant_id=current_merchant_id(), url=url, events=events, secret=new_secret())
    session.add(hook)
    session.commit()
    return created(_to_dict(hook, with_secret=True), url_for("webhooks.get_webhook", webhook_id=hook.id))


@bp.get("")
@require("webhooks:manage")
def list_webhooks() -> Any:
    hooks = get_session().scalars(select(Webhook).where(Webhook.merchant_id == current_merchant_id())
                                  .order_by(Webhook.created_at)).all()
    return {"items": [_to_dict(h) for h in hooks]}


def _own(webhook_id: str) -> Webhook:
    hook = get_session().scalar(select(Webhook).where(Webhook.id == webhook_id,
                                                      Webhook.merchant_id == current_merchant_id()))
    if hook is None:
        raise NotFound(f"no webhook {webhook_id!r}", code="webhook_not_found")
    return hook


@bp.get("/<webhook_id>")
@require("webhooks:manage")
def get_webhook(webhook_id: str) -> Any:
    hook = _own(webhook_id)
    deliveries = get_session().scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
                                       .order_by(WebhookDelivery.created_at.desc()).limit(20)).all()
    data = _to_dict(hook)
    data["recent_deliveries"] = [
        {"id": d.id, "event": d.event, "state": d.state, "attempts": d.attempts, "last_status": d.last_status,
         "last_error": d.last_error, "created_at": d.created_at.isoformat()} for d in deliveries]
    return data


@bp.delete("/<webhook_id>")
@require("webhooks:manage")
def delete_webhook(webhook_id: str) -> Any:
    session = get_session()
    hook = _own(webhook_id)
    begin_write(session)
    session.delete(hook)
    session.commit()
    return "", 204
