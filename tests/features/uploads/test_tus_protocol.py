"""The tus 1.0 protocol, request by request, against the Flask app with a real SQLite file and disk."""

from __future__ import annotations

import base64
import hashlib
import itertools
import threading
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from media_service.features.uploads.service import part_path
from tests.conftest import MerchantCredentials, media

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def create(client: FlaskClient, who: MerchantCredentials, length: int, **headers: str) -> str:
    response = client.post("/v1/uploads", headers={**who.headers, **TUS, "Upload-Length": str(length), **headers})
    assert response.status_code == 201, response.json
    return response.headers["Location"].split("/v1/uploads/")[1]


def patch(client: FlaskClient, who: MerchantCredentials, upload_id: str, offset: int | str, data: bytes,
          **headers: str):
    return client.patch(f"/v1/uploads/{upload_id}", data=data, headers={
        **who.headers, **TUS, "Upload-Offset": str(offset), "Content-Type": OCTETS, **headers})


def head(client: FlaskClient, who: MerchantCredentials, upload_id: str):
    return client.head(f"/v1/uploads/{upload_id}", headers={**who.headers, **TUS})


@pytest.fixture
def photo() -> bytes:
    return media("panorama/hill/1.JPG").read_bytes()


def test_options_advertises_extensions(client: FlaskClient) -> None:
    response = client.options("/v1/uploads")
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) >= {
        "creation", "creation-with-upload", "termination", "expiration", "checksum"}
    assert "sha256" in response.headers["Tus-Checksum-Algorithm"]


def test_upload_in_three_chunks_becomes_an_asset(client: FlaskClient, merchant: MerchantCredentials,
                                                 photo: bytes) -> None:
    upload_id = create(client, merchant, len(photo), **{"Upload-Metadata": f"filename {b64('hill 1.jpg')}"})
    first = head(client, merchant, upload_id)
    assert first.status_code == 200
    assert first.headers["Upload-Offset"] == "0"
    assert first.headers["Cache-Control"] == "no-store"
    assert "Upload-Expires" in first.headers
    cuts = [0, 20_000, 50_000, len(photo)]
    for start, end in itertools.pairwise(cuts):
        response = patch(client, merchant, upload_id, start, photo[start:end])
        assert response.status_code == 204, response.json
        assert response.headers["Upload-Offset"] == str(end)
    asset_id = response.headers["Media-Service-Asset-Id"]
    asset = client.get(f"/v1/assets/{asset_id}", headers=merchant.headers).json
    assert asset["sha256"] == hashlib.sha256(photo).hexdigest()
    assert asset["filename"] == "hill 1.jpg"
    assert (asset["kind"], asset["format"], asset["width"], asset["height"]) == ("image", "jpeg", 400, 300)
    assert client.get(f"/v1/uploads/{upload_id}", headers=merchant.headers).json["state"] == "completed"


def test_creation_with_upload(client: FlaskClient, merchant: MerchantCredentials, photo: bytes) -> None:
    response = client.post("/v1/uploads", data=photo[:1000], headers={
        **merchant.headers, **TUS, "Upload-Length": str(len(photo)), "Content-Type": OCTETS})
    assert response.status_code == 201
    assert response.headers["Upload-Offset"] == "1000"


@pytest.mark.parametrize(("offset", "status", "code"), [
    ("5", 409, "offset_mismatch"),          # wrong offset
    ("-1", 400, "invalid_header"),          # negative
    ("99999999999999999999999", 400, "invalid_header"),  # overflow
    ("abc", 400, "invalid_header"),
])
def test_bad_offsets_change_nothing(client: FlaskClient, merchant: MerchantCredentials, photo: bytes,
                                    offset: str, status: int, code: str) -> None:
    upload_id = create(client, merchant, len(photo))
    assert patch(client, merchant, upload_id, 0, photo[:100]).status_code == 204
    response = patch(client, merchant, upload_id, offset, photo[100:200])
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == code
    assert head(client, merchant, upload_id).headers["Upload-Offset"] == "100"
    assert part_path(client.application.config, upload_id).read_bytes() == photo[:100]


def test_chunk_past_length_is_413_and_discarded(client: FlaskClient, merchant: MerchantCredentials) -> None:
    upload_id = create(client, merchant, 10)
    response = patch(client, merchant, upload_id, 0, b"x" * 11)
    assert response.status_code == 413
    assert head(client, merchant, upload_id).headers["Upload-Offset"] == "0"


def test_upload_length_over_limit_is_413(client: FlaskClient, merchant: MerchantCredentials) -> None:
    limit = client.application.config["MAX_UPLOAD_BYTES"]
    response = client.post("/v1/uploads", headers={**merchant.headers, **TUS, "Upload-Length": str(limit + 1)})
    assert response.status_code == 413
    assert response.json["code"] == "upload_too_large"


def test_checksum_mismatch_is_460_and_chunk_discarded(client: FlaskClient, merchant: MerchantCredentials,
                                                      photo: bytes) -> None:
    upload_id = create(client, merchant, len(photo))
    good = patch(client, merchant, upload_id, 0, photo[:500],
                 **{"Upload-Checksum": "sha256 " + b64(hashlib.sha256(photo[:500]).digest())})
    assert good.status_code == 204
    wrong = patch(client, merchant, upload_id, 500, photo[500:1000],
                  **{"Upload-Checksum": "sha256 " + b64(hashlib.sha256(b"other").digest())})
    assert wrong.status_code == 460
    assert wrong.json["code"] == "checksum_mismatch"
    assert head(client, merchant, upload_id).headers["Upload-Offset"] == "500"
    assert part_path(client.application.config, upload_id).stat().st_size == 500


def test_unsupported_checksum_algorithm_is_400(client: FlaskClient, merchant: MerchantCredentials) -> None:
    upload_id = create(client, merchant, 10)
    response = patch(client, merchant, upload_id, 0, b"0123456789", **{"Upload-Checksum": "crc32 AAAA"})
    assert response.status_code == 400
    assert response.json["code"] == "unsupported_checksum_algorithm"


def test_whole_file_sha256_mismatch_is_never_finalised(client: FlaskClient, merchant: MerchantCredentials,
                                                       photo: bytes) -> None:
    flipped = bytearray(photo)
    flipped[len(photo) // 2] ^= 0x01
    declared = hashlib.sha256(photo).hexdigest()
    upload_id = create(client, merchant, len(photo), **{"Upload-Metadata": f"sha256 {b64(declared)}"})
    response = patch(client, merchant, upload_id, 0, bytes(flipped))
    assert response.status_code == 460
    assert response.json["code"] == "file_checksum_mismatch"
    assert client.get("/v1/assets", headers=merchant.headers).json["items"] == []
    assert head(client, merchant, upload_id).status_code == 410


def test_wrong_content_type_and_missing_tus_header(client: FlaskClient, merchant: MerchantCredentials) -> None:
    upload_id = create(client, merchant, 10)
    response = client.patch(f"/v1/uploads/{upload_id}", data=b"x", headers={
        **merchant.headers, **TUS, "Upload-Offset": "0", "Content-Type": "text/plain"})
    assert response.status_code == 415
    response = client.patch(f"/v1/uploads/{upload_id}", data=b"x", headers={
        **merchant.headers, "Upload-Offset": "0", "Content-Type": OCTETS})
    assert response.status_code == 412


@pytest.mark.parametrize("metadata", ["filename ***notbase64***", "bad key aGk=", "filename " + b64(b"\xff\xfe")])
def test_malformed_metadata_is_400(client: FlaskClient, merchant: MerchantCredentials, metadata: str) -> None:
    response = client.post("/v1/uploads", headers={**merchant.headers, **TUS, "Upload-Length": "10",
                                                   "Upload-Metadata": metadata})
    assert response.status_code == 400
    assert response.json["code"] == "invalid_upload_metadata"


def test_crlf_and_control_characters_in_filename_are_neutralised(client: FlaskClient,
                                                                  merchant: MerchantCredentials,
                                                                  photo: bytes) -> None:
    name = "../../evil\r\nSet-Cookie: x=1\u202egpj.exe"
    upload_id = create(client, merchant, len(photo), **{"Upload-Metadata": f"filename {b64(name)}"})
    response = patch(client, merchant, upload_id, 0, photo)
    asset = client.get(f"/v1/assets/{response.headers['Media-Service-Asset-Id']}", headers=merchant.headers).json
    assert "/" not in asset["filename"] and "\r" not in asset["filename"] and "\u202e" not in asset["filename"]
    assert "evil" not in asset["url"]


def test_idempotency_key_returns_the_same_upload(client: FlaskClient, merchant: MerchantCredentials) -> None:
    first = create(client, merchant, 100, **{"Idempotency-Key": "order-42"})
    second = create(client, merchant, 100, **{"Idempotency-Key": "order-42"})
    assert first == second


def test_termination(client: FlaskClient, merchant: MerchantCredentials, photo: bytes) -> None:
    upload_id = create(client, merchant, len(photo))
    patch(client, merchant, upload_id, 0, photo[:100])
    response = client.delete(f"/v1/uploads/{upload_id}", headers={**merchant.headers, **TUS})
    assert response.status_code == 204
    assert head(client, merchant, upload_id).status_code == 404
    assert not part_path(client.application.config, upload_id).exists()


def test_expired_upload_is_gone_and_cleaned(app: Flask, client: FlaskClient, merchant: MerchantCredentials) -> None:
    from datetime import timedelta

    from media_service.features.uploads.service import expire_uploads
    from media_service.models import Upload, utcnow

    upload_id = create(client, merchant, 100)
    with app.extensions["database"].session(write=True) as session:
        session.get(Upload, upload_id).expires_at = utcnow() - timedelta(seconds=1)
    assert head(client, merchant, upload_id).status_code == 410
    with app.extensions["database"].session() as session:
        assert expire_uploads(session, app.config) == 1
    assert not part_path(app.config, upload_id).exists()


def test_another_merchant_cannot_touch_an_upload(client: FlaskClient, merchant: MerchantCredentials,
                                                  other_merchant: MerchantCredentials, photo: bytes) -> None:
    upload_id = create(client, merchant, len(photo))
    assert head(client, other_merchant, upload_id).status_code == 404
    assert patch(client, other_merchant, upload_id, 0, photo[:10]).status_code == 404
    assert client.delete(f"/v1/uploads/{upload_id}", headers={**other_merchant.headers, **TUS}).status_code == 404
    assert head(client, merchant, upload_id).headers["Upload-Offset"] == "0"


def test_concurrent_patches_never_corrupt(app: Flask, merchant: MerchantCredentials, photo: bytes) -> None:
    """Twenty threads PATCH the same offset at once: one wins, the others get 409/423, data stays exact."""
    client = app.test_client()
    upload_id = create(client, merchant, len(photo))
    statuses: list[int] = []
    barrier = threading.Barrier(20)

    def send() -> None:
        local = app.test_client()
        barrier.wait()
        statuses.append(patch(local, merchant, upload_id, 0, photo[:30_000]).status_code)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(204) == 1
    assert set(statuses) <= {204, 409, 423}
    assert part_path(app.config, upload_id).read_bytes() == photo[:30_000]
    assert patch(client, merchant, upload_id, 30_000, photo[30_000:]).status_code == 204


def test_part_file_stays_inside_data_dir(app: Flask, client: FlaskClient, merchant: MerchantCredentials) -> None:
    upload_id = create(client, merchant, 10)
    assert Path(app.config["DATA_DIR"]) in part_path(app.config, upload_id).parents
