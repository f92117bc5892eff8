"""Completion webhooks: an outbox in the database, delivered and retried by workers.

The delivery row is written in the same transaction as the job's final state, so an event is never
lost between "job done" and "merchant told". Each POST is signed:
``Media-Service-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from media_service.db import end_read
from media_service.errors import BadRequest
from media_service.models import Job, Webhook, WebhookDelivery, utcnow

log = logging.getLogger(__name__)

JOB_EVENTS = ("job.succeeded", "job.failed", "job.cancelled")
SIGNATURE_HEADER = "Media-Service-Signature"


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, body: bytes, header: str, *, tolerance: int = 300) -> bool:
    """What a receiver runs: check the HMAC and that the timestamp is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Refuse URLs that are not http(s) or that point into private networks (SSRF)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise BadRequest("the webhook URL must be an absolute http:// or https:// URL", code="invalid_webhook_url")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise BadRequest(f"the webhook host {parts.hostname!r} does not resolve: {exc}",
                         code="invalid_webhook_url") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise BadRequest(f"the webhook host resolves to a non-public address ({address}); "
                             "use a public URL", code="invalid_webhook_url")


def record_job_event(session: Session, job: Job) -> None:
    """Add one outbox row per subscribed webhook for the job's final state (caller commits)."""
    if job.merchant_id is None:
        return
    event = f"job.{job.state}"
    if event not in JOB_EVENTS:
        return
    from media_service.jobs.queue import job_to_dict

    payload = {"event": event, "created_at": utcnow().isoformat(), "data": job_to_dict(job)}
    for hook in session.scalars(select(Webhook).where(Webhook.merchant_id == job.merchant_id)).all():
        if not hook.events or event in hook.events:
            session.add(WebhookDelivery(webhook_id=hook.id, event=event, payload=payload))


def deliver_due(session: Session, settings: Mapping[str, Any], *, limit: int = 20) -> int:
    """Send due deliveries once; failures are rescheduled with exponential back-off. Returns the count sent."""
    now = utcnow()
    due = session.scalars(select(WebhookDelivery.id).where(
        WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now).limit(limit)).all()
    session.commit()
    sent = 0
    for delivery_id in due:
        lease_until = utcnow() + timedelta(seconds=settings["WEBHOOK_TIMEOUT_SECONDS"] * 3)
        claimed = session.execute(update(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.state == "pending",
            WebhookDelivery.next_attempt_at <= now).values(next_attempt_at=lease_until))
        session.commit()
        if claimed.rowcount != 1:
            continue  # another worker took it
        delivery = session.get(WebhookDelivery, delivery_id)
        hook = session.get(Webhook, delivery.webhook_id) if delivery else None
        if delivery is None or hook is None:
            continue
        end_read(session)  # the POST below may take seconds; hold no snapshot meanwhile
        status, error = _post(hook, delivery, settings)
        delivery.attempts += 1
        delivery.last_status = status
        delivery.last_error = error
        if status is not None and 200 <= status < 300:
            delivery.state = "delivered"
            delivery.delivered_at = utcnow()
            sent += 1
        elif delivery.attempts >= settings["WEBHOOK_MAX_ATTEMPTS"]:
            delivery.state = "failed"
        else:
            delay = settings["WEBHOOK_BACKOFF_SECONDS"] * 2 ** (delivery.attempts - 1)
            delivery.next_attempt_at = utcnow() + timedelta(seconds=delay)
        session.commit()
    return sent


def _post(hook: Webhook, delivery: WebhookDelivery, settings: Mapping[str, Any]) -> tuple[int | None, str | None]:
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "media-service-webhooks/1",
        "Media-Service-Event": delivery.event,
        "Media-Service-Delivery": delivery.id,
        SIGNATURE_HEADER: sign(hook.secret, body, int(time.time())),
    }
    try:
        check_webhook_url(hook.url, allow_private=settings["WEBHOOK_ALLOW_PRIVATE_NETWORKS"])
        response = requests.post(hook.url, data=body, headers=headers,
                                 timeout=settings["WEBHOOK_TIMEOUT_SECONDS"], allow_redirects=False)
    except (requests.RequestException, BadRequest) as exc:
        log.info("webhook delivery %s to %s failed: %s", delivery.id, hook.url, exc)
        return None, str(exc)[:500]
    return response.status_code, None if response.ok else response.text[:500]
