"""Reading requests and writing responses, shared by every feature's views: JSON bodies, paging, responses,
and the request class whose uploaded file parts stream to disk."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from flask import Request, Response, current_app, g, request
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

from media_service.errors import BadRequest, PayloadTooLarge
from media_service.storage import uploads_dir
from media_service.storage.base import OverlappedHash

JSON_MAX_BYTES = 1024 * 1024  # no JSON request of this API comes near; bigger is refused unread
JSON_MAX_DEPTH = 32  # the deepest body of this API nests 4 levels


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects, measured without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


def parse_json_bytes(raw: bytes, *, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """Parse untrusted JSON: too deep, NaN/Infinity, huge integers and bad encodings are a 400, never a crash."""
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise BadRequest(f"the JSON body nests deeper than {max_depth} levels", code="json_too_deep") from exc
    except ValueError as exc:  # also UnicodeDecodeError and integers beyond Python's digit limit
        raise BadRequest(f"the body is not valid JSON: {str(exc)[:200]}", code="invalid_json") from exc
    if json_depth(data) > max_depth:
        raise BadRequest(f"the JSON body nests deeper than {max_depth} levels", code="json_too_deep")
    return data


def json_body(required: Sequence[str] = ()) -> dict[str, Any]:
    """The request's JSON object, validated once at the edge (size, depth, syntax, an object)."""
    if not request.is_json:
        raise BadRequest("send a JSON object with 'Content-Type: application/json'", code="json_required")
    if request.content_length is not None and request.content_length > JSON_MAX_BYTES:
        raise PayloadTooLarge(f"a JSON body may be at most {JSON_MAX_BYTES} bytes", code="json_too_large")
    raw = request.stream.read(JSON_MAX_BYTES + 1)
    if len(raw) > JSON_MAX_BYTES:
        raise PayloadTooLarge(f"a JSON body may be at most {JSON_MAX_BYTES} bytes", code="json_too_large")
    data = parse_json_bytes(raw)
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_json")
    missing = [name for name in required if name not in data]
    if missing:
        raise BadRequest(f"missing field(s): {', '.join(missing)}", code="missing_fields")
    return data


def ascii_digits(text: str | None, max_digits: int = 19) -> bool:
    """True for 1..max_digits ASCII digits: ``str.isdigit`` also says yes to '²', which ``int`` refuses."""
    return text is not None and re.fullmatch(rf"[0-9]{{1,{max_digits}}}", text) is not None


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
    if not ascii_digits(limit_text, 6) or not 1 <= int(limit_text) <= current_app.config["PAGE_SIZE_MAX"]:
        raise BadRequest(f"limit must be 1-{current_app.config['PAGE_SIZE_MAX']}", code="invalid_limit")
    limit = int(limit_text)
    cursor = request.args.get("cursor")
    if cursor:
        try:
            created, last_id = json.loads(base64.urlsafe_b64decode(cursor.encode()[:1000]))
            if not isinstance(created, str) or not isinstance(last_id, str) or len(last_id) > 100:
                raise TypeError("a cursor holds a time and an id")
            created_at = datetime.fromisoformat(created)
        except (ValueError, TypeError, RecursionError) as exc:
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


class HashingSpoolFile:
    """Where werkzeug writes an uploaded file part: straight to disk, hashing on the way (flat memory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = path.open("w+b")
        self.sha256 = OverlappedHash()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._file.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


class MediaRequest(Request):
    """Request whose file parts stream into the uploads folder instead of memory or /tmp."""

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None) -> Any:
        path = uploads_dir(current_app.config) / f"multipart-{uuid.uuid4().hex}.tmp"
        spool = HashingSpoolFile(path)
        g.setdefault("spool_files", []).append(spool)
        return spool


def remove_spool_files(_exc: BaseException | None = None) -> None:
    for spool in g.pop("spool_files", []):
        spool.sha256.finish()
        spool.close()
        spool.path.unlink(missing_ok=True)
