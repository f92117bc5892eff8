"""Turning a validated local file into a merchant's asset (shared by multipart and tus uploads)."""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from media_service.db import begin_write, end_read
from media_service.embed import embed_provider
from media_service.errors import NotFound
from media_service.ingest import inspect_media
from media_service.jobs.queue import enqueue
from media_service.models import Asset, new_id
from media_service.storage import Storage

log = logging.getLogger(__name__)

EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif", "mp4": "mp4", "mov": "mov",
              "webm": "webm", "matroska": "mkv", "3gp": "3gp"}
_BIDI_AND_CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def display_filename(name: str | None) -> str:
    """The client's file name reduced to harmless display text (never used as a path)."""
    if not name:
        return ""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _BIDI_AND_CONTROL.sub("", name).strip().strip(".")
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 250 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else name[:255]
    return name


def accept_file(session: Session, storage: Storage, settings: Mapping[str, Any], *, merchant_id: str,
                path: Path, sha256: str, filename: str, source: str) -> tuple[Asset, bool]:
    """Validate ``path`` and store it as an asset; the same content again returns the existing asset.

    The file at ``path`` is consumed (moved into storage or deleted) whatever happens.
    Returns ``(asset, created)``; raises 415/422 errors from validation.
    """
    try:
        existing = session.scalar(select(Asset).where(Asset.merchant_id == merchant_id, Asset.sha256 == sha256))
        if existing is not None:
            return existing, False
        end_read(session)  # validation may take seconds; hold no snapshot meanwhile
        facts = inspect_media(path, settings)
        asset_id = new_id("ast")
        key = f"{asset_prefix(merchant_id, asset_id)}/original.{EXTENSIONS.get(facts.format, 'bin')}"
        stored = storage.put_file(key, path, move=True, sha256=sha256)
        asset = Asset(id=asset_id, merchant_id=merchant_id, kind=facts.kind, format=facts.format, mime=facts.mime,
                      size=stored.size, sha256=sha256, storage_key=key, filename=display_filename(filename),
                      width=facts.width, height=facts.height, duration=facts.duration, frames=facts.frames,
                      details=facts.details, source=source)
        begin_write(session)
        session.add(asset)
        try:
            session.flush()
        except IntegrityError:  # the same content finished uploading in parallel
            session.rollback()
            storage.delete_prefix(asset_prefix(merchant_id, asset_id))
            existing = session.scalar(select(Asset).where(Asset.merchant_id == merchant_id,
                                                          Asset.sha256 == sha256))
            if existing is None:
                raise
            return existing, False
        enqueue(session, "assets.thumbnail",
                {"asset_id": asset.id, "source_key": key, "kind": facts.kind, "format": facts.format,
                 "duration": facts.duration, "stream_index": facts.details.get("main_video_index", 0)},
                merchant_id=merchant_id,
                idempotency_key=f"thumbnail:{asset.id}")
        session.commit()
        return asset, True
    finally:
        if path.exists():
            os.unlink(path)


def asset_prefix(merchant_id: str, asset_id: str) -> str:
    """Where an asset's files live: the original and what is made of it alone (its thumbnail)."""
    return f"assets/{merchant_id}/{asset_id}"


def get_asset(session: Session, merchant_id: str, asset_id: str) -> Asset:
    """A merchant's asset; another merchant's id is simply not found."""
    asset = session.scalar(select(Asset).where(Asset.id == asset_id, Asset.merchant_id == merchant_id))
    if asset is None:
        raise NotFound(f"no asset {asset_id!r}", code="asset_not_found")
    return asset


def asset_to_dict(asset: Asset) -> dict[str, Any]:
    from media_service.api.files import signed_url

    return {
        "id": asset.id, "kind": asset.kind, "format": asset.format, "mime": asset.mime,
        "size": asset.size, "sha256": asset.sha256, "filename": asset.filename,
        "width": asset.width, "height": asset.height, "duration": asset.duration, "frames": asset.frames,
        "details": asset.details, "source": asset.source, "created_at": asset.created_at.isoformat(),
        "url": signed_url(asset.storage_key),
        "thumbnail_url": signed_url(asset.thumbnail_key) if asset.thumbnail_key else None,
        "links": {"self": url_for("assets.get_asset", asset_id=asset.id)},
    }


@embed_provider("asset")
def describe_asset_for_embed(session: Session, merchant_id: str, asset_id: str) -> dict[str, Any]:
    """An image asset shows as a picture; a video asset plays its original file."""
    from media_service.api.files import signed_url

    asset = get_asset(session, merchant_id, asset_id)
    if asset.kind == "image":
        return {"mode": "image", "title": asset.filename,
                "image": {"src": signed_url(asset.storage_key), "width": asset.width, "height": asset.height}}
    return {"mode": "video", "title": asset.filename,
            "video": {"mp4": signed_url(asset.storage_key), "hls": None, "width": asset.width, "height": asset.height,
                      "poster": signed_url(asset.thumbnail_key) if asset.thumbnail_key else None}}
