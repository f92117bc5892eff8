"""Assets: turning a validated local file into a merchant's asset (multipart and tus uploads), and deleting one.

Deleting an asset also deletes what was made of it alone: each feature lists a ``DependentsFinder`` in its
``Feature`` (videos and their renditions, video indexes and tap cut-outs); derived works that stand on their
own (a panorama stitched from several photos, a spin) are kept.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flask import url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from media_service import media_options
from media_service.db import begin_write, end_read
from media_service.errors import BadRequest, InvalidMedia, NotFound
from media_service.jobs.queue import enqueue
from media_service.jobs.resources import Dependents, DependentsFinder, delete_with_files
from media_service.media.ingest import inspect_media
from media_service.models import Asset, new_id
from media_service.storage import Storage, sha256_file
from media_service.web.files import signed_url

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
        facts = inspect_media(path, media_options.ingest_limits(settings))
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
    return {
        "id": asset.id, "kind": asset.kind, "format": asset.format, "mime": asset.mime,
        "size": asset.size, "sha256": asset.sha256, "filename": asset.filename,
        "width": asset.width, "height": asset.height, "duration": asset.duration, "frames": asset.frames,
        "details": asset.details, "source": asset.source, "created_at": asset.created_at.isoformat(),
        "url": signed_url(asset.storage_key),
        "thumbnail_url": signed_url(asset.thumbnail_key) if asset.thumbnail_key else None,
        "links": {"self": url_for("assets.get_asset", asset_id=asset.id)},
    }


def describe_asset_for_embed(session: Session, merchant_id: str, asset_id: str) -> dict[str, Any]:
    """An image asset shows as a picture; a video asset plays its original file."""
    asset = get_asset(session, merchant_id, asset_id)
    if asset.kind == "image":
        return {"mode": "image", "title": asset.filename,
                "image": {"src": signed_url(asset.storage_key), "width": asset.width, "height": asset.height}}
    return {"mode": "video", "title": asset.filename,
            "video": {"mp4": signed_url(asset.storage_key), "hls": None, "width": asset.width, "height": asset.height,
                      "poster": signed_url(asset.thumbnail_key) if asset.thumbnail_key else None}}


_DEPENDENTS: list[DependentsFinder] = []


def register_dependents(finders: Iterable[DependentsFinder]) -> None:
    """Make the features' dependents finders known (from ``media_service.features``)."""
    _DEPENDENTS.extend(finder for finder in finders if finder not in _DEPENDENTS)


def delete_asset(session: Session, storage: Storage, asset: Asset) -> None:
    """Delete an asset with its files and everything made of it alone."""
    found = Dependents(prefixes=[asset_prefix(asset.merchant_id, asset.id)])
    for finder in _DEPENDENTS:
        more = finder(session, asset)
        found.job_ids += more.job_ids
        found.prefixes += more.prefixes
    delete_with_files(session, storage, [asset], job_ids=found.job_ids, prefixes=found.prefixes)


def asset_id_list(value: Any, *, field: str, minimum: int, maximum: int, what: str) -> list[str]:
    """A list of distinct asset ids of the right length (400 otherwise)."""
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 40 for v in value):
        raise BadRequest(f"{field} must be a list of asset ids (ast_...)", code="invalid_asset_ids")
    if len(value) < minimum:
        raise BadRequest(f"{what} needs at least {minimum} photos, got {len(value)}; upload the overlapping "
                         "photos and list all of them", code="too_few_photos")
    if len(value) > maximum:
        raise BadRequest(f"at most {maximum} photos can go into {what}, got {len(value)}", code="too_many_photos")
    seen: set[str] = set()
    for asset_id in value:
        if asset_id in seen:
            raise BadRequest(f"asset {asset_id} is listed twice; list each photo once", code="duplicate_asset")
        seen.add(asset_id)
    return list(value)


def image_assets(session: Session, merchant_id: str, asset_ids: list[str]) -> list[Asset]:
    """The merchant's assets (404 for unknown or foreign ids), all of them images (422 otherwise)."""
    assets = [get_asset(session, merchant_id, asset_id) for asset_id in asset_ids]
    for asset in assets:
        if asset.kind != "image":
            raise InvalidMedia(f"asset {asset.id} is a {asset.kind}, not a photo; list only image assets",
                               code="not_an_image", asset_id=asset.id)
    return assets


def import_local_file(session: Session, storage: Storage, settings: Mapping[str, Any], *, merchant_id: str,
                      path: Path, source: str, sha256: str | None = None) -> tuple[Asset, bool]:
    """A local file (left untouched) as the merchant's asset, with the upload API's checks: (asset, created)."""
    with tempfile.TemporaryDirectory(dir=Path(settings["DATA_DIR"])) as tmp:
        copy = Path(tmp) / "import"
        shutil.copyfile(path, copy)
        return accept_file(session, storage, settings, merchant_id=merchant_id, path=copy,
                           sha256=sha256 or sha256_file(copy), filename=path.name, source=source)
