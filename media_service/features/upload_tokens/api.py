"""``/v1/upload-tokens``: buyer upload tokens, minted by the merchant's backend.

A token (``mut_<lookup>_<secret>``, shown once, stored as a SHA-256) is bound to an order or SKU, expires
soon, and is good for ONE file: a buyer's app sends it as ``Authorization: Bearer mut_...`` to create one
tus upload (``POST /v1/uploads``, then ``HEAD``/``PATCH``/``GET`` of that upload only) or to post one file to
``POST /v1/assets``. Nothing else is allowed with it. Creating the upload again (a phone that lost the
answer to its first try) returns that same upload, so the buyer can resume instead of needing a new link.
The merchant always comes from the stored token, never from the request. When the file becomes an
asset, the token records it and (by default) starts a ``buyer_show`` video, which waits for the
merchant's approval like any buyer show.

The checks plug into :mod:`media_service.security.api_keys` through its token-verifier seam: :func:`verify_upload_token`
turns a token into a restricted principal, whose restriction (``service.restrict``) runs on every request;
an after-request hook binds the token to the upload or asset it created.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, g
from sqlalchemy import select

from media_service.db import begin_write, get_session
from media_service.errors import BadRequest, Forbidden, NotFound
from media_service.features.upload_tokens.service import (
    TOKEN_PREFIX,
    bind_token,
    hash_token,
    token_to_dict,
)
from media_service.media.video.presets import PROFILES
from media_service.models import UploadToken, utcnow
from media_service.security.api_keys import current_merchant_id, require
from media_service.web.requests import created, json_body

log = logging.getLogger(__name__)

bp = Blueprint("upload_tokens", __name__, url_prefix="/v1/upload-tokens")


@bp.after_app_request
def _bind_token(response: Response) -> Response:
    """After a buyer's request: bind the token to its upload or asset, or give an unused claim back."""
    return bind_token(response)


def _optional_text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 200 or not value.isprintable():
        raise BadRequest(f"{name} must be 1-200 printable characters", code="invalid_upload_token_request")
    return value.strip()


def _bounded_int(body: dict[str, Any], name: str, default: int, maximum: int) -> int:
    value = body.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise BadRequest(f"{name} must be an integer from 1 to {maximum}", code="invalid_upload_token_request")
    return value


@bp.post("")
@require("assets:write")
def mint() -> Any:
    """Mint a token: ``{"order_id" or "sku", "expires_in": s, "max_bytes": n, "process_profile": "buyer_show"}``."""
    if g.principal.restriction is not None:
        raise Forbidden("an upload token cannot mint tokens", code="upload_token_scope")
    body = json_body()
    order_id, sku = _optional_text(body, "order_id"), _optional_text(body, "sku")
    if not order_id and not sku:
        raise BadRequest("bind the token to an order or a product: send order_id and/or sku",
                         code="invalid_upload_token_request")
    config = current_app.config
    expires_in = _bounded_int(body, "expires_in", config["UPLOAD_TOKEN_SECONDS"], config["UPLOAD_TOKEN_MAX_SECONDS"])
    max_bytes = _bounded_int(body, "max_bytes", config["UPLOAD_TOKEN_MAX_BYTES"], config["UPLOAD_TOKEN_MAX_BYTES"])
    profile = body.get("process_profile", "buyer_show")
    if profile is not None and profile not in PROFILES:
        raise BadRequest(f"process_profile must be null or one of {', '.join(PROFILES)}",
                         code="invalid_upload_token_request")
    lookup = secrets.token_hex(8)
    token = f"{TOKEN_PREFIX}_{lookup}_{secrets.token_urlsafe(32)}"
    session = get_session()
    row = UploadToken(merchant_id=current_merchant_id(), lookup=lookup, token_hash=hash_token(token), order_id=order_id,
                      sku=sku, max_bytes=max_bytes, process_profile=profile,
                      expires_at=utcnow() + timedelta(seconds=expires_in))
    session.add(row)
    session.commit()
    body_out = {**token_to_dict(session, row), "token": token}
    return created(body_out, f"/v1/upload-tokens/{row.id}")


def _own_token(token_id: str) -> UploadToken:
    token = get_session().scalar(select(UploadToken).where(UploadToken.id == token_id,
                                                           UploadToken.merchant_id == current_merchant_id()))
    if token is None:
        raise NotFound(f"no upload token {token_id!r}", code="upload_token_not_found")
    return token


@bp.get("/<token_id>")
@require("assets:read")
def get_token(token_id: str) -> Any:
    """A token's state: unused, claimed, uploading, used (with the asset and video) or revoked."""
    return token_to_dict(get_session(), _own_token(token_id))


@bp.delete("/<token_id>")
@require("assets:write")
def revoke_token(token_id: str) -> Any:
    """Revoke a token; an upload in progress with it cannot continue."""
    token = _own_token(token_id)
    session = get_session()
    begin_write(session)
    token.state = "revoked"
    session.commit()
    return "", 204
