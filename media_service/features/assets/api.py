"""``/v1/assets``: small files in one multipart request; listing, reading and deleting assets."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request, url_for
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from media_service.db import get_session
from media_service.errors import BadRequest, PayloadTooLarge
from media_service.features.assets.service import accept_file, asset_to_dict, delete_asset, get_asset
from media_service.models import Asset
from media_service.security.api_keys import current_merchant_id, require
from media_service.storage.base import storage_full_as_error
from media_service.web.requests import HashingSpoolFile, created, page

bp = Blueprint("assets", __name__, url_prefix="/v1/assets")


@bp.post("")
@require("assets:write")
def upload_asset() -> Any:
    """Upload one file as ``multipart/form-data`` field ``file``."""
    merchant_id = current_merchant_id()
    limit = current_app.config["MAX_MULTIPART_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes; use resumable uploads at /v1/uploads/ "
                              "for large files", code="body_too_large")
    if request.mimetype != "multipart/form-data":
        raise BadRequest("send the file as multipart/form-data in a field named 'file'", code="multipart_required")
    request.max_content_length = limit
    try:
        with storage_full_as_error():
            files = request.files.getlist("file")
    except RequestEntityTooLarge as exc:
        raise PayloadTooLarge(f"the body is over {limit} bytes; use /v1/uploads/ for large files",
                              code="body_too_large") from exc
    if len(files) != 1:
        raise BadRequest("send exactly one file in the multipart field 'file'", code="file_field_required")
    upload = files[0]
    spool = upload.stream
    if not isinstance(spool, HashingSpoolFile):  # tiny parts may be kept in memory by werkzeug
        raise BadRequest("could not read the file part", code="file_field_required")
    spool.flush()
    spool.close()
    if spool.size == 0:
        raise BadRequest("the file is empty", code="empty_file")
    session = get_session()
    asset, was_created = accept_file(session, current_app.extensions["storage"], current_app.config,
                                     merchant_id=merchant_id, path=spool.path, sha256=spool.sha256.finish().hexdigest(),
                                     filename=upload.filename or "", source="multipart")
    return created(asset_to_dict(asset), url_for("assets.get_asset", asset_id=asset.id),
                   201 if was_created else 200)


@bp.get("")
@require("assets:read")
def list_assets() -> Any:
    merchant_id = current_merchant_id()
    query = select(Asset).where(Asset.merchant_id == merchant_id)
    kind = request.args.get("kind")
    if kind:
        if kind not in {"image", "video"}:
            raise BadRequest("kind must be 'image' or 'video'", code="invalid_kind")
        query = query.where(Asset.kind == kind)
    rows, next_cursor = page(get_session(), query, Asset)
    return {"items": [asset_to_dict(a) for a in rows], "next_cursor": next_cursor}


@bp.get("/<asset_id>", endpoint="get_asset")
@require("assets:read")
def get_asset_view(asset_id: str) -> Any:
    return asset_to_dict(get_asset(get_session(), current_merchant_id(), asset_id))


@bp.delete("/<asset_id>")
@require("assets:write")
def delete_asset_view(asset_id: str) -> Any:
    session = get_session()
    asset = get_asset(session, current_merchant_id(), asset_id)
    delete_asset(session, current_app.extensions["storage"], asset)
    return "", 204

