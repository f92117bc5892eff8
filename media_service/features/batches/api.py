"""``/v1/batches``: process many assets with one profile; follow progress; retry the failures."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from sqlalchemy import select

from media_service.db import get_session
from media_service.errors import BadRequest, NotFound
from media_service.features.batches.service import batch_to_dict, create_api_batch, retry_failed
from media_service.models import Batch
from media_service.security.api_keys import current_merchant_id, require
from media_service.web.requests import created, json_body, page

bp = Blueprint("batches", __name__, url_prefix="/v1/batches")

MAX_BATCH_ITEMS = 1000


def _get(batch_id: str) -> Batch:
    batch = get_session().scalar(select(Batch).where(Batch.id == batch_id, Batch.merchant_id == current_merchant_id()))
    if batch is None:
        raise NotFound(f"no batch {batch_id!r}", code="batch_not_found")
    return batch


@bp.post("")
@require("assets:write")
def create_batch() -> Any:
    """``{"asset_ids": [...], "profile": "buyer_show", "options": {...}}`` -> 202 with the batch."""
    body = json_body(required=("asset_ids", "profile"))
    asset_ids = body["asset_ids"]
    if not isinstance(asset_ids, list) or not asset_ids or not all(isinstance(a, str) for a in asset_ids):
        raise BadRequest("asset_ids must be a non-empty list of asset ids", code="invalid_asset_ids")
    if len(asset_ids) > MAX_BATCH_ITEMS:
        raise BadRequest(f"at most {MAX_BATCH_ITEMS} assets per batch; split the list", code="batch_too_large")
    unique = list(dict.fromkeys(asset_ids))
    batch = create_api_batch(get_session(), current_app.config, merchant_id=current_merchant_id(),
                             asset_ids=unique, profile=body["profile"], options=body.get("options"))
    return created(batch_to_dict(get_session(), batch), f"/v1/batches/{batch.id}", 202)


@bp.get("")
@require("assets:read")
def list_batches() -> Any:
    session = get_session()
    rows, next_cursor = page(session, select(Batch).where(Batch.merchant_id == current_merchant_id()), Batch)
    return {"items": [{k: v for k, v in batch_to_dict(session, b).items() if k != "items"} for b in rows],
            "next_cursor": next_cursor}


@bp.get("/<batch_id>")
@require("assets:read")
def get_batch(batch_id: str) -> Any:
    return batch_to_dict(get_session(), _get(batch_id))


@bp.post("/<batch_id>/retry")
@require("assets:write")
def retry_batch(batch_id: str) -> Any:
    """Queue the failed and cancelled items again."""
    session = get_session()
    batch = _get(batch_id)
    retried = retry_failed(session, batch)
    return {**batch_to_dict(session, batch), "retried": retried}, 202
