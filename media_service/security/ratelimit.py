"""Rate limits for what anyone holding a public embed token can call: taps, add to cart, widget events.

An embed token sits in a merchant's page, so a script can use it as well as a shopper. Each caller (the
token and the client address) gets a token bucket: ``SHOPPER_RATE_BURST`` requests at once, refilled at
``SHOPPER_RATE_PER_MINUTE``. Over it, the answer is 429 with ``Retry-After``, before any work is done.
The buckets live in each web process (memory bounded by an LRU of callers), so with N processes a caller
may get up to N times the rate; that bounds abuse without a shared store.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from media_service.errors import TooManyRequests

MAX_CALLERS = 10_000


class RateLimiter:
    """Token buckets by caller key; thread-safe."""

    def __init__(self, per_minute: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, key: str, cost: int = 1, *, what: str = "requests from this viewer") -> None:
        """Spend ``cost`` (a request, or the events of a batch) of ``key``'s bucket, all or nothing, or raise
        ``TooManyRequests`` saying when to retry (``what`` names what was too much in its message)."""
        if not 1 <= cost <= self.burst:
            raise ValueError(f"a cost of {cost} can never fit a bucket of {self.burst:g}")
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < cost:
                self._buckets[key] = (tokens, now)
                wait = math.ceil((cost - tokens) / self.rate)
                raise TooManyRequests(f"too many {what}; retry in {wait} s", retry_after=wait)
            self._buckets[key] = (tokens - cost, now)
            while len(self._buckets) > MAX_CALLERS:
                self._buckets.popitem(last=False)


def caller_key(credential: str, address: str | None) -> str:
    """A bucket key for a credential used from an address (the credential itself is not kept)."""
    return hashlib.sha256(f"{credential}\n{address or ''}".encode()).hexdigest()[:32]
