"""``/v1/upload-tokens``: buyer upload tokens, minted by the merchant's backend.

A token (``mut_<lookup>_<secret>``, shown once, stored as a SHA-256) is bound to an order or SKU, expires
soon, and is good for ONE file: a buyer's app sends it as ``Authorization: Bearer mut_...`` to create one
tus upload (``POST /v1/uploads``, then ``HEAD``/``PATCH``/``GET`` of that upload only) or to post one file to
``POST /v1/assets``. Nothing else is allowed with it. Creating the upload again (a phone that lost the
answer to its first try) returns that same upload, so the buyer can resume instead of needing a new link.
The merchant always comes from the stored token, never from the request. When the file becomes an
asset, the token records it and (by default) starts a ``buyer_show`` video, which waits for the
merchant's approval like any buyer show.

The checks plug into :mod:`media_service.auth` through its token-verifier seam: :func:`verify_upload_token`
turns a token into a restricted principal, whose restriction (:func:`_restrict`) runs on every request;
an after-request hook binds the token to the upload or asset it created.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from media_service.api.common import created, json_body
from media_service.auth import Principal, current_merchant_id, register_token_verifier, require
from media_service.db import begin_write, get_db, get_session
from media_service.errors import BadRequest, Forbidden, MediaServiceError, NotFound, PayloadTooLarge, Unauthorized
from media_service.models import Asset, UploadToken, Video, utcnow
from media_service.video.presets import PROFILES

log = logging.getLogger(__name__)

bp = Blueprint("upload_tokens", __name__, url_prefix="/v1/upload-tokens")

TOKEN_PREFIX = "mut"
#: What a buyer token may call: creating one upload or one multipart asset, and that upload's tus calls.
CREATING_ENDPOINTS = {"uploads.create", "assets.upload_asset"}
UPLOAD_ENDPOINTS = {"uploads.upload_resource", "uploads.patch", "uploads.status"}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def verify_upload_token(session: Session, token: str) -> Principal:
    """The restricted principal of a valid upload token; 401 with a reason otherwise."""
    parts = token.split("_", 2)
    row = session.scalar(select(UploadToken).where(UploadToken.lookup == parts[1])) if len(parts) == 3 else None
    if row is None or not hmac.compare_digest(row.token_hash, _hash(token)):
        raise Unauthorized("the upload token is not valid; ask the shop for a new upload link",
                           code="invalid_upload_token")
    if row.state == "revoked":
        raise Unauthorized("the upload token was revoked by the shop", code="upload_token_revoked")
    if row.expires_at < utcnow():
        raise Unauthorized("the upload token expired; ask the shop for a new upload link",
                           code="upload_token_expired")
    return Principal(merchant_id=row.merchant_id, scopes=frozenset({"assets:write"}), key_id=row.id,
                     restriction=_restrict, creation_key=f"upload-token:{row.id}")


register_token_verifier(TOKEN_PREFIX, verify_upload_token)


def _restrict() -> None:
    """Runs on every request made with an upload token: only its own single upload is allowed."""
    principal: Principal = g.principal
    endpoint = request.endpoint or ""
    session = get_session()
    token = session.get(UploadToken, principal.key_id)
    if token is None:
        raise Unauthorized("the upload token is not valid", code="invalid_upload_token")
    if endpoint in CREATING_ENDPOINTS:
        declared = request.headers.get("Upload-Length") if endpoint == "uploads.create" else None
        ascii_number = declared is not None and declared.isascii() and declared.isdigit()
        size = int(declared) if declared and ascii_number else (request.content_length or 0)
        if size > token.max_bytes:
            raise PayloadTooLarge(f"this upload token allows files of at most {token.max_bytes} bytes",
                                  code="upload_token_size")
        if g.get("upload_token_claimed") == token.id:
            return
        begin_write(session)
        claimed = session.execute(update(UploadToken).where(UploadToken.id == token.id,
                                                            UploadToken.state == "unused").values(state="claimed"))
        session.commit()
        if claimed.rowcount != 1 and endpoint == "uploads.create" and token.state == "uploading":
            return  # the answer to its creation was lost: the repeat returns the same upload (creation_key)
        if claimed.rowcount != 1:
            raise Forbidden("this upload token was already used for a file; ask the shop for a new upload link",
                            code="upload_token_used")
        g.upload_token_claimed = token.id
        return
    if endpoint in UPLOAD_ENDPOINTS and token.upload_id is not None \
            and (request.view_args or {}).get("upload_id") == token.upload_id:
        return
    raise Forbidden("an upload token can only create one upload and send its bytes", code="upload_token_scope")


@bp.after_app_request
def _bind_token(response: Response) -> Response:
    """After a buyer's request: bind the token to its upload or asset, or give an unused claim back."""
    principal = g.get("principal")
    if principal is None or principal.restriction is not _restrict:
        return response
    endpoint = request.endpoint or ""
    asset_id = response.headers.get("Media-Service-Asset-Id")
    if endpoint == "assets.upload_asset" and response.status_code in (200, 201):
        asset_id = (response.get_json(silent=True) or {}).get("id")
    try:
        with get_db().session(write=True) as session:
            token = session.get(UploadToken, principal.key_id)
            if token is None:
                return response
            if endpoint == "uploads.create" and response.status_code == 201:
                token.upload_id = response.headers.get("Location", "").rstrip("/").rsplit("/", 1)[-1]
                token.state = "uploading"
            elif endpoint in CREATING_ENDPOINTS and g.get("upload_token_claimed") and not asset_id:
                token.state = "unused"  # nothing was created: the buyer may try again
            if asset_id and token.asset_id is None:
                token.asset_id, token.state, token.used_at = asset_id, "used", utcnow()
                session.flush()
                _start_video(session, token)
    except Exception:  # the buyer's response is already decided; never turn it into a 500
        log.exception("could not record upload token %s", principal.key_id)
    return response


def _start_video(session: Session, token: UploadToken) -> None:
    if not token.process_profile or token.asset_id is None:
        return
    from media_service.pipelines.video_records import create_video

    asset = session.get(Asset, token.asset_id)
    if asset is None or asset.merchant_id != token.merchant_id:
        return
    try:
        create_video(session, current_app.config, merchant_id=token.merchant_id, asset=asset,
                     profile_name=token.process_profile)
    except MediaServiceError as exc:  # an image, say: the asset stays, the merchant sees no video
        log.info("upload token %s: no video started for %s: %s", token.id, asset.id, exc.detail)


def _token_dict(session: Session, token: UploadToken) -> dict[str, Any]:
    video_id = None
    if token.asset_id:
        video_id = session.scalar(select(Video.id).where(Video.asset_id == token.asset_id,
                                                         Video.merchant_id == token.merchant_id).limit(1))
    return {"id": token.id, "state": token.state, "order_id": token.order_id, "sku": token.sku,
            "max_bytes": token.max_bytes, "process_profile": token.process_profile,
            "upload_id": token.upload_id, "asset_id": token.asset_id, "video_id": video_id,
            "expires_at": token.expires_at.isoformat(), "created_at": token.created_at.isoformat(),
            "used_at": token.used_at.isoformat() if token.used_at else None}


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
    row = UploadToken(merchant_id=current_merchant_id(), lookup=lookup, token_hash=_hash(token), order_id=order_id,
                      sku=sku, max_bytes=max_bytes, process_profile=profile,
                      expires_at=utcnow() + timedelta(seconds=expires_in))
    session.add(row)
    session.commit()
    body_out = {**_token_dict(session, row), "token": token}
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
    return _token_dict(get_session(), _own_token(token_id))


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
