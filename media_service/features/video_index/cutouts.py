"""Cut-outs of tracked products: signed, expiring links, rendered from the stored frame on first fetch."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from media_service.errors import NotFound
from media_service.features.video_index.job import read_packed_frame
from media_service.media.detection.cutout import encode_png, render_cutout
from media_service.models import ProductTrack, VideoIndex
from media_service.security.links import check_link, link_expiry, link_signature
from media_service.storage import Storage


def cutout_url(settings: Mapping[str, Any], index_id: str, number: int, frame: int) -> str:
    """A signed, expiring URL of a track's cut-out in one indexed frame (rendered on first fetch)."""
    from flask import url_for

    expires = link_expiry(settings["SIGNED_URL_SECONDS"])
    signature = link_signature(settings["SECRET_KEY"], "cutout", index_id, number, frame, expires)
    values = {"index_id": index_id, "number": number, "frame": frame, "expires": expires, "signature": signature}
    base = str(settings.get("PUBLIC_URL") or "").rstrip("/")
    return base + url_for("video_index.cutout", **values) if base else \
        url_for("video_index.cutout", _external=True, **values)


def check_cutout_signature(settings: Mapping[str, Any], index_id: str, number: int, frame: int, expires: Any,
                           signature: str) -> int:
    """The expiry of a valid cut-out link; 403 otherwise."""
    return check_link(settings["SECRET_KEY"], ("cutout", index_id, number, frame), expires, signature,
                      fresh="tap again for a fresh one")


def render_track_cutout(session: Session, storage: Storage, index_id: str, number: int, frame: int) -> bytes:
    """PNG bytes of a track's cut-out in one indexed frame: from storage, or cropped and stored once."""
    index = session.get(VideoIndex, index_id)
    if index is None or not index.output_prefix:
        raise NotFound("this cut-out no longer exists", code="cutout_not_found")
    key = f"{index.output_prefix}/cutouts/{number}-{frame}.png"
    if storage.exists(key):
        with storage.open(key) as handle:
            return handle.read()
    track = session.scalar(select(ProductTrack).where(ProductTrack.index_id == index_id,
                                                      ProductTrack.number == number))
    position = next((i for i, s in enumerate(track.samples if track else []) if s["frame"] == frame), None)
    polygon = track.outlines[position] if track is not None and position is not None \
        and position < len(track.outlines or []) else None
    if not polygon:
        raise NotFound("this cut-out no longer exists", code="cutout_not_found")
    with storage.open(f"{index.output_prefix}/frames.pack") as handle:
        image = read_packed_frame(handle, frame)
    cut = render_cutout(image, np.array(polygon, np.float32) * [image.shape[1], image.shape[0]]) \
        if image is not None else None
    if cut is None:
        raise NotFound("this cut-out is empty", code="cutout_not_found")
    data = encode_png(cut.rgba)
    storage.put_stream(key, io.BytesIO(data))
    return data
