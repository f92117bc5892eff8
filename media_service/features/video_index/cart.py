"""Add to cart: signed cart tokens in tap answers, the merchant's cart webhook and its confirmation.

Confirming writes the delivery to the webhook outbox first, so a merchant endpoint that is down gets it
later (retried by the workers); the shopper's answer says ``delivered`` or ``queued``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from media_service.db import begin_write
from media_service.errors import BadRequest, Forbidden, NotFound
from media_service.features.products.service import (
    check_sku,
    get_product,
    product_card,
)
from media_service.models import Asset, Webhook, WebhookDelivery, utcnow
from media_service.security.tokens import TokenCodec, TokenInvalid
from media_service.webhooks import (
    DeliveryLimits,
    ReceiverSlots,
    check_webhook_url,
    new_secret,
    post_event,
    receiver_of,
)
from media_service.webhooks.outbox import lease_seconds, record_attempt

CART_EVENT = "cart.add"
CART_TOKEN_PREFIX = "mct1"


CART_TOKENS = TokenCodec(CART_TOKEN_PREFIX, b"media-service cart token v1")


def cart_token(secret: str, merchant_id: str, asset_id: str, skus: Sequence[str], t: float,
               track_id: str | None, seconds: int) -> dict[str, Any]:
    """A signed token naming what a tap offered; confirming the cart with it proves the offer was ours."""
    expires = int(time.time()) + seconds
    token = CART_TOKENS.encode(secret, {"m": merchant_id, "a": asset_id, "s": list(skus), "t": round(t, 3),
                                        "k": track_id, "e": expires})
    return {"token": token, "expires_at": expires}


def read_cart_token(secret: str, token: Any) -> dict[str, Any]:
    """The payload of a valid, unexpired cart token; 403 for anything else."""
    try:
        return CART_TOKENS.decode(secret, token)
    except TokenInvalid as exc:
        if exc.expired:
            raise Forbidden("cart_token expired; tap the product again", code="cart_token_expired") from None
        raise Forbidden("cart_token is not valid; tap the product again", code="invalid_cart_token") from None


def cart_webhook(session: Session, merchant_id: str) -> Webhook | None:
    hooks = session.scalars(select(Webhook).where(Webhook.merchant_id == merchant_id)).all()
    return next((hook for hook in hooks if hook.events == [CART_EVENT]), None)


def put_cart_webhook(session: Session, settings: Mapping[str, Any], merchant_id: str, url: Any,
                     rotate: bool = False) -> tuple[Webhook, bool]:
    """Create or change the merchant's cart webhook (a webhook row subscribed to ``cart.add`` only)."""
    if not isinstance(url, str) or len(url) > 2000:
        raise BadRequest("url must be a string of at most 2000 characters", code="invalid_webhook_url")
    check_webhook_url(url, allow_private=settings["WEBHOOK_ALLOW_PRIVATE_NETWORKS"])
    hook = cart_webhook(session, merchant_id)
    begin_write(session)
    fresh = hook is None
    if hook is None:
        hook = Webhook(merchant_id=merchant_id, url=url, events=[CART_EVENT], secret=new_secret())
        session.add(hook)
    else:
        hook.url = url
        if rotate:
            hook.secret = new_secret()
    session.commit()
    return hook, fresh or rotate


def confirm_cart(session: Session, settings: Mapping[str, Any], merchant_id: str, asset: Asset, video_id: str,
                 body: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The shopper confirmed "add to cart": call the merchant's cart webhook (signed) and say how it went.

    The delivery is written to the webhook outbox first, so a merchant endpoint that is down gets it
    later (retried by the workers); the shopper's answer says ``delivered`` or ``queued``.
    """
    unknown = sorted(set(body) - {"cart_token", "sku", "quantity", "shopper_ref"})
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}", code="unknown_fields")
    claims = read_cart_token(settings["SECRET_KEY"], body.get("cart_token"))
    if claims.get("m") != merchant_id or claims.get("a") != asset.id:
        raise Forbidden("cart_token was issued for another video", code="invalid_cart_token")
    sku = check_sku(body.get("sku"))
    if sku not in claims.get("s", []):
        raise BadRequest(f"SKU {sku!r} was not offered by this tap; choose one of its candidates",
                         code="sku_not_offered")
    quantity = body.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 999:
        raise BadRequest("quantity must be a whole number from 1 to 999", code="invalid_quantity")
    shopper_ref = body.get("shopper_ref")
    if shopper_ref is not None and (not isinstance(shopper_ref, str) or len(shopper_ref) > 200):
        raise BadRequest("shopper_ref must be a string of at most 200 characters", code="invalid_shopper_ref")
    product = get_product(session, merchant_id, sku)
    card = product_card(session, product)
    hook = cart_webhook(session, merchant_id)
    if hook is None:
        return {"state": "no_webhook", "product": card, "delivery_id": None,
                "detail": "this shop has no cart webhook; send the shopper to the product's url"}, 200
    payload = {"event": CART_EVENT, "created_at": utcnow().isoformat(), "data": {
        **{k: card[k] for k in ("sku", "title", "price", "currency", "url")}, "quantity": quantity,
        "video_id": video_id, "asset_id": asset.id, "t": claims.get("t"), "track_id": claims.get("k"),
        "shopper_ref": shopper_ref}}
    begin_write(session)
    # Leased for this request (next_attempt_at in the future), so a worker does not send it meanwhile.
    delivery = WebhookDelivery(webhook_id=hook.id, event=CART_EVENT, payload=payload,
                               next_attempt_at=utcnow() + timedelta(seconds=lease_seconds(settings)))
    session.add(delivery)
    session.commit()
    delivery_id, url, secret = delivery.id, hook.url, hook.secret
    receiver = receiver_of(url)
    if not _CART_SLOTS.get(settings).try_acquire(receiver):
        # This shop's receiver is already busy with shoppers of this process: the workers deliver it.
        begin_write(session)
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(
            next_attempt_at=utcnow()))
        session.commit()
        return {"state": "queued", "product": card, "delivery_id": delivery_id, "merchant_status": None,
                "merchant_response": None}, 202
    try:
        result = post_event(url, secret, event=CART_EVENT, delivery_id=delivery_id, payload=payload,
                            limits=DeliveryLimits.from_settings(settings))
    finally:
        _CART_SLOTS.get(settings).release(receiver)
    state = record_attempt(session, delivery_id, result, settings, attempts_before=0)
    delivered = state == "delivered"
    return {"state": "delivered" if delivered else "queued", "product": card, "delivery_id": delivery_id,
            "merchant_status": result.status, "merchant_response": result.json_reply()}, 200 if delivered else 202


class _ProcessSlots:
    """The web process's per-receiver limit of cart posts made inside requests (created on first use)."""

    def __init__(self) -> None:
        self._slots: ReceiverSlots | None = None
        self._lock = threading.Lock()

    def get(self, settings: Mapping[str, Any]) -> ReceiverSlots:
        with self._lock:
            if self._slots is None:
                self._slots = ReceiverSlots(int(settings["WEBHOOK_RECEIVER_CONCURRENCY"]))
            return self._slots


_CART_SLOTS = _ProcessSlots()


def delete_cart_webhook(session: Session, merchant_id: str) -> None:
    hook = cart_webhook(session, merchant_id)
    if hook is None:
        raise NotFound("this shop has no cart webhook", code="cart_webhook_not_found")
    begin_write(session)
    session.delete(hook)
    session.commit()
