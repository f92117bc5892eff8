"""Merchant API keys.

A key looks like ``msk_<lookup>_<secret>``: random, shown once, stored only as a SHA-256 hash (the key
is high-entropy, so a fast hash is enough) and compared in constant time. The merchant of a request
always comes from its key, never from the request body or URL.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from media_service.db import begin_write, end_read, get_session
from media_service.errors import Forbidden, Unauthorized
from media_service.models import ApiKey, Merchant, utcnow

KEY_PREFIX = "msk"
LAST_USED_RESOLUTION = timedelta(minutes=5)
ALL_SCOPES = ("assets:read", "assets:write", "jobs:read", "jobs:write", "webhooks:manage")

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Principal:
    """Who is calling: the merchant and what the credential may do.

    ``restriction`` is set for limited credentials (buyer upload tokens): ``require`` calls it on every
    request, and it raises when this request is not one the credential may make. A credential good for
    creating one thing has a ``creation_key``: it is the idempotency key of every creation it makes, so a
    repeat (the answer to the first was lost) returns the first instead of making a second.
    """

    merchant_id: str
    scopes: frozenset[str]
    key_id: str
    restriction: Callable[[], None] | None = None
    creation_key: str | None = None


#: Verifiers of credentials other than API keys, by token prefix (``mut`` = buyer upload tokens). Each
#: returns the principal (merchant always from the stored credential) or raises Unauthorized.
TokenVerifier = Callable[[Session, str], Principal]
TOKEN_VERIFIERS: dict[str, TokenVerifier] = {}


def register_token_verifier(prefix: str, verifier: TokenVerifier) -> None:
    """Let ``Authorization: Bearer <prefix>_...`` credentials be checked by ``verifier``."""
    TOKEN_VERIFIERS[prefix] = verifier


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_merchant(session: Session, name: str, *, scopes: tuple[str, ...] = ALL_SCOPES) -> tuple[Merchant, str]:
    """Create a merchant with one API key; returns the merchant and the key (shown once)."""
    merchant = Merchant(name=name)
    session.add(merchant)
    session.flush()
    return merchant, create_api_key(session, merchant.id, label="default", scopes=scopes)


def create_api_key(session: Session, merchant_id: str, *, label: str = "",
                   scopes: tuple[str, ...] = ALL_SCOPES) -> str:
    unknown = set(scopes) - set(ALL_SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes {sorted(unknown)}; valid: {', '.join(ALL_SCOPES)}")
    lookup = secrets.token_hex(8)
    key = f"{KEY_PREFIX}_{lookup}_{secrets.token_urlsafe(32)}"
    session.add(ApiKey(merchant_id=merchant_id, lookup=lookup, key_hash=_hash(key), label=label,
                       scopes=list(scopes)))
    session.flush()
    return key


def verify_api_key(session: Session, key: str) -> Principal | None:
    """The principal of a valid, unrevoked key, else ``None``."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.lookup == parts[1]))
    if row is None or row.revoked_at is not None:
        _hash(key)  # same work either way
        return None
    if not hmac.compare_digest(row.key_hash, _hash(key)):
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        # written at most every few minutes, so requests do not all write
        begin_write(session)
        session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        session.commit()
    return Principal(merchant_id=row.merchant_id, scopes=frozenset(row.scopes), key_id=row.id)


def authenticate() -> Principal:
    """The request's principal from ``Authorization: Bearer``; 401 otherwise."""
    if "principal" in g:
        return g.principal
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send your API key as 'Authorization: Bearer msk_...'; "
                           "create one with 'media-service merchants create NAME'")
    session = get_session()
    token = token.strip()
    verifier = TOKEN_VERIFIERS.get(token.split("_", 1)[0])
    principal = verifier(session, token) if verifier is not None else verify_api_key(session, token)
    if principal is None:
        raise Unauthorized("the API key is not valid or was revoked", code="invalid_api_key")
    end_read(session)
    g.principal = principal
    return principal


def require(scope: str) -> Callable[[F], F]:
    """Decorator: the view needs an authenticated caller holding ``scope``."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = authenticate()
            if principal.restriction is not None:
                principal.restriction()
            if scope not in principal.scopes:
                raise Forbidden(f"this API key lacks the '{scope}' scope", code="missing_scope")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def current_merchant_id() -> str:
    return authenticate().merchant_id
