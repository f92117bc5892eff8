"""Signed download URLs for stored objects: ``/files/<key>?expires=...&signature=...``.

The signature (HMAC-SHA256 with the instance secret) binds key and expiry, so a URL can be handed to a
browser or a CDN without an API key and stops working when it expires.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import time
from typing import Any

from flask import Blueprint, Response, current_app, request, send_file, url_for

from media_service.errors import Forbidden, NotFound
from media_service.storage import check_key

bp = Blueprint("files", __name__)


def _signature(key: str, expires: int) -> str:
    message = f"{key}\n{expires}".encode()
    return hmac.new(current_app.config["SECRET_KEY"].encode(), message, hashlib.sha256).hexdigest()


def signed_url(key: str, *, seconds: int | None = None) -> str:
    """A URL that serves ``key`` until it expires (rounded so repeated calls give cacheable URLs)."""
    lifetime = seconds or current_app.config["SIGNED_URL_SECONDS"]
    expires = (int(time.time()) // 600 + 1) * 600 + lifetime
    values = {"key": key, "expires": expires, "signature": _signature(key, expires)}
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    return base + url_for("files.serve", **values) if base else url_for("files.serve", _external=True, **values)


@bp.get("/files/<path:key>")
def serve(key: str) -> Any:
    check_key(key)
    try:
        expires = int(request.args.get("expires", ""))
    except ValueError:
        raise Forbidden("this link is not signed; ask the API for a fresh URL", code="invalid_signature") from None
    signature = request.args.get("signature", "")
    if not hmac.compare_digest(_signature(key, expires), signature):
        raise Forbidden("this link's signature is not valid; ask the API for a fresh URL", code="invalid_signature")
    if expires < time.time():
        raise Forbidden("this link expired; ask the API for a fresh URL", code="link_expired")
    storage = current_app.extensions["storage"]
    if not storage.exists(key):
        raise NotFound("the file no longer exists", code="file_not_found")
    mime = mimetypes.guess_type(key)[0] or "application/octet-stream"
    local = storage.filesystem_path(key)
    response: Response = send_file(local if local is not None else storage.open(key), mimetype=mime,
                                   conditional=True,
                                   max_age=max(0, expires - int(time.time())))
    response.headers["X-Content-Type-Options"] = "nosniff"
    # the URL itself is the credential, so any page holding it may read it (WebGL textures need CORS)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Content-Disposition"] = "inline"
    return response
