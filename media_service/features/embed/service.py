"""Embedding media on merchants' pages: short-lived embed tokens, origin checks and embed manifests.

An embed token binds one merchant, one target (an image asset, a panorama, a spin or a video) and the
exact origins allowed to show it, until it expires. Its format is ours, not JWT, so there is no
algorithm to negotiate (``alg: none`` cannot exist): ``met1.<base64url payload>.<base64url HMAC-SHA256>``,
keyed by a key derived from the instance secret.

Features list an *embed provider* per target kind in their ``Feature``; it turns a target id into the mode-specific part
of the manifest the widget renders.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import idna
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from media_service.db import begin_write
from media_service.errors import BadRequest, Forbidden, NotFound, Unauthorized
from media_service.feature import EmbedProvider
from media_service.models import EmbedEventCount, EmbedSettings, utcnow
from media_service.security.tokens import TokenCodec, TokenInvalid

TOKEN_PREFIX = "met1"
MAX_TTL_SECONDS = 7 * 24 * 3600
MAX_ORIGINS = 20

_PROVIDERS: dict[str, EmbedProvider] = {}


def register_providers(providers: Mapping[str, EmbedProvider]) -> None:
    """Make the features' embed providers known (from ``media_service.features``): kind -> describer."""
    _PROVIDERS.update(providers)


def embeddable_kinds() -> list[str]:
    return sorted(_PROVIDERS)


def describe_target(session: Session, kind: str, merchant_id: str, target_id: str) -> dict[str, Any]:
    provider = _PROVIDERS.get(kind)
    if provider is None:
        raise BadRequest(f"targets of kind {kind!r} cannot be embedded; use one of {', '.join(embeddable_kinds())}",
                         code="not_embeddable")
    return provider(session, merchant_id, target_id)


def kind_of(target_id: str) -> str:
    """The target kind from an id's prefix (``ast_``, ``pan_``, ``spn_``, ``vid_``)."""
    prefix = target_id.split("_", 1)[0]
    kinds = {"ast": "asset", "pan": "panorama", "spn": "spin", "vid": "video", "cmp": "campaign"}
    if prefix not in kinds:
        raise BadRequest(f"cannot embed {target_id!r}: give the id of an image asset, a panorama, a spin or a video",
                         code="not_embeddable")
    return kinds[prefix]


_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _origin_error(origin: str, why: str) -> BadRequest:
    return BadRequest(f"origin {origin[:100]!r} {why}", code="invalid_origin")


def _ascii_host(origin: str, hostname: str) -> str:
    """The host as a browser sends it in ``Origin``: IDNA (punycode) for names, ``[...]`` for IPv6."""
    if ":" in hostname:
        if "%" in hostname:  # a zone id (fe80::1%eth0) never appears in a browser's Origin
            raise _origin_error(origin, "must not carry an IPv6 zone id")
        try:
            return f"[{ipaddress.IPv6Address(hostname).compressed}]"
        except ValueError:
            raise _origin_error(origin, "has an invalid IPv6 address") from None
    try:
        ascii_host = idna.encode(hostname.rstrip("."), uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        raise _origin_error(origin, "has a host name that is not a valid (internationalised) domain name") from None
    if not all(_HOST_LABEL.match(label) for label in ascii_host.split(".")):
        raise _origin_error(origin, "has a host name that is not a valid domain name")
    return ascii_host


def normalise_origin(origin: str) -> str:
    """``https://shop.example`` exactly: scheme and host (and port), no path, no wildcard.

    The result is what a browser sends in ``Origin``: a non-ASCII host in punycode (``bücher.example`` is
    ``xn--bcher-kva.example``), the default port dropped; a port outside 1-65535 or a broken IPv6 literal
    is a 400, never silently another origin.
    """
    text = origin.strip()
    if len(text) > 300 or any(c.isspace() or not c.isprintable() for c in text):
        raise _origin_error(origin, "must be scheme://host[:port] without spaces or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise _origin_error(origin, "must be scheme://host[:port] with a valid host and a port of 1-65535") from None
    if port == 0:
        raise _origin_error(origin, "must not use port 0")
    hostname = parts.hostname
    local = hostname in _LOCAL_HOSTS
    if parts.scheme not in {"https", "http"} or (parts.scheme == "http" and not local) or not hostname:
        raise _origin_error(origin, "must be https://host[:port] (http only for localhost)")
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username or "*" in text:
        raise _origin_error(origin, "must be exactly scheme://host[:port], without path or wildcard")
    default_port = {"https": 443, "http": 80}[parts.scheme]
    port_text = f":{port}" if port and port != default_port else ""
    return f"{parts.scheme}://{_ascii_host(origin, hostname)}{port_text}"


@dataclass(frozen=True)
class EmbedGrant:
    merchant_id: str
    kind: str
    target_id: str
    origins: tuple[str, ...]
    expires_at: int


EMBED_TOKENS = TokenCodec(TOKEN_PREFIX, b"media-service embed token v1")


def mint_token(secret: str, *, merchant_id: str, kind: str, target_id: str, origins: list[str],
               ttl_seconds: int) -> tuple[str, EmbedGrant]:
    if not 60 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise BadRequest(f"ttl_seconds must be between 60 and {MAX_TTL_SECONDS}", code="invalid_ttl")
    if not origins or len(origins) > MAX_ORIGINS:
        raise BadRequest(f"give 1-{MAX_ORIGINS} origins allowed to show the embed", code="invalid_origin")
    grant = EmbedGrant(merchant_id, kind, target_id, tuple(sorted({normalise_origin(o) for o in origins})),
                       int(time.time()) + ttl_seconds)
    token = EMBED_TOKENS.encode(secret, {"m": grant.merchant_id, "k": grant.kind, "t": grant.target_id,
                                         "o": grant.origins, "e": grant.expires_at, "n": secrets.token_hex(6)})
    return token, grant


def read_token(secret: str, token: str) -> EmbedGrant:
    """The grant of a valid, unexpired token; 401 for anything else (tampered, foreign, expired, malformed)."""
    try:
        payload = EMBED_TOKENS.decode(secret, token)
    except TokenInvalid as exc:
        if exc.expired:
            raise Unauthorized("this embed token expired; the page must fetch a fresh one",
                               code="embed_token_expired") from None
        raise Unauthorized("this embed token is not valid; ask the merchant's backend for a new one",
                           code="invalid_embed_token") from None
    return EmbedGrant(payload["m"], payload["k"], payload["t"], tuple(payload["o"]), payload["e"])


def check_origin(grant: EmbedGrant, origin: str | None, own_origin: str) -> str | None:
    """The origin to echo in CORS headers; 403 when a browser calls from an origin the token does not name."""
    if origin is None or origin == own_origin:
        return None
    if origin not in grant.origins:
        raise Forbidden("this embed is not allowed on this site; the merchant must mint a token for this origin",
                        code="origin_not_allowed")
    return origin


def allowed_origins(session: Session, merchant_id: str) -> list[str]:
    """The merchant's allowed origins (empty: any origin may be named in a token)."""
    settings = session.get(EmbedSettings, merchant_id)
    return list(settings.allowed_origins) if settings else []


def set_allowed_origins(session: Session, merchant_id: str, origins: object) -> list[str]:
    """Replace the merchant's allowed origins (each exactly scheme://host[:port]); returns them normalised."""
    if not isinstance(origins, list) or len(origins) > 100 or not all(isinstance(o, str) for o in origins):
        raise BadRequest("allowed_origins must be a list of at most 100 origins", code="invalid_origin")
    normalised = sorted({normalise_origin(o) for o in origins})
    begin_write(session)
    settings = session.get(EmbedSettings, merchant_id)
    if settings is None:
        settings = EmbedSettings(merchant_id=merchant_id)
        session.add(settings)
    settings.allowed_origins, settings.updated_at = normalised, utcnow()
    session.commit()
    return normalised


def mint_for_target(session: Session, secret: str, merchant_id: str, target_id: object, origins: object,
                    ttl_seconds: object = 3600) -> tuple[str, EmbedGrant]:
    """An embed token for one of the merchant's items: it must exist and be embeddable now, and the origins
    must be among the merchant's allowed origins (when it set any)."""
    if not isinstance(target_id, str) or not isinstance(origins, list) or not isinstance(ttl_seconds, int):
        raise BadRequest("target_id must be a string, origins a list of origins, ttl_seconds an integer",
                         code="invalid_embed_request")
    kind = kind_of(target_id)
    describe_target(session, kind, merchant_id, target_id)  # exists and belongs to this merchant
    allowed = allowed_origins(session, merchant_id)
    if allowed:
        refused = sorted({normalise_origin(o) for o in origins} - set(allowed))
        if refused:
            raise BadRequest(f"origin(s) {', '.join(refused)} are not in this merchant's allowed origins; "
                             "add them with PUT /v1/embed-settings", code="origin_not_allowed")
    return mint_token(secret, merchant_id=merchant_id, kind=kind, target_id=target_id, origins=origins,
                      ttl_seconds=ttl_seconds)


def require_target(grant: EmbedGrant, target_id: str) -> None:
    if grant.target_id != target_id:
        raise NotFound("this embed token is for another item", code="embed_target_mismatch")


def count_events(session: Session, grant: EmbedGrant, types: Counter[str], *, day: date | None = None) -> None:
    """Add a batch's events to the item's counts for ``day`` (today, UTC): one upsert per event type.

    The statements only write (no read first), so concurrent batches from several processes add up
    without losing any count, and the table grows with items x days x types, never with traffic.
    """
    if not types:
        return
    day = day or utcnow().date()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for event_type, n in sorted(types.items()):
        statement = insert(EmbedEventCount).values(merchant_id=grant.merchant_id, target_id=grant.target_id,
                                                   day=day, type=event_type, target_kind=grant.kind, count=n)
        session.execute(statement.on_conflict_do_update(
            index_elements=["merchant_id", "target_id", "day", "type"],
            set_={"count": EmbedEventCount.count + statement.excluded.count}))


def event_counts(session: Session, merchant_id: str, target_id: str, *, event_type: str | None = None) -> Counter[str]:
    """All-time counts of one item's widget events by type (``event_type``: only that one)."""
    query = select(EmbedEventCount.type, func.sum(EmbedEventCount.count)).where(
        EmbedEventCount.merchant_id == merchant_id, EmbedEventCount.target_id == target_id)
    if event_type is not None:
        query = query.where(EmbedEventCount.type == event_type)
    return Counter({kind: int(total) for kind, total in session.execute(query.group_by(EmbedEventCount.type))})
