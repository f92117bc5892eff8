"""One signed-token codec for the bearer tokens the service hands to browsers (embed and cart tokens).

A token is ``<prefix>.<base64url JSON payload>.<base64url HMAC-SHA256>``, keyed by a key derived from the
instance secret and the token's purpose, so a token of one kind can never pass as another. The format is
ours, not JWT: there is no algorithm to negotiate (``alg: none`` cannot exist). Every payload carries its
expiry ``e`` (unix seconds).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

MAX_TOKEN_LENGTH = 4096


class TokenInvalid(Exception):
    """The token is malformed, forged, of another kind or (``expired``) past its expiry."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


@dataclass(frozen=True)
class TokenCodec:
    """Signs and checks tokens of one kind: ``prefix`` (e.g. ``met1``) and the key-derivation ``purpose``."""

    prefix: str
    purpose: bytes

    def _key(self, secret: str) -> bytes:
        return hmac.new(secret.encode(), self.purpose, hashlib.sha256).digest()

    def encode(self, secret: str, payload: dict[str, Any]) -> str:
        """A signed token for ``payload`` (which must hold its expiry ``e``)."""
        body = f"{self.prefix}.{_b64(json.dumps(payload, separators=(',', ':')).encode())}"
        return f"{body}.{_b64(hmac.new(self._key(secret), body.encode(), hashlib.sha256).digest())}"

    def decode(self, secret: str, token: object) -> dict[str, Any]:
        """The payload of a valid, unexpired token; raises ``TokenInvalid`` for anything else."""
        parts = token.split(".") if isinstance(token, str) and len(token) <= MAX_TOKEN_LENGTH else []
        if len(parts) != 3 or parts[0] != self.prefix:
            raise TokenInvalid()
        expected = hmac.new(self._key(secret), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            signature = _unb64(parts[2])
            payload = json.loads(_unb64(parts[1]))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise TokenInvalid() from None
        if not hmac.compare_digest(expected, signature) or not isinstance(payload, dict):
            raise TokenInvalid()
        expires = payload.get("e")
        if not isinstance(expires, int | float) or expires < time.time():
            raise TokenInvalid(expired=True)
        return payload


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
