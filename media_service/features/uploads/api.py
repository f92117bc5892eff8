"""``/v1/uploads/``: resumable uploads by the tus 1.0 protocol.

Extensions: creation, creation-with-upload, termination, expiration, checksum (sha256, sha1, md5).
A ``sha256`` entry in ``Upload-Metadata`` makes the server verify the whole file before accepting it.
"""

from __future__ import annotations

import base64
from email.utils import format_datetime
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for

from media_service.db import get_session
from media_service.errors import PreconditionFailed, UnsupportedMediaType
from media_service.features.uploads.service import (
    CHECKSUM_ALGORITHMS,
    append,
    create_upload,
    finish_interrupted,
    get_upload,
    parse_checksum,
    parse_metadata,
    parse_non_negative,
    terminate,
    upload_to_dict,
)
from media_service.models import Upload
from media_service.security.api_keys import current_merchant_id, require
from media_service.web.requests import idempotency_key

bp = Blueprint("uploads", __name__, url_prefix="/v1/uploads")

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"


@bp.after_request
def tus_headers(response: Response) -> Response:
    response.headers["Tus-Resumable"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    expose = ("Location, Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires, Tus-Resumable, "
              "Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, Media-Service-Asset-Id")
    response.headers["Access-Control-Expose-Headers"] = expose
    return response


def _require_tus_version() -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise PreconditionFailed(f"send 'Tus-Resumable: {TUS_VERSION}' (the only tus version served)",
                                 code="tus_version_unsupported")


def _upload_headers(upload: Upload) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload.offset), "Upload-Length": str(upload.length),
               "Upload-Expires": format_datetime(upload.expires_at, usegmt=True)}
    if upload.asset_id:
        headers["Media-Service-Asset-Id"] = upload.asset_id
    return headers


def _location(upload: Upload) -> str:
    return url_for("uploads.upload_resource", upload_id=upload.id, _external=True)


@bp.route("", methods=["OPTIONS"], strict_slashes=False)
def tus_options() -> Response:
    response = Response(status=204)
    response.headers.update({
        "Tus-Version": TUS_VERSION, "Tus-Extension": TUS_EXTENSIONS,
        "Tus-Max-Size": str(current_app.config["MAX_UPLOAD_BYTES"]),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
    })
    return response


@bp.route("", methods=["POST"], strict_slashes=False)
@require("assets:write")
def create() -> Response:
    """tus creation (and creation-with-upload when the body carries the first bytes)."""
    _require_tus_version()
    merchant_id = current_merchant_id()
    if request.headers.get("Upload-Defer-Length"):
        raise PreconditionFailed("Upload-Defer-Length is not supported; send Upload-Length", code="defer_length")
    length = parse_non_negative("Upload-Length", request.headers.get("Upload-Length"))
    assert length is not None
    metadata = parse_metadata(request.headers.get("Upload-Metadata"))
    session = get_session()
    upload, was_created = create_upload(session, current_app.config, merchant_id=merchant_id, length=length,
                                        metadata=metadata, idempotency_key=idempotency_key())
    has_body = (request.content_length or 0) > 0
    if was_created and has_body:
        _patch(upload.id, offset=0)
        session.refresh(upload)
    response = Response(status=201)
    response.headers["Location"] = _location(upload)
    response.headers.update(_upload_headers(upload))
    return response


def _patch(upload_id: str, offset: int) -> Upload:
    if request.mimetype != OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaType(f"PATCH bodies must be sent as 'Content-Type: {OFFSET_CONTENT_TYPE}'",
                                   code="wrong_content_type")
    checksum = parse_checksum(request.headers.get("Upload-Checksum"))
    connection = request.environ.get("gunicorn.socket")
    if connection is not None:  # a stalled body must not hold the upload's lock (and a thread) forever
        connection.settimeout(current_app.config["UPLOAD_READ_TIMEOUT_SECONDS"])
    return append(get_session(), current_app.extensions["storage"], current_app.config,
                  merchant_id=current_merchant_id(), upload_id=upload_id, offset=offset,
                  body=request.stream, content_length=request.content_length, checksum=checksum)


@bp.route("/<upload_id>", methods=["HEAD"], endpoint="upload_resource")
@require("assets:write")
def head(upload_id: str) -> Response:
    _require_tus_version()
    upload = _finished(get_upload(get_session(), current_merchant_id(), upload_id))
    if upload.state == "rejected":
        return Response(status=410)
    response = Response(status=200)
    response.headers.update(_upload_headers(upload))
    if upload.upload_metadata:
        response.headers["Upload-Metadata"] = ",".join(
            f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in upload.upload_metadata.items())
    return response


@bp.route("/<upload_id>", methods=["PATCH"])
@require("assets:write")
def patch(upload_id: str) -> Response:
    _require_tus_version()
    offset = parse_non_negative("Upload-Offset", request.headers.get("Upload-Offset"))
    assert offset is not None
    upload = _patch(upload_id, offset)
    response = Response(status=204)
    response.headers.update(_upload_headers(upload))
    return response


@bp.route("/<upload_id>", methods=["DELETE"])
@require("assets:write")
def delete(upload_id: str) -> Response:
    _require_tus_version()
    terminate(get_session(), current_app.config, current_merchant_id(), upload_id)
    return Response(status=204)


@bp.route("/<upload_id>", methods=["GET"])
@require("assets:write")
def status(upload_id: str) -> Any:
    """Not part of tus: the upload as JSON, with the asset it became or why it was refused."""
    return upload_to_dict(_finished(get_upload(get_session(), current_merchant_id(), upload_id)))


def _finished(upload: Upload) -> Upload:
    """The upload, completed first if a killed process left it with all its bytes but no asset."""
    return finish_interrupted(get_session(), current_app.extensions["storage"], current_app.config, upload)
