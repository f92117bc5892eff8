"""Serving stored files: signed download URLs (``/files/<key>?expires=...&signature=...``) and the one set
of headers every file a merchant or buyer uploaded (or that was made from one) is served with.

The signature (HMAC-SHA256 with the instance secret) binds key and expiry, so a URL can be handed to a
browser or a CDN without an API key and stops working when it expires.
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Callable
from typing import IO, Any

from flask import Blueprint, Response, current_app, request, send_file, url_for

from media_service.errors import NotFound
from media_service.security.links import check_link, link_expiry, link_signature
from media_service.storage import check_key

bp = Blueprint("files", __name__)


def signed_url(key: str, *, seconds: int | None = None) -> str:
    """A URL that serves ``key`` until it expires (rounded so repeated calls give cacheable URLs)."""
    expires = link_expiry(seconds or current_app.config["SIGNED_URL_SECONDS"])
    signature = link_signature(current_app.config["SECRET_KEY"], key, expires)
    values = {"key": key, "expires": expires, "signature": signature}
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    return base + url_for("files.serve", **values) if base else url_for("files.serve", _external=True, **values)


def prefix_signer(prefix: str) -> Callable[[str], str]:
    """Signs paths relative to ``prefix`` (the files of one result: a manifest and what it names)."""
    return lambda path: signed_url(f"{prefix}/{path}")


@bp.get("/files/<path:key>")
def serve(key: str) -> Any:
    check_key(key)
    expires = check_link(current_app.config["SECRET_KEY"], (key,), request.args.get("expires"),
                         request.args.get("signature"))
    storage = current_app.extensions["storage"]
    if not storage.exists(key):
        raise NotFound("the file no longer exists", code="file_not_found")
    mime = mimetypes.guess_type(key)[0] or "application/octet-stream"
    response = send_stored(storage, key, mimetype=mime, max_age=max(0, expires - int(time.time())))
    response.headers["Content-Disposition"] = "inline"
    return response


def send_stored(storage: Any, key: str, *, mimetype: str, max_age: int) -> Response:
    """A stored object as a conditional (ETag, ranges) response with the untrusted-content headers."""
    local = storage.filesystem_path(key)
    source: str | IO[bytes] = str(local) if local is not None else storage.open(key)
    return untrusted(send_file(source, mimetype=mimetype, conditional=True, max_age=max_age))


def untrusted(response: Response, *, cors: bool = True) -> Response:
    """Headers for content we did not write ourselves: never sniffed, never run as a page (sandboxing CSP).

    With ``cors`` any page may read it: the signed URL itself is the credential (players fetch playlists with
    XHR, WebGL textures need CORS).
    """
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    if cors:
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
