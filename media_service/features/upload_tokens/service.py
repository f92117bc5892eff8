"""Buyer upload tokens: minting rules, the credential check, and what a token may do.

A token (``mut_<lookup>_<secret>``, shown once, stored as a SHA-256) is bound to an order or SKU, expires
soon, and is good for ONE file (see ``api.py`` for the flow). :func:`verify_upload_token` turns a token into
a restricted principal (listed in the feature's ``token_verifiers``) whose restriction (:func:`restrict`)
runs on every request; :func:`bind_token` records the upload or asset it created and starts the buyer show.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from flask import Response, current_app, g, request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from media_service.db import begin_write, get_db, get_session
from media_service.errors import Forbidden, MediaServiceError, PayloadTooLarge, Unauthorized
from media_service.features.videos.service import create_video
from media_service.models import Asset, UploadToken, Video, utcnow
from media_service.security.api_keys import Principal

log = logging.getLogger(__name__)

TOKEN_PREFIX = "mut"
#: What a buyer token may call: creating one upload or one multipart asset, and that upload's tus calls.
CREATING_ENDPOINTS = {"uploads.create", "assets.upload_asset"}
UPLOAD_ENDPOINTS = {"uploads.upload_resource", "uploads.patch", "uploads.status"}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def verify_upload_token(session: Session, token: str) -> Principal:
    """The restricted principal of a valid upload token; 401 with a reason otherwise."""
    parts = token.split("_", 2)
    row = session.scalar(select(UploadToken).where(UploadToken.lookup == parts[1])) if len(parts) == 3 else None
    if row is None or not hmac.compare_digest(row.token_hash, hash_token(token)):
        raise Unauthorized("the upload token is not valid; ask the shop for a new upload link",
                           code="invalid_upload_token")
    if row.state == "revoked":
        raise Unauthorized("the upload token was revoked by the shop", code="upload_token_revoked")
    if row.expires_at < utcnow():
        raise Unauthorized("the upload token expired; ask the shop for a new upload link",
                           code="upload_token_expired")
    return Principal(merchant_id=row.merchant_id, scopes=frozenset({"assets:write"}), key_id=row.id,
                     restriction=restrict, creation_key=f"upload-token:{row.id}")


def restrict() -> None:
    """Runs on every request made with an upload token: only its own single upload is allowed."""
    principal: Principal = g.principal
    endpoint = request.endpoint or ""
    session = get_session()
    token = session.get(UploadToken, principal.key_id)
    if token is None:
        raise Unauthorized("the upload token is not valid", code="invalid_upload_token")
    if endpoint in CREATING_ENDPOINTS:
        declared = request.headers.get("Upload-Length") if endpoint == "uploads.create" else None
        size = int(declared) if declared and declared.isdigit() else (request.content_length or 0)
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


def bind_token(response: Response) -> Response:
    """After a buyer's request: bind the token to its upload or asset, or give an unused claim back."""
    principal = g.get("principal")
    if principal is None or principal.restriction is not restrict:
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
    asset = session.get(Asset, token.asset_id)
    if asset is None or asset.merchant_id != token.merchant_id:
        return
    try:
        create_video(session, current_app.config, merchant_id=token.merchant_id, asset=asset,
                     profile_name=token.process_profile)
    except MediaServiceError as exc:  # an image, say: the asset stays, the merchant sees no video
        log.info("upload token %s: no video started for %s: %s", token.id, asset.id, exc.detail)


def token_to_dict(session: Session, token: UploadToken) -> dict[str, Any]:
    video_id = None
    if token.asset_id:
        video_id = session.scalar(select(Video.id).where(Video.asset_id == token.asset_id,
                                                         Video.merchant_id == token.merchant_id).limit(1))
    return {"id": token.id, "state": token.state, "order_id": token.order_id, "sku": token.sku,
            "max_bytes": token.max_bytes, "process_profile": token.process_profile,
            "upload_id": token.upload_id, "asset_id": token.asset_id, "video_id": video_id,
            "expires_at": token.expires_at.isoformat(), "created_at": token.created_at.isoformat(),
            "used_at": token.used_at.isoformat() if token.used_at else None}


