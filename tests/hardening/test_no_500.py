"""Inputs that used to be a 500: deep or odd JSON, broken origins, forged page cursors, Unicode digits.

Each case must be a 4xx problem+json with a stable code. The cases come from a probe of the running
service; every one answered 500 before (RecursionError, ValueError from urlsplit/int, a dict compared
with a string column).
"""

from __future__ import annotations

import base64
import json
from io import BytesIO
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from media_service.web.requests import JSON_MAX_BYTES
from tests.conftest import MerchantCredentials
from tests.support import hostile

JSON_ENDPOINTS = [("post", "/v1/webhooks"), ("put", "/v1/embed-settings"), ("post", "/v1/embed-tokens"),
                  ("post", "/v1/videos"), ("post", "/v1/batches"), ("post", "/v1/products"),
                  ("post", "/v1/panoramas"), ("post", "/v1/upload-tokens"), ("put", "/v1/settings/cart-webhook")]


def _problem(response, status: int | tuple[int, ...], code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.data[:300])
    assert response.mimetype == "application/problem+json"
    if code is not None:
        assert response.json["code"] == code, response.json
    return response.json


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
@pytest.mark.parametrize(("body", "code"), [
    (b"[" * 100_000 + b"]" * 100_000, "json_too_deep"),          # RecursionError in the parser
    (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "json_too_deep"),
    # parses, but deeper than any body of this API
    (b'{"url": ' + b"[" * 40 + b'"x"' + b"]" * 40 + b"}", "json_too_deep"),
    (b'{"url": NaN}', "invalid_json"),
    (b'{"n": ' + b"9" * 5000 + b"}", "invalid_json"),            # beyond Python's integer digit limit
    (b'{"url": "\xff\xfe"}', "invalid_json"),                    # not UTF-8
])
def test_malformed_json_is_a_400_everywhere(client: FlaskClient, merchant: MerchantCredentials, method: str,
                                            path: str, body: bytes, code: str) -> None:
    response = getattr(client, method)(path, data=body, content_type="application/json", headers=merchant.headers)
    _problem(response, 400, code)


def test_an_oversized_json_body_is_a_413(client: FlaskClient, merchant: MerchantCredentials) -> None:
    body = json.dumps({"url": "x" * (JSON_MAX_BYTES + 10)})
    _problem(client.post("/v1/webhooks", data=body, content_type="application/json", headers=merchant.headers),
             413, "json_too_large")


@pytest.fixture
def image_asset(client: FlaskClient, merchant: MerchantCredentials, tmp_path: Path) -> str:
    path = hostile.small_jpeg(tmp_path)
    uploaded = client.post("/v1/assets", headers=merchant.headers, content_type="multipart/form-data",
                           data={"file": (BytesIO(path.read_bytes()), "photo.jpg")})
    assert uploaded.status_code == 201, uploaded.json
    return uploaded.json["id"]


BAD_ORIGINS = ["https://x:99999", "https://[::1", "https://a.example:0", "https://[fe80::1%eth0]",
               "https://a..example", "https://-a.example", "https://a.example:-1", "https://exa mple.com",
               "https://x\u0000y.example", "https://\u2028.example"]


@pytest.mark.parametrize("origin", BAD_ORIGINS)
def test_broken_origins_are_a_400(client: FlaskClient, merchant: MerchantCredentials, image_asset: str,
                                  origin: str) -> None:
    _problem(client.put("/v1/embed-settings", json={"allowed_origins": [origin]}, headers=merchant.headers),
             400, "invalid_origin")
    _problem(client.post("/v1/embed-tokens", json={"target_id": image_asset, "origins": [origin]},
                         headers=merchant.headers), 400, "invalid_origin")
    _problem(client.get("/oembed", query_string={"url": f"{origin}/embed/{image_asset}?token=x"}), 404,
             "not_an_embed")


def test_non_ascii_origins_are_stored_as_browsers_send_them(client: FlaskClient,
                                                            merchant: MerchantCredentials) -> None:
    origins = ["https://Bücher.Example:443", "https://[::1]:8443"]
    saved = client.put("/v1/embed-settings", json={"allowed_origins": origins}, headers=merchant.headers)
    assert saved.status_code == 200
    assert saved.json["allowed_origins"] == ["https://[::1]:8443", "https://xn--bcher-kva.example"]


@pytest.mark.parametrize("last_id", [{"a": 1}, [1, 2], None, 5, "x" * 500])
def test_forged_cursors_are_a_400(client: FlaskClient, merchant: MerchantCredentials, last_id: object) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps(["2024-01-01T00:00:00+00:00", last_id]).encode()).decode()
    for path in ("/v1/assets", "/v1/jobs", "/v1/videos", "/v1/products"):
        _problem(client.get(path, query_string={"cursor": cursor}, headers=merchant.headers), 400, "invalid_cursor")


@pytest.mark.parametrize("digits", ["²", "١٢", "12²", "¹⁰"])
def test_unicode_digits_in_numeric_headers_and_arguments_are_a_400(client: FlaskClient,
                                                                   merchant: MerchantCredentials,
                                                                   image_asset: str, digits: str) -> None:
    tus = {**merchant.headers, "Tus-Resumable": "1.0.0"}
    _problem(client.post("/v1/uploads", headers={**tus, "Upload-Length": digits}), 400)
    created = client.post("/v1/uploads", headers={**tus, "Upload-Length": "10"})
    assert created.status_code == 201
    patched = client.patch(created.headers["Location"], data=b"0123456789",
                           headers={**tus, "Upload-Offset": digits, "Content-Type": "application/offset+octet-stream"})
    _problem(patched, 400)
    _problem(client.get("/v1/assets", query_string={"limit": digits}, headers=merchant.headers), 400, "invalid_limit")
    token = client.post("/v1/embed-tokens", json={"target_id": image_asset, "origins": ["https://shop.example"]},
                        headers=merchant.headers).json["token"]
    oembed = client.get("/oembed", query_string={"url": f"http://localhost/embed/{image_asset}?token={token}",
                                                 "maxwidth": digits})
    _problem(oembed, 400, "invalid_size")
