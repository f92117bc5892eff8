"""Buyer upload tokens: one upload, bound to an order or SKU, short-lived, the merchant from the token."""

from __future__ import annotations

import base64
from datetime import timedelta
from io import BytesIO
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from media_service.models import UploadToken, Video, utcnow
from tests.conftest import MerchantCredentials, media
from tests.support.videos import tone_clip

TUS = {"Tus-Resumable": "1.0.0"}


def mint(client: FlaskClient, who: MerchantCredentials, **body: object) -> dict:
    response = client.post("/v1/upload-tokens", headers=who.headers, json={"order_id": "order-1001", **body})
    assert response.status_code == 201, response.json
    return response.json


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def test_a_buyer_uploads_one_video_with_tus(app: Flask, client: FlaskClient, merchant: MerchantCredentials,
                                            other_merchant: MerchantCredentials, clips: Path) -> None:
    token = mint(client, merchant, sku="SKU-7")
    assert token["token"].startswith("mut_") and token["state"] == "unused"
    data = tone_clip(clips, "buyer.mp4", seconds=2).read_bytes()
    meta = "filename " + base64.b64encode(b"my video.mp4").decode()
    created = client.post("/v1/uploads", headers=bearer(token["token"], **TUS, **{
        "Upload-Length": str(len(data)), "Upload-Metadata": meta}))
    assert created.status_code == 201, created.json
    location = created.headers["Location"].split("localhost", 1)[-1]
    assert client.head(location, headers=bearer(token["token"], **TUS)).headers["Upload-Offset"] == "0"
    # the phone lost that answer and creates again: the same upload, not a second one, not a refusal
    repeat = client.post("/v1/uploads", headers=bearer(token["token"], **TUS, **{
        "Upload-Length": str(len(data)), "Upload-Metadata": meta, "Idempotency-Key": "the app's own key"}))
    assert repeat.status_code == 201 and repeat.headers["Location"] == created.headers["Location"], repeat.json
    assert repeat.headers["Upload-Offset"] == "0"
    half = len(data) // 2
    for offset, chunk in ((0, data[:half]), (half, data[half:])):
        patched = client.patch(location, data=chunk, headers=bearer(
            token["token"], **TUS, **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}))
        assert patched.status_code == 204, patched.json
    asset_id = patched.headers["Media-Service-Asset-Id"]
    state = client.get(f"/v1/upload-tokens/{token['id']}", headers=merchant.headers).json
    assert state["state"] == "used" and state["asset_id"] == asset_id and state["video_id"]
    # the asset is the merchant's, and a buyer_show video was started for it, tied to the order and SKU
    assert client.get(f"/v1/assets/{asset_id}", headers=merchant.headers).status_code == 200
    video = client.get(f"/v1/videos/{state['video_id']}", headers=merchant.headers).json
    assert (video["profile"], video["order_id"], video["sku"]) == ("buyer_show", "order-1001", "SKU-7")
    assert client.get(f"/v1/upload-tokens/{token['id']}", headers=other_merchant.headers).status_code == 404
    # one upload only
    again = client.post("/v1/uploads", headers=bearer(token["token"], **TUS, **{"Upload-Length": "10"}))
    assert again.status_code == 403 and again.json["code"] == "upload_token_used"


def test_a_token_can_do_nothing_else(app: Flask, client: FlaskClient, merchant: MerchantCredentials) -> None:
    token = mint(client, merchant)
    other_upload = client.post("/v1/uploads", headers={**merchant.headers, **TUS, "Upload-Length": "100"})
    other_location = other_upload.headers["Location"].split("localhost", 1)[-1]
    asset = client.post("/v1/assets", headers=merchant.headers, content_type="multipart/form-data",
                        data={"file": (BytesIO(media("panorama/hill/1.JPG").read_bytes()), "a.jpg")}).json
    headers = bearer(token["token"])
    forbidden = [client.get("/v1/assets", headers=headers), client.get(f"/v1/assets/{asset['id']}", headers=headers),
                 client.delete(f"/v1/assets/{asset['id']}", headers=headers),
                 client.get("/v1/videos", headers=headers),
                 client.post("/v1/videos", headers=headers, json={"asset_id": asset["id"], "profile": "buyer_show"}),
                 client.post("/v1/upload-tokens", headers=headers, json={"order_id": "x"}),
                 client.get("/v1/jobs", headers=headers),
                 client.head(other_location, headers={**headers, **TUS}),
                 client.patch(other_location, headers={**headers, **TUS, "Upload-Offset": "0",
                                                       "Content-Type": "application/offset+octet-stream"}, data=b"x"),
                 client.delete(other_location, headers={**headers, **TUS})]
    assert [r.status_code for r in forbidden] == [403] * len(forbidden), [r.json for r in forbidden]
    assert client.get(f"/v1/assets/{asset['id']}", headers=merchant.headers).status_code == 200
    assert client.get(f"/v1/upload-tokens/{token['id']}", headers=merchant.headers).json["state"] == "unused"


def test_multipart_once_size_expiry_and_revocation(app: Flask, client: FlaskClient,
                                                   merchant: MerchantCredentials) -> None:
    photo = media("panorama/hill/2.JPG").read_bytes()
    small = mint(client, merchant, max_bytes=1000)
    too_big = client.post("/v1/uploads", headers=bearer(small["token"], **TUS, **{"Upload-Length": "5000"}))
    assert too_big.status_code == 413
    token = mint(client, merchant, process_profile=None)
    refused = client.post("/v1/assets", headers=bearer(token["token"]), content_type="multipart/form-data",
                          data={"file": (BytesIO(b"#EXTM3U\n#EXTINF:1,\nhttp://x\n"), "v.mp4")})
    assert refused.status_code == 415  # a refused file does not use the token up
    first = client.post("/v1/assets", headers=bearer(token["token"]), content_type="multipart/form-data",
                        data={"file": (BytesIO(photo), "photo.jpg")})
    assert first.status_code == 201
    second = client.post("/v1/assets", headers=bearer(token["token"]), content_type="multipart/form-data",
                         data={"file": (BytesIO(photo), "photo.jpg")})
    assert second.status_code == 403
    state = client.get(f"/v1/upload-tokens/{token['id']}", headers=merchant.headers).json
    assert state["asset_id"] == first.json["id"] and state["video_id"] is None
    expired = mint(client, merchant)
    with app.extensions["database"].session(write=True) as session:
        session.get(UploadToken, expired["id"]).expires_at = utcnow() - timedelta(seconds=1)
    response = client.post("/v1/uploads", headers=bearer(expired["token"], **TUS, **{"Upload-Length": "10"}))
    assert (response.status_code, response.json["code"]) == (401, "upload_token_expired")
    revoked = mint(client, merchant)
    assert client.delete(f"/v1/upload-tokens/{revoked['id']}", headers=merchant.headers).status_code == 204
    response = client.post("/v1/uploads", headers=bearer(revoked["token"], **TUS, **{"Upload-Length": "10"}))
    assert (response.status_code, response.json["code"]) == (401, "upload_token_revoked")
    forged = revoked["token"][:-4] + "AAAA"
    assert client.post("/v1/uploads", headers=bearer(forged, **TUS, **{"Upload-Length": "10"})).status_code == 401
    for body in ({}, {"order_id": ""}, {"order_id": "x" * 300}, {"order_id": "a", "expires_in": 10**9},
                 {"order_id": "a", "process_profile": "nope"}, {"sku": "a", "max_bytes": True}):
        assert client.post("/v1/upload-tokens", headers=merchant.headers, json=body).status_code == 400, body
    with app.extensions["database"].session() as session:
        assert session.query(Video).count() == 0
