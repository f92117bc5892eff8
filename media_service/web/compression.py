"""gzip for text responses: the widget script, JSON, manifests, playlists and subtitles.

Shoppers load the widget over mobile networks, often from a page that no CDN compresses for us, so the
service compresses what compresses well (text) itself, when the client accepts gzip. Images, video and
ranges are sent as they are. The compressed widget script is kept in memory by its ETag, so each version
is compressed once per process. ``GZIP_RESPONSES = false`` turns it off behind a proxy that does it.
"""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict
from collections.abc import Callable

from flask import Flask, Response, request

COMPRESSIBLE_TYPES = frozenset({
    "application/json", "application/problem+json", "application/javascript", "text/javascript",
    "text/css", "text/html", "text/plain", "text/vtt", "image/svg+xml", "application/xml",
    "application/vnd.apple.mpegurl", "application/x-mpegurl", "application/json+oembed",
})
MIN_BYTES = 1024  # below this the gzip header and a round of CPU cost more than they save
MAX_BYTES = 8 * 1024 * 1024  # larger bodies are files sent as they are (and are not text we make)
LEVEL = 6
_CACHE_ENTRIES = 64


class _CompressedByETag:
    """Compressed bodies of files with a strong ETag (static files), least recently used first out.

    A hit never reads the file again; gunicorn's threads share it, hence the lock.
    """

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compress(self, etag: str, read_body: Callable[[], bytes]) -> bytes:
        with self._lock:
            if etag in self._bodies:
                self._bodies.move_to_end(etag)
                return self._bodies[etag]
        compressed = _gzip(read_body())
        with self._lock:
            self._bodies[etag] = compressed
            while len(self._bodies) > self.entries:
                self._bodies.popitem(last=False)
        return compressed


def _gzip(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=LEVEL, mtime=0)


def register_compression(app: Flask) -> None:
    if not app.config["GZIP_RESPONSES"]:
        return
    cache = _CompressedByETag(_CACHE_ENTRIES)

    @app.after_request
    def gzip_text(response: Response) -> Response:
        return compress_response(response, cache)


def compress_response(response: Response, cache: _CompressedByETag) -> Response:
    if (response.mimetype or "").lower() not in COMPRESSIBLE_TYPES:
        return response
    response.vary.add("Accept-Encoding")
    if request.method != "GET" or response.status_code != 200 or "Content-Encoding" in response.headers:
        return response  # HEAD, ranges (206), not-modified (304), errors and bodies already encoded
    if request.accept_encodings.quality("gzip") <= 0:
        return response
    length = response.content_length  # set for bodies we made and files we send; None for streams
    if length is None or not MIN_BYTES <= length <= MAX_BYTES:
        return response
    response.direct_passthrough = False  # a sent file: read it when needed (it is small, see MAX_BYTES)
    etag, weak = response.get_etag()
    if etag and not weak:
        compressed = cache.get_or_compress(etag, response.get_data)
        if hasattr(response.response, "close"):  # a hit leaves the sent file unread: close it
            response.response.close()
    else:
        compressed = _gzip(response.get_data())
    response.set_data(compressed)
    response.headers["Content-Encoding"] = "gzip"
    if etag:
        # Another encoding of the same content: a weak ETag, which If-None-Match still matches (RFC 9110).
        response.set_etag(etag, weak=True)
    return response

