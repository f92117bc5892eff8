"""``/v1/assets`` with real files from the shared corpus: upload, dedupe, list, read, delete, isolation."""

from __future__ import annotations

import hashlib
from io import BytesIO
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import MerchantCredentials, media, wait_for_job


def upload(client: FlaskClient, who: MerchantCredentials, path: Path, name: str | None = None):
    return client.post("/v1/assets", headers=who.headers,
                       data={"file": (BytesIO(path.read_bytes()), name or path.name)},
                       content_type="multipart/form-data")


@pytest.mark.parametrize(("relative", "kind", "fmt", "size"), [
    ("panorama/hill/1.JPG", "image", "jpeg", (400, 300)),
    ("products/catalog/solidus_mug_set.png", "image", "png", (1360, 1190)),
    ("video/flower.mp4", "video", "mp4", (960, 540)),
    ("video/iphone_rotated.mov", "video", "mov", (320, 568)),
    ("video/bear-vp9-odd-dimensions.webm", "video", "webm", (161, 121)),
])
def test_upload_real_media(client: FlaskClient, merchant: MerchantCredentials, relative: str, kind: str,
                           fmt: str, size: tuple[int, int]) -> None:
    path = media(relative)
    response = upload(client, merchant, path)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (body["kind"], body["format"], (body["width"], body["height"])) == (kind, fmt, size)
    assert body["filename"] == path.name
    assert response.headers["Location"].endswith(f"/v1/assets/{body['id']}")
    downloaded = client.get(body["url"].split("localhost", 1)[1])
    assert downloaded.status_code == 200
    assert hashlib.sha256(downloaded.data).hexdigest() == body["sha256"]


def test_same_content_returns_the_existing_asset(client: FlaskClient, merchant: MerchantCredentials,
                                                 other_merchant: MerchantCredentials) -> None:
    path = media("panorama/hill/2.JPG")
    first = upload(client, merchant, path)
    second = upload(client, merchant, path, name="renamed.jpg")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json["id"] == second.json["id"]
    # another merchant gets an asset of their own
    theirs = upload(client, other_merchant, path)
    assert theirs.status_code == 201 and theirs.json["id"] != first.json["id"]


def test_tenant_isolation(client: FlaskClient, merchant: MerchantCredentials,
                          other_merchant: MerchantCredentials) -> None:
    asset_id = upload(client, merchant, media("panorama/hill/3.JPG")).json["id"]
    assert client.get(f"/v1/assets/{asset_id}", headers=other_merchant.headers).status_code == 404
    assert client.delete(f"/v1/assets/{asset_id}", headers=other_merchant.headers).status_code == 404
    assert client.get("/v1/assets", headers=other_merchant.headers).json["items"] == []
    assert client.get(f"/v1/assets/{asset_id}", headers=merchant.headers).status_code == 200


def test_paging_is_stable_and_complete(client: FlaskClient, merchant: MerchantCredentials) -> None:
    paths = [media(f"panorama/{s}") for s in ("hill/1.JPG", "hill/2.JPG", "hill/3.JPG", "pier/1.JPG")]
    ids = {upload(client, merchant, p).json["id"] for p in paths}
    seen: list[str] = []
    cursor = None
    while True:
        query = "/v1/assets?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(query, headers=merchant.headers).json
        seen += [a["id"] for a in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 4
    assert client.get("/v1/assets?limit=0", headers=merchant.headers).status_code == 400
    assert client.get("/v1/assets?cursor=garbage", headers=merchant.headers).status_code == 400


def test_delete_removes_files(app: Flask, client: FlaskClient, merchant: MerchantCredentials) -> None:
    body = upload(client, merchant, media("panorama/pier/2.JPG")).json
    folder = Path(app.config["STORAGE_ROOT"]) / "assets" / merchant.merchant_id / body["id"]
    assert folder.exists()
    assert client.delete(f"/v1/assets/{body['id']}", headers=merchant.headers).status_code == 204
    assert not folder.exists()
    assert client.get(f"/v1/assets/{body['id']}", headers=merchant.headers).status_code == 404


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"data": {"other": (BytesIO(b"x"), "x.jpg")}, "content_type": "multipart/form-data"}, 400,
     "file_field_required"),
    ({"json": {"file": "x"}}, 400, "multipart_required"),
    ({"data": {"file": (BytesIO(b""), "empty.jpg")}, "content_type": "multipart/form-data"}, 400, "empty_file"),
    ({"data": {"file": (BytesIO(b"hello world, not an image"), "x.jpg")},
      "content_type": "multipart/form-data"}, 415, "unsupported_media_type"),
])
def test_bad_uploads_get_clear_problems(client: FlaskClient, merchant: MerchantCredentials, kwargs: dict,
                                        status: int, code: str) -> None:
    response = client.post("/v1/assets", headers=merchant.headers, **kwargs)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == code
    assert response.json["detail"]


def test_multipart_limit_is_413(data_dir: Path, merchant: MerchantCredentials) -> None:
    from media_service import create_app

    small = create_app({"DATA_DIR": str(data_dir), "MAX_MULTIPART_BYTES": 50_000})
    response = upload(small.test_client(), merchant, media("panorama/hill/1.JPG"))
    assert response.status_code == 413
    assert "/v1/uploads/" in response.json["detail"]
    assert list((data_dir / "uploads").glob("multipart-*")) == []


def test_no_temporary_files_left_behind(app: Flask, client: FlaskClient, merchant: MerchantCredentials) -> None:
    upload(client, merchant, media("panorama/hill/1.JPG"))
    client.post("/v1/assets", headers=merchant.headers, data={"file": (BytesIO(b"junk" * 100), "j.png")},
                content_type="multipart/form-data")
    assert list((Path(app.config["DATA_DIR"]) / "uploads").glob("multipart-*")) == []


def test_signed_urls_refuse_tampering(client: FlaskClient, merchant: MerchantCredentials) -> None:
    url = upload(client, merchant, media("panorama/hill/1.JPG")).json["url"].split("localhost", 1)[1]
    assert client.get(url.replace("signature=", "signature=0")).status_code == 403
    assert client.get(url.replace("original.jpg", "thumbnail.jpg")).status_code == 403
    assert client.get(url.split("?")[0]).status_code == 403


def test_thumbnail_job_makes_a_preview(app: Flask, client: FlaskClient, merchant: MerchantCredentials,
                                       worker: object) -> None:
    from PIL import Image

    for relative in ("video/iphone_rotated.mov", "video/pixel-motion-photo-2-hevc-tracks.mp4", "panorama/hill/1.JPG"):
        asset = upload(client, merchant, media(relative)).json
        job = next(j for j in client.get("/v1/jobs?kind=assets.thumbnail", headers=merchant.headers).json["items"]
                   if j["params"]["asset_id"] == asset["id"])
        wait_for_job(app, job["id"])
        asset = client.get(f"/v1/assets/{asset['id']}", headers=merchant.headers).json
        assert asset["thumbnail_url"], asset
        data = client.get(asset["thumbnail_url"].split("localhost", 1)[1]).data
        image = Image.open(BytesIO(data))
        assert image.format == "JPEG" and "exif" not in image.info
        # the rotated phone clips are portrait once upright; the Pixel file's main stream is the 1024x768 video
        if relative.startswith("video/"):
            assert image.height > image.width


def test_live_server_multipart_upload(live_server, merchant: MerchantCredentials) -> None:
    path = media("products/catalog/solidus_cap_red_1.png")
    with path.open("rb") as handle:
        response = requests.post(f"{live_server.url}/v1/assets", headers=merchant.headers,
                                 files={"file": (path.name, handle)}, timeout=30)
    assert response.status_code == 201
    assert response.json()["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
