"""Webhooks, a platform package: signing, the SSRF-checked target, one bounded POST, the outbox.

Job completions and cart confirmations are reported through the same outbox and the same ``post_event``
(one set of headers, one deadline, one response cap, one address check).
"""

from media_service.webhooks.addresses import check_webhook_url, is_public_address, resolve_target
from media_service.webhooks.delivery import DeliveryLimits, PostResult, ReceiverSlots, post_event, receiver_of
from media_service.webhooks.outbox import (
    JOB_EVENTS,
    OutboxDispatcher,
    deliver_one,
    known_events,
    record_event,
    record_job_event,
    register_events,
)
from media_service.webhooks.signing import SIGNATURE_HEADER, new_secret, sign, verify_signature

__all__ = [
    "JOB_EVENTS", "SIGNATURE_HEADER", "DeliveryLimits", "OutboxDispatcher", "PostResult", "ReceiverSlots",
    "check_webhook_url", "deliver_one", "is_public_address", "known_events", "new_secret", "post_event",
    "receiver_of", "record_event", "record_job_event", "register_events", "resolve_target", "sign", "verify_signature",
]
