"""Resumable uploads by the tus 1.0 protocol: the state machine behind ``/v1/uploads``.

Partial data lives in ``<DATA_DIR>/uploads/<id>.part`` on the same filesystem as local storage, so the
finished file is renamed into storage, not copied. The database row holds the committed offset: bytes
past it in the file (a write cut by a crash) are truncated before the next append. One lock per upload
(``flock`` on ``<id>.lock``) serialises PATCHes; a second concurrent PATCH gets 423.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from media_service.db import begin_write, end_read
from media_service.errors import (
    BadRequest,
    ChecksumMismatch,
    Conflict,
    Gone,
    Locked,
    MediaServiceError,
    NotFound,
    PayloadTooLarge,
)
from media_service.features.assets.service import accept_file, display_filename
from media_service.models import Upload, utcnow
from media_service.storage import Storage, sha256_file, uploads_dir
from media_service.storage.base import OverlappedHash, storage_full_as_error

log = logging.getLogger(__name__)

CHECKSUM_ALGORITHMS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1, "md5": hashlib.md5}
METADATA_KEYS_MAX = 32


def part_path(settings: Mapping[str, Any], upload_id: str) -> Path:
    return uploads_dir(settings) / f"{upload_id}.part"


class _RunningHashes:
    """Whole-file SHA-256 kept in memory while PATCHes arrive in order at this process.

    When the next PATCH lands on another process (or after a restart) the hash is recomputed from the
    file at the end instead, so this is only a speed-up, never a source of truth.
    """

    def __init__(self, capacity: int = 64) -> None:
        self._items: OrderedDict[str, tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def take(self, upload_id: str, offset: int) -> Any:
        with self._lock:
            item = self._items.get(upload_id)
        if offset == 0:
            return hashlib.sha256()
        if item is not None and item[0] == offset:
            return item[1]
        return None

    def put(self, upload_id: str, offset: int, digest: Any) -> None:
        with self._lock:
            self._items[upload_id] = (offset, digest)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def drop(self, upload_id: str) -> None:
        with self._lock:
            self._items.pop(upload_id, None)


_HASHES = _RunningHashes()


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata: key base64,key2 base64`` -> dict; 400 on anything malformed."""
    if not header:
        return {}
    result: dict[str, str] = {}
    for pair in header.split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, value = pair.partition(" ")
        if not key or not key.isascii() or not key.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise BadRequest(f"Upload-Metadata key {key[:40]!r} is invalid; use ASCII letters, digits, '-', '_'",
                             code="invalid_upload_metadata")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8") if value.strip() else ""
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise BadRequest(f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text",
                             code="invalid_upload_metadata") from exc
        result[key] = decoded[:1000]
        if len(result) > METADATA_KEYS_MAX:
            raise BadRequest("Upload-Metadata has too many keys", code="invalid_upload_metadata")
    return result


def parse_expected_sha256(value: str | None) -> str | None:
    """Metadata ``sha256`` (hex or base64) -> hex digest."""
    if not value:
        return None
    value = value.strip()
    if len(value) == 64:
        try:
            bytes.fromhex(value)
            return value.lower()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise BadRequest("metadata 'sha256' must be the file's SHA-256 as 64 hex digits or base64",
                         code="invalid_upload_metadata")
    return raw.hex()


def parse_non_negative(header_name: str, value: str | None, *, required: bool = True) -> int | None:
    if value is None:
        if required:
            raise BadRequest(f"the {header_name} header is required", code="missing_header")
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 18:  # isdigit alone accepts '²'
        raise BadRequest(f"{header_name} must be a non-negative integer, got {value[:30]!r}",
                         code="invalid_header")
    return int(value)


def parse_checksum(header: str | None) -> tuple[str, bytes] | None:
    if not header:
        return None
    algorithm, _, value = header.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise BadRequest(f"checksum algorithm {algorithm[:20]!r} is not supported; use one of "
                         f"{', '.join(CHECKSUM_ALGORITHMS)}", code="unsupported_checksum_algorithm")
    try:
        return algorithm, base64.b64decode(value.strip(), validate=True)
    except binascii.Error as exc:
        raise BadRequest("Upload-Checksum value must be base64", code="invalid_header") from exc


def create_upload(session: Session, settings: Mapping[str, Any], *, merchant_id: str, length: int,
                  metadata: dict[str, str], idempotency_key: str | None) -> tuple[Upload, bool]:
    """A new upload (or, for a repeated Idempotency-Key, the first one). Returns (upload, created)."""
    if length > settings["MAX_UPLOAD_BYTES"]:
        raise PayloadTooLarge(f"Upload-Length {length} is over the limit of {settings['MAX_UPLOAD_BYTES']} bytes",
                              code="upload_too_large")
    if idempotency_key:
        existing = session.scalar(select(Upload).where(Upload.merchant_id == merchant_id,
                                                       Upload.idempotency_key == idempotency_key))
        if existing is not None:
            return existing, False
        begin_write(session)
    upload = Upload(merchant_id=merchant_id, length=length, upload_metadata=metadata,
                    filename=display_filename(metadata.get("filename") or metadata.get("name")),
                    expected_sha256=parse_expected_sha256(metadata.get("sha256")),
                    idempotency_key=idempotency_key,
                    expires_at=utcnow() + timedelta(seconds=settings["UPLOAD_EXPIRY_SECONDS"]))
    session.add(upload)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = session.scalar(select(Upload).where(Upload.merchant_id == merchant_id,
                                                       Upload.idempotency_key == idempotency_key))
        if existing is None:
            raise
        return existing, False
    part_path(settings, upload.id).touch()
    return upload, True


def get_upload(session: Session, merchant_id: str, upload_id: str) -> Upload:
    upload = session.scalar(select(Upload).where(Upload.id == upload_id, Upload.merchant_id == merchant_id))
    if upload is None:
        raise NotFound(f"no upload {upload_id!r}", code="upload_not_found")
    if upload.state == "active" and upload.expires_at < utcnow():
        raise Gone(f"upload {upload_id} expired; start a new upload", code="upload_expired")
    return upload


@contextmanager
def upload_lock(settings: Mapping[str, Any], upload_id: str) -> Iterator[None]:
    """Exclusive lock on one upload across threads and processes; 423 when someone holds it."""
    fd = os.open(uploads_dir(settings) / f"{upload_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise Locked(f"upload {upload_id} is receiving another PATCH; retry after it ends",
                         code="upload_locked") from exc
        yield
    finally:
        os.close(fd)


def append(session: Session, storage: Storage, settings: Mapping[str, Any], *, merchant_id: str,
           upload_id: str, offset: int, body: BinaryIO, content_length: int | None,
           checksum: tuple[str, bytes] | None) -> Upload:
    """Write one PATCH body at ``offset``. Completes the upload (validation, asset) on its last byte."""
    with upload_lock(settings, upload_id):
        upload = get_upload(session, merchant_id, upload_id)
        session.refresh(upload)
        if upload.state != "active":
            raise Conflict(f"upload {upload_id} is already {upload.state}", code="upload_not_active",
                           asset_id=upload.asset_id)
        if offset != upload.offset:
            raise Conflict(f"Upload-Offset {offset} does not match the upload's offset {upload.offset}; "
                           "send HEAD to learn where to resume", code="offset_mismatch")
        remaining = upload.length - upload.offset
        end_read(session)  # no snapshot held while the body streams in
        if content_length is not None and content_length > remaining:
            raise PayloadTooLarge(f"this chunk of {content_length} bytes goes past Upload-Length "
                                  f"({remaining} bytes remain)", code="chunk_past_length")
        written = _write_chunk(settings, upload, body, remaining, checksum)
        upload.offset += written
        upload.expires_at = utcnow() + timedelta(seconds=settings["UPLOAD_EXPIRY_SECONDS"])
        session.commit()
        if upload.offset == upload.length:
            _complete(session, storage, settings, upload)
        return upload


def _write_chunk(settings: Mapping[str, Any], upload: Upload, body: BinaryIO, remaining: int,
                 checksum: tuple[str, bytes] | None) -> int:
    path = part_path(settings, upload.id)
    # The whole-file hash is advanced on a copy, adopted only once the chunk is kept.
    previous = _HASHES.take(upload.id, upload.offset)
    whole = OverlappedHash(previous.copy()) if previous is not None else None
    chunk_hash = CHECKSUM_ALGORITHMS[checksum[0]]() if checksum else None
    block_size = settings["UPLOAD_CHUNK_BYTES"]
    written = 0
    try:
        with path.open("r+b" if path.exists() else "w+b") as handle:
            handle.truncate(upload.offset)  # drop bytes past the committed offset (an earlier cut write)
            handle.seek(upload.offset)
            try:
                while block := body.read(block_size):
                    written += len(block)
                    if written > remaining:
                        handle.truncate(upload.offset)
                        raise PayloadTooLarge("the body goes past Upload-Length", code="chunk_past_length")
                    try:
                        with storage_full_as_error():
                            handle.write(block)
                    except MediaServiceError:
                        handle.truncate(upload.offset)
                        raise
                    if chunk_hash is not None:
                        chunk_hash.update(block)
                    if whole is not None:
                        whole.update(block)
            except MediaServiceError:
                raise
            except Exception as exc:  # the client went away mid-body
                if checksum is not None:
                    handle.truncate(upload.offset)
                    raise BadRequest("the connection ended before the whole chunk arrived; resume from HEAD's "
                                     "offset", code="incomplete_chunk") from exc
                log.info("upload %s: body cut after %d bytes (%s); keeping them", upload.id, written, exc)
            if checksum is not None and chunk_hash is not None and chunk_hash.digest() != checksum[1]:
                handle.truncate(upload.offset)
                raise ChecksumMismatch(f"the chunk's {checksum[0]} does not match Upload-Checksum; it was "
                                       "discarded, send it again", code="checksum_mismatch")
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        if whole is not None:
            whole.finish()  # stop its thread; the hash is dropped with the failed chunk
        raise
    if whole is not None:
        _HASHES.put(upload.id, upload.offset + written, whole.finish())
    return written


def _complete(session: Session, storage: Storage, settings: Mapping[str, Any], upload: Upload) -> None:
    """Turn the whole file into an asset and mark the upload completed.

    The asset is made from a hard link of the part file, and the part file goes only once the upload's
    state is committed: a process killed anywhere in between leaves the bytes for ``finish_interrupted``,
    which makes the asset again (or finds it by its SHA-256), so the upload becomes exactly one asset.
    """
    path = part_path(settings, upload.id)
    digest = _HASHES.take(upload.id, upload.length)
    sha256 = digest.hexdigest() if digest is not None and upload.length > 0 else sha256_file(path)
    _HASHES.drop(upload.id)
    accepting = path.with_suffix(".accepting")
    accepting.unlink(missing_ok=True)
    os.link(path, accepting)
    try:
        if upload.expected_sha256 and sha256 != upload.expected_sha256:
            raise ChecksumMismatch("the uploaded file's SHA-256 does not match the 'sha256' metadata; "
                                   "it was discarded, upload the file again", code="file_checksum_mismatch")
        asset, _created = accept_file(session, storage, settings, merchant_id=upload.merchant_id, path=accepting,
                                      sha256=sha256, filename=upload.filename, source="tus")
    except MediaServiceError as exc:
        session.rollback()
        begin_write(session)
        upload.state, upload.error = "rejected", exc.to_problem()
        session.commit()
        path.unlink(missing_ok=True)
        raise
    finally:
        accepting.unlink(missing_ok=True)
    begin_write(session)
    upload.state, upload.asset_id = "completed", asset.id
    session.commit()
    path.unlink(missing_ok=True)
    (uploads_dir(settings) / f"{upload.id}.lock").unlink(missing_ok=True)


def finish_interrupted(session: Session, storage: Storage, settings: Mapping[str, Any], upload: Upload) -> Upload:
    """Complete an upload that has all its bytes but whose completion was cut (the process died after the
    last PATCH's offset was committed). A tus client resuming sees the full offset in HEAD and sends
    nothing more, so HEAD (and GET) finish the work here; a PATCH completing it right now is left alone."""
    if upload.state != "active" or upload.offset != upload.length or not part_path(settings, upload.id).exists():
        return upload
    try:
        with upload_lock(settings, upload.id):
            session.refresh(upload)
            if upload.state == "active" and upload.offset == upload.length:
                end_read(session)
                log.warning("upload %s: completing after an interrupted completion", upload.id)
                _complete(session, storage, settings, upload)
    except Locked:
        pass  # the PATCH that received the last byte is completing it
    except MediaServiceError:
        pass  # refused (recorded as rejected on the upload)
    return upload


def terminate(session: Session, settings: Mapping[str, Any], merchant_id: str, upload_id: str) -> None:
    with upload_lock(settings, upload_id):
        upload = session.scalar(select(Upload).where(Upload.id == upload_id, Upload.merchant_id == merchant_id))
        if upload is None:
            raise NotFound(f"no upload {upload_id!r}", code="upload_not_found")
        begin_write(session)
        session.delete(upload)
        session.commit()
        part_path(settings, upload_id).unlink(missing_ok=True)
        _HASHES.drop(upload_id)
    (uploads_dir(settings) / f"{upload_id}.lock").unlink(missing_ok=True)


def expire_uploads(session: Session, settings: Mapping[str, Any]) -> int:
    """Delete unfinished uploads past their expiry, with their partial data."""
    expired = session.scalars(select(Upload).where(Upload.state == "active", Upload.expires_at < utcnow())).all()
    begin_write(session)
    for upload in expired:
        session.delete(upload)
        part_path(settings, upload.id).unlink(missing_ok=True)
        part_path(settings, upload.id).with_suffix(".accepting").unlink(missing_ok=True)
        (uploads_dir(settings) / f"{upload.id}.lock").unlink(missing_ok=True)
    session.commit()
    return len(expired)


def upload_to_dict(upload: Upload) -> dict[str, Any]:
    return {"id": upload.id, "state": upload.state, "offset": upload.offset, "length": upload.length,
            "filename": upload.filename, "asset_id": upload.asset_id, "error": upload.error,
            "expires_at": upload.expires_at.isoformat(), "created_at": upload.created_at.isoformat()}
