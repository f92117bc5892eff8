"""gzip of text responses: the widget script, JSON; never images, ranges or HEAD."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from media_service import create_app
from tests.conftest import REPO, MerchantCredentials, make_test_config

WIDGET = REPO / "static" / "media-viewer.js"
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}


def test_the_widget_script_is_sent_gzipped_to_browsers_that_accept_it(client: FlaskClient) -> None:
    plain = client.get("/static/media-viewer.js")
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    assert plain.data == WIDGET.read_bytes() and "Accept-Encoding" in plain.headers["Vary"]

    packed = client.get("/static/media-viewer.js", headers=BROWSER)
    assert packed.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed.headers["Vary"]
    assert gzip.decompress(packed.data) == WIDGET.read_bytes()
    assert int(packed.headers["Content-Length"]) == len(packed.data) < len(plain.data) / 2
    assert packed.headers["Access-Control-Allow-Origin"] == "*"  # still loadable as a module from any page
    # the gzip variant has its own (weak) ETag, and a revalidation with it is answered 304
    assert packed.headers["ETag"].startswith('W/"') and not plain.headers["ETag"].startswith("W/")
    again = client.get("/static/media-viewer.js", headers={**BROWSER, "If-None-Match": packed.headers["ETag"]})
    assert again.status_code == 304 and not again.data


def test_refused_encoding_head_and_ranges_are_sent_as_they_are(client: FlaskClient) -> None:
    refused = client.get("/static/media-viewer.js", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers and refused.data == WIDGET.read_bytes()
    head = client.head("/static/media-viewer.js", headers=BROWSER)
    assert "Content-Encoding" not in head.headers
    ranged = client.get("/static/media-viewer.js", headers={**BROWSER, "Range": "bytes=0-99"})
    assert ranged.status_code == 206 and "Content-Encoding" not in ranged.headers and len(ranged.data) == 100


def test_json_is_compressed_but_small_bodies_and_images_are_not(client: FlaskClient,
                                                                merchant: MerchantCredentials) -> None:
    spec = client.get("/v1/openapi.json", headers=BROWSER)
    assert spec.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(spec.data).startswith(b"{") and spec.content_type == "application/json"
    small = client.get("/v1/assets", headers={**merchant.headers, **BROWSER})
    assert len(small.data) < 1024 and "Content-Encoding" not in small.headers and small.json == {
        "items": [], "next_cursor": None}
    photo = io.BytesIO()
    Image.effect_noise((256, 256), 40).convert("RGB").save(photo, "PNG")
    created = client.post("/v1/assets", headers=merchant.headers,
                          data={"file": (io.BytesIO(photo.getvalue()), "noise.png")})
    assert created.status_code == 201
    image = client.get(created.json["url"], headers=BROWSER)
    assert image.status_code == 200 and image.mimetype == "image/png" and "Content-Encoding" not in image.headers
    assert image.data == photo.getvalue()
    error = client.get("/v1/assets/ast_missing", headers={**merchant.headers, **BROWSER})
    assert error.status_code == 404 and "Content-Encoding" not in error.headers


def test_operators_behind_a_compressing_proxy_can_turn_it_off(tmp_path: Path) -> None:
    app: Flask = create_app(make_test_config(tmp_path, GZIP_RESPONSES=False))
    response = app.test_client().get("/static/media-viewer.js", headers=BROWSER)
    assert "Content-Encoding" not in response.headers and response.data == WIDGET.read_bytes()
