"""Signed, expiring links: the one HMAC scheme behind every URL the API hands out for files.

A link names what it opens (``parts``: a storage key; a video, purpose and folder; a track's cut-out) and
when it stops working; its signature is HMAC-SHA256 of those, one per line, with ``SECRET_KEY``. Expiries
are rounded up to 10 minutes, so repeated answers carry the same URL and caches can keep the file.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from media_service.errors import Forbidden


def link_expiry(lifetime_seconds: int) -> int:
    """When a link made now for ``lifetime_seconds`` stops working (rounded, see above)."""
    return (int(time.time()) // 600 + 1) * 600 + int(lifetime_seconds)


def link_signature(secret: str, *parts: object) -> str:
    return hmac.new(secret.encode(), "\n".join(map(str, parts)).encode(), hashlib.sha256).hexdigest()


def check_link(secret: str, parts: tuple[object, ...], expires: object, signature: str | None, *,
               fresh: str = "ask the API for a fresh URL") -> int:
    """The expiry of a valid link to ``parts``; 403 saying how to get a fresh one otherwise."""
    try:
        expires_at = int(str(expires))
    except ValueError:
        raise Forbidden(f"this link is not signed; {fresh}", code="invalid_signature") from None
    if not hmac.compare_digest(link_signature(secret, *parts, expires_at), signature or ""):
        raise Forbidden(f"this link's signature is not valid; {fresh}", code="invalid_signature")
    if expires_at < time.time():
        raise Forbidden(f"this link expired; {fresh}", code="link_expired")
    return expires_at
