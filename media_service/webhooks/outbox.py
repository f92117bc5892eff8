"""The webhook outbox: rows written with the event, delivered and retried off the job supervisor's loop.

A delivery row is written in the same transaction as what it reports (a job's final state, a cart
confirmation), so an event is never lost between "done" and "merchant told". ``OutboxDispatcher`` runs in
the worker process on its own thread with its own pool of senders: it claims due rows (a short lease in
``next_attempt_at``), at most ``WEBHOOK_RECEIVER_CONCURRENCY`` at a time per receiver, and records each
attempt's outcome with exponential back-off. A slow or silent receiver therefore holds at most that many
senders for at most one deadline each, and never the loop that restarts job processes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from media_service.db import Database, begin_write
from media_service.models import Job, Webhook, WebhookDelivery, utcnow
from media_service.webhooks.delivery import DeliveryLimits, PostResult, ReceiverSlots, post_event, receiver_of

log = logging.getLogger(__name__)

JOB_EVENTS = ("job.succeeded", "job.failed", "job.cancelled")
_EVENTS: list[str] = list(JOB_EVENTS)


def register_events(events: Sequence[str]) -> None:
    """Add event names a webhook may subscribe to (the features' own, from ``Feature.webhook_events``)."""
    _EVENTS.extend(e for e in events if e not in _EVENTS)


def known_events() -> tuple[str, ...]:
    """Every event name a webhook may subscribe to: the job events, then the features' (the one list)."""
    return tuple(_EVENTS)


def record_event(session: Session, merchant_id: str, event: str, data: Mapping[str, Any]) -> None:
    """One outbox row per webhook of the merchant subscribed to ``event`` (or to everything); caller commits."""
    payload = {"event": event, "created_at": utcnow().isoformat(), "data": dict(data)}
    for hook in session.scalars(select(Webhook).where(Webhook.merchant_id == merchant_id)).all():
        if not hook.events or event in hook.events:
            session.add(WebhookDelivery(webhook_id=hook.id, event=event, payload=payload))


def record_job_event(session: Session, job: Job, data: Mapping[str, Any]) -> None:
    """Add one outbox row per subscribed webhook for the job's final state (caller commits).

    ``data`` is the job as the API shows it (the caller renders it, so this package needs no job code).
    """
    if job.merchant_id is None:
        return
    event = f"job.{job.state}"
    if event not in JOB_EVENTS:
        return
    payload = {"event": event, "created_at": utcnow().isoformat(), "data": dict(data)}
    for hook in session.scalars(select(Webhook).where(Webhook.merchant_id == job.merchant_id)).all():
        if not hook.events or event in hook.events:
            session.add(WebhookDelivery(webhook_id=hook.id, event=event, payload=payload))


def lease_seconds(settings: Mapping[str, Any]) -> float:
    """How long a claimed delivery is hidden from other senders: longer than any attempt can take."""
    return float(settings["WEBHOOK_TIMEOUT_SECONDS"]) * 3 + 5


def record_attempt(session: Session, delivery_id: str, result: PostResult, settings: Mapping[str, Any],
                   *, attempts_before: int) -> str:
    """Store one attempt's outcome: delivered, failed for good, or due again after back-off. Returns the state."""
    attempts = attempts_before + 1
    values: dict[str, Any] = {"attempts": attempts, "last_status": result.status,
                              "last_error": result.error}
    if result.ok:
        values.update(state="delivered", delivered_at=utcnow())
    elif attempts >= settings["WEBHOOK_MAX_ATTEMPTS"]:
        values.update(state="failed")
    else:
        delay = settings["WEBHOOK_BACKOFF_SECONDS"] * 2 ** (attempts - 1)
        values.update(next_attempt_at=utcnow() + timedelta(seconds=delay))
    begin_write(session)
    session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id,
                                                  WebhookDelivery.state == "pending").values(**values))
    session.commit()
    return str(values.get("state", "pending"))


def deliver_one(db: Database, settings: Mapping[str, Any], delivery_id: str) -> str:
    """Send one claimed delivery and record the outcome (no database snapshot is held during the POST)."""
    with db.session() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        hook = session.get(Webhook, delivery.webhook_id) if delivery is not None else None
        if delivery is None or hook is None or delivery.state != "pending":
            return "gone"
        url, secret, event, payload, attempts = hook.url, hook.secret, delivery.event, delivery.payload, \
            delivery.attempts
    result = post_event(url, secret, event=event, delivery_id=delivery_id, payload=payload,
                        limits=DeliveryLimits.from_settings(settings))
    if not result.ok:
        log.info("webhook delivery %s to %s failed: %s", delivery_id, url, result.error or result.status)
    with db.session() as session:
        return record_attempt(session, delivery_id, result, settings, attempts_before=attempts)


class OutboxDispatcher:
    """Delivers due outbox rows on its own thread and sender pool, with per-receiver concurrency limits."""

    def __init__(self, db: Database, settings: Mapping[str, Any]) -> None:
        self.db, self.settings = db, settings
        self.threads = max(1, int(settings["WEBHOOK_DELIVERY_THREADS"]))
        self.slots = ReceiverSlots(int(settings["WEBHOOK_RECEIVER_CONCURRENCY"]))
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="webhook-sender")
        self._in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-outbox", daemon=True)

    def start(self) -> OutboxDispatcher:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; attempts in flight end within their deadline (unfinished ones are retried later)."""
        self._stop.set()
        self._thread.join(timeout=timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.dispatch_once()
            except Exception:  # the database may be away for a while; try again shortly
                log.exception("webhook outbox round failed; retrying")
            self._stop.wait(min(0.5, float(self.settings["WEBHOOK_BACKOFF_SECONDS"])))

    def dispatch_once(self) -> int:
        """Claim and hand to the senders as many due deliveries as free senders and receiver slots allow."""
        with self._lock:
            free = self.threads - self._in_flight
        if free <= 0:
            return 0
        now = utcnow()
        with self.db.session() as session:
            rows = session.execute(
                select(WebhookDelivery.id, Webhook.url)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.next_attempt_at).limit(free * 5 + 20)).all()
        started = 0
        for delivery_id, url in rows:
            if started >= free or self._stop.is_set():
                break
            receiver = receiver_of(url)
            if not self.slots.try_acquire(receiver):
                continue  # this receiver is busy with as many attempts as it may have: others go first
            if not self._claim(delivery_id, now):
                self.slots.release(receiver)
                continue
            with self._lock:
                self._in_flight += 1
            self._pool.submit(self._send, delivery_id, receiver)
            started += 1
        return started

    def _claim(self, delivery_id: str, now: Any) -> bool:
        with self.db.session(write=True) as session:
            claimed = session.execute(update(WebhookDelivery).where(
                WebhookDelivery.id == delivery_id, WebhookDelivery.state == "pending",
                WebhookDelivery.next_attempt_at <= now).values(
                next_attempt_at=utcnow() + timedelta(seconds=lease_seconds(self.settings))))
            return claimed.rowcount == 1

    def _send(self, delivery_id: str, receiver: str) -> None:
        try:
            deliver_one(self.db, self.settings, delivery_id)
        except Exception:  # recorded nothing: the lease runs out and the delivery is tried again
            log.exception("webhook delivery %s failed unexpectedly", delivery_id)
        finally:
            self.slots.release(receiver)
            with self._lock:
                self._in_flight -= 1
