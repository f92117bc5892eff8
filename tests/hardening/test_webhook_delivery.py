"""One webhook POST is bounded: total deadline, capped answer, pinned address, refused address families.

Receivers are real sockets on 127.0.0.1 (tests/hardening/receivers.py); nothing leaves the machine.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from media_service.errors import BadRequest
from media_service.models import Webhook, WebhookDelivery
from media_service.webhooks import (
    DeliveryLimits,
    OutboxDispatcher,
    check_webhook_url,
    deliver_one,
    is_public_address,
    post_event,
    verify_signature,
)
from tests.conftest import REPO, MerchantCredentials
from tests.hardening.receivers import Receiver

LIMITS = DeliveryLimits(deadline_seconds=1.0, max_response_bytes=4096, allow_private=True)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


def _receiver(made: list[Receiver], **kwargs: Any) -> Receiver:
    receiver = Receiver(**kwargs)
    made.append(receiver)
    return receiver


def _post(url: str, limits: DeliveryLimits = LIMITS) -> tuple[Any, float]:
    start = time.monotonic()
    result = post_event(url, "whsec_test", event="job.succeeded", delivery_id="dlv_1", payload={"a": 1},
                        limits=limits)
    return result, time.monotonic() - start


@pytest.mark.parametrize("mode", ["drip", "silent"])
def test_a_slow_or_silent_receiver_is_cut_at_the_deadline(receivers: list[Receiver], mode: str) -> None:
    """Before: per-read timeouts only, so 1 byte every 0.3 s kept the POST open for 300 s."""
    receiver = _receiver(receivers, mode=mode, drip_seconds=0.3)
    result, took = _post(receiver.url)
    assert result.status is None and "deadline" in (result.error or "")
    assert took < LIMITS.deadline_seconds + 1.0, took
    assert len(receiver.calls) == 1  # the request itself arrived


def test_an_endless_answer_is_read_up_to_the_cap(receivers: list[Receiver]) -> None:
    receiver = _receiver(receivers, mode="flood")
    result, took = _post(receiver.url)
    assert result.status == 200 and len(result.body) == LIMITS.max_response_bytes
    assert took < LIMITS.deadline_seconds + 1.0


def test_every_post_is_signed_and_carries_the_delivery_id_as_idempotency_key(receivers: list[Receiver]) -> None:
    receiver = _receiver(receivers)
    result, _ = _post(receiver.url)
    assert result.ok
    call = receiver.calls[0]
    assert call.headers["Idempotency-Key"] == call.headers["Media-Service-Delivery"] == "dlv_1"
    assert verify_signature("whsec_test", call.body, call.headers["Media-Service-Signature"])


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fe80::1", "fd00::1",
    "64:ff9b::7f00:1",      # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",   # NAT64 of the cloud metadata address
    "64:ff9b:1::a00:1",     # local-use NAT64
    "::7f00:1",             # IPv4-compatible ::127.0.0.1
    "::808:808",            # IPv4-compatible form of even a public address: not routable as such
    "::ffff:10.0.0.1",      # IPv4-mapped
    "2002:7f00:1::1",       # 6to4 of 127.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
])
def test_private_and_translated_addresses_are_refused(address: str) -> None:
    assert not is_public_address(address)
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(BadRequest) as refused:
        check_webhook_url(f"https://{host}/hook", allow_private=False)
    assert refused.value.code == "invalid_webhook_url"


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "2002:808:808::1", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.parametrize("url", ["https://x:99999/h", "https://[::1/h", "ftp://x/h", "https://u:p@x/h",
                                 "https://x:0/h", "http://a b/h"])
def test_malformed_urls_are_a_400(url: str) -> None:
    with pytest.raises(BadRequest) as refused:
        check_webhook_url(url, allow_private=True)
    assert refused.value.code == "invalid_webhook_url"


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(receivers: list[Receiver],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the first answer is the allowed receiver, any later one a private canary."""
    good = _receiver(receivers)
    canary = _receiver(receivers, host="127.0.0.2", port=good.port)
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        answer = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return real(answer, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    result, _ = _post(f"http://rebind.test:{good.port}/hook")
    assert result.ok, result.error
    assert lookups == ["rebind.test"]
    assert len(good.calls) == 1 and canary.connections == 0
    assert good.calls[0].headers["Host"] == f"rebind.test:{good.port}"


def test_the_webhooks_package_does_not_import_the_job_queue() -> None:
    code = ("import sys, media_service.webhooks as w; w.record_job_event; "
            "print('media_service.jobs.queue' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


def _delivery(app: Flask, merchant_id: str, url: str, count: int) -> list[str]:
    with app.extensions["database"].session() as session:
        hook = Webhook(merchant_id=merchant_id, url=url, events=[], secret="whsec_x")
        session.add(hook)
        session.flush()
        rows = [WebhookDelivery(webhook_id=hook.id, event="job.succeeded", payload={"n": n}) for n in range(count)]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def test_outbox_attempts_carry_the_same_headers(app: Flask, merchant: MerchantCredentials,
                                                receivers: list[Receiver]) -> None:
    receiver = _receiver(receivers)
    [delivery_id] = _delivery(app, merchant.merchant_id, receiver.url, 1)
    assert deliver_one(app.extensions["database"], app.config, delivery_id) == "delivered"
    headers = receiver.calls[0].headers
    assert headers["Idempotency-Key"] == headers["Media-Service-Delivery"] == delivery_id


def test_a_slow_receiver_delays_only_itself(app: Flask, merchant: MerchantCredentials,
                                            other_merchant: MerchantCredentials, receivers: list[Receiver]) -> None:
    """Six deliveries to a dripping receiver and six to a prompt one, four senders: the prompt ones go at once."""
    slow = _receiver(receivers, mode="drip", drip_seconds=0.5)
    fast = _receiver(receivers)
    _delivery(app, merchant.merchant_id, slow.url, 6)
    _delivery(app, other_merchant.merchant_id, fast.url, 6)
    settings = {**app.config, "WEBHOOK_TIMEOUT_SECONDS": 3.0, "WEBHOOK_DELIVERY_THREADS": 4,
                "WEBHOOK_RECEIVER_CONCURRENCY": 2}
    dispatcher = OutboxDispatcher(app.extensions["database"], settings).start()
    start = time.monotonic()
    try:
        while len(fast.calls) < 6 and time.monotonic() - start < 20:
            time.sleep(0.05)
        fast_done = time.monotonic() - start
        busy_slow = len(slow.calls)
    finally:
        dispatcher.stop(timeout=10)
    assert len(fast.calls) == 6
    assert fast_done < 2.5, fast_done  # one slow attempt lasts 3 s: the prompt receiver did not wait for it
    assert busy_slow <= 2  # at most WEBHOOK_RECEIVER_CONCURRENCY attempts at the slow receiver at once
