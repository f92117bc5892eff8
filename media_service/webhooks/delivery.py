"""One webhook POST, bounded in every way a receiver could stretch it.

``post_event`` is the only function that sends a webhook; the outbox (worker) and the cart confirmation
(web request) both call it, so every attempt carries the same headers (signature, event, delivery id and
``Idempotency-Key`` = delivery id) and the same limits:

- a total deadline per attempt (resolve, connect, TLS, send, headers, body): a watchdog shuts the socket
  down when it passes, so a receiver that drips one byte every few seconds is cut like a silent one;
- the answer body is read up to ``max_response_bytes`` and the rest is never read;
- the connection goes to an address that passed the SSRF check in the same attempt (no second lookup);
- redirects are not followed.

``ReceiverSlots`` bounds how many attempts run at once per receiver, so a slow receiver delays only itself.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from media_service.errors import BadRequest
from media_service.webhooks.addresses import Target, parse_webhook_url, resolve_target
from media_service.webhooks.signing import SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)

USER_AGENT = "media-service-webhooks/1"
ERROR_TEXT_CHARS = 500


@dataclass(frozen=True)
class DeliveryLimits:
    """How long one attempt may take, how much of the answer is read, whether private hosts are allowed."""

    deadline_seconds: float = 5.0
    max_response_bytes: int = 64 * 1024
    allow_private: bool = False

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> DeliveryLimits:
        return cls(deadline_seconds=float(settings["WEBHOOK_TIMEOUT_SECONDS"]),
                   max_response_bytes=int(settings["WEBHOOK_MAX_RESPONSE_BYTES"]),
                   allow_private=bool(settings["WEBHOOK_ALLOW_PRIVATE_NETWORKS"]))


@dataclass(frozen=True)
class PostResult:
    """What one attempt got: the HTTP status (None when no answer), an error text, the (capped) answer body."""

    status: int | None
    error: str | None
    body: bytes = b""
    content_type: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def json_reply(self, max_bytes: int = 8192) -> Any:
        """The answer as JSON when it is a small JSON document, else None."""
        if not self.content_type.startswith("application/json") or len(self.body) > max_bytes:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None


def event_body(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed) for a payload."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def event_headers(secret: str, body: bytes, *, event: str, delivery_id: str) -> dict[str, str]:
    """Headers of every webhook POST; the delivery id doubles as the receiver's idempotency key."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Media-Service-Event": event,
        "Media-Service-Delivery": delivery_id,
        "Idempotency-Key": delivery_id,
        SIGNATURE_HEADER: sign(secret, body, int(time.time())),
    }


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to a given address; ``Host`` stays the URL's host."""

    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a given address; the certificate is checked for the URL's host (SNI too)."""

    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock  # visible to the watchdog during the handshake
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _Watchdog:
    """Shuts a connection's socket down when the deadline passes (unblocks a read in progress)."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._connection: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._connection = connection

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sock = self._connection.sock if self._connection is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def post_event(url: str, secret: str, *, event: str, delivery_id: str, payload: Mapping[str, Any],
               limits: DeliveryLimits) -> PostResult:
    """Send one signed webhook attempt within ``limits``; never raises for network or receiver trouble."""
    start = time.monotonic()
    body = event_body(payload)
    headers = event_headers(secret, body, event=event, delivery_id=delivery_id)
    try:
        target = resolve_target(url, allow_private=limits.allow_private)
    except BadRequest as exc:
        return PostResult(None, exc.detail[:ERROR_TEXT_CHARS])
    watchdog = _Watchdog(limits.deadline_seconds - (time.monotonic() - start))
    connection: http.client.HTTPConnection | None = None
    try:
        last_error: Exception | None = None
        for address in target.addresses:
            remaining = limits.deadline_seconds - (time.monotonic() - start)
            if remaining <= 0 or watchdog.fired:
                break
            cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
            connection = cls(target, address, timeout=remaining)
            watchdog.watch(connection)
            try:
                connection.connect()
                break
            except OSError as exc:
                last_error = exc
                connection.close()
                connection = None
        if connection is None:
            reason = last_error or TimeoutError("no address answered")
            timed_out = watchdog.fired or isinstance(reason, TimeoutError)
            return PostResult(None, _deadline_text(limits) if timed_out else f"connection failed: {reason}"[:500])
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read(limits.max_response_bytes)
        content_type = response.getheader("Content-Type", "") or ""
        status = response.status
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # the socket's own timeout is the time left until the deadline: whichever of it and the watchdog
        # fires first, the attempt ran out of its deadline
        timed_out = isinstance(exc, TimeoutError) or watchdog.fired
        return PostResult(None, _deadline_text(limits) if timed_out else f"{type(exc).__name__}: {exc}"[:500])
    finally:
        watchdog.cancel()
        if connection is not None:
            connection.close()
    if watchdog.fired:  # the answer arrived, but not in time: treat as not delivered (the receiver may retry)
        return PostResult(None, _deadline_text(limits))
    error = None if 200 <= status < 300 else data[:ERROR_TEXT_CHARS].decode("utf-8", "replace")
    return PostResult(status, error, data, content_type)


def _deadline_text(limits: DeliveryLimits) -> str:
    return f"no complete answer within {limits.deadline_seconds:g} s (webhook deadline)"


class ReceiverSlots:
    """At most ``per_receiver`` attempts at a time to one receiver (scheme://host:port) in this process."""

    def __init__(self, per_receiver: int) -> None:
        self.per_receiver = max(1, per_receiver)
        self._busy: Counter[str] = Counter()
        self._lock = threading.Lock()

    def try_acquire(self, receiver: str) -> bool:
        with self._lock:
            if self._busy[receiver] >= self.per_receiver:
                return False
            self._busy[receiver] += 1
            return True

    def release(self, receiver: str) -> None:
        with self._lock:
            self._busy[receiver] -= 1
            if self._busy[receiver] <= 0:
                del self._busy[receiver]

    def busy(self, receiver: str) -> int:
        with self._lock:
            return self._busy[receiver]


def receiver_of(url: str) -> str:
    """The receiver key of a URL without resolving it (for concurrency limits); the URL itself when unparsable."""
    try:
        scheme, host, port, _path = parse_webhook_url(url)
    except BadRequest:
        return url
    return f"{scheme}://{host.lower()}:{port}"
