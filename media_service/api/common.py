"""Small helpers shared by the API blueprints: JSON bodies, paging, responses."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from flask import Response, current_app, g, request
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

from media_service.errors import BadRequest


def json_body(required: Sequence[str] = ()) -> dict[str, Any]:
    """The request's JSON object, validated once at the edge."""
    if not request.is_json:
        raise BadRequest("send a JSON object with 'Content-Type: application/json'", code="json_required")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_json")
    missing = [name for name in required if name not in data]
    if missing:
        raise BadRequest(f"missing field(s): {', '.join(missing)}", code="missing_fields")
    return data


def idempotency_key() -> str | None:
    """The client's ``Idempotency-Key``, or the one a single-use credential imposes (``Principal.creation_key``)."""
    principal = g.get("principal")
    if principal is not None and principal.creation_key:
        return principal.creation_key
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 200 or not key.isprintable():
        raise BadRequest("Idempotency-Key must be 1-200 printable characters", code="invalid_idempotency_key")
    return key


def page(session: Session, query: Select[Any], model: Any) -> tuple[list[Any], str | None]:
    """Keyset paging by (created_at, id), newest first: stable while rows are added."""
    limit_text = request.args.get("limit", "20")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= current_app.config["PAGE_SIZE_MAX"]:
        raise BadRequest(f"limit must be 1-{current_app.config['PAGE_SIZE_MAX']}", code="invalid_limit")
    limit = int(limit_text)
    cursor = request.args.get("cursor")
    if cursor:
        try:
            created, last_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            from datetime import datetime

            created_at = datetime.fromisoformat(created)
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            raise BadRequest("cursor is invalid; pass the next_cursor of the previous page",
                             code="invalid_cursor") from exc
        query = query.where(or_(model.created_at < created_at,
                                and_(model.created_at == created_at, model.id < last_id)))
    rows = list(session.scalars(query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = base64.urlsafe_b64encode(
            json.dumps([last.created_at.isoformat(), last.id]).encode()).decode()
    return rows, next_cursor


def created(body: dict[str, Any], location: str, status: int = 201) -> Response:
    response = current_app.json.response(body)
    response.status_code = status
    response.headers["Location"] = location
    return response
