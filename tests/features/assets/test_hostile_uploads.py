"""The ingest part of SECURITY.md's bad-input corpus (cases 1-5, 9, 11, 13, 14) through the upload API.

Each file goes through multipart and, for a subset, through tus against the live gunicorn server. Every
one must end in a clear 4xx problem (never a 5xx), create no asset, leave no temporary file, and neither
read the planted canary file nor connect to the canary listener on 127.0.0.1.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import LiveServer, MerchantCredentials, media
from tests.support import hostile

Case = Callable[[Path, hostile.Canary], Path]

CASES: dict[str, tuple[Case, int]] = {
    "1 avi with embedded hls": (lambda d, c: hostile.avi_with_embedded_hls(d, c.file_url), 415),
    "2 hls named mp4 (file)": (lambda d, c: hostile.hls_playlist_as_mp4(d, c.file_url), 415),
    "2 hls named mp4 (url)": (lambda d, c: hostile.hls_playlist_as_mp4(d, c.url, name="u.mp4", bom=True), 415),
    "3 ffconcat named mov": (lambda d, c: hostile.ffconcat_as_mov(d, c.path), 415),
    "4 dash named mp4": (lambda d, c: hostile.dash_manifest_as_mp4(d, f"http://{c.host}:{c.port}/"), 415),
    "5 truncated mp4 (moov first)": (lambda d, c: hostile.truncated_mp4(d, moov_first=True), 422),
    "5 truncated mp4 (moov last)": (lambda d, c: hostile.truncated_mp4(d, moov_first=False), 422),
    "9 png pixel bomb": (lambda d, c: hostile.png_pixel_bomb(d), 422),
    "9 png text chunk bomb": (lambda d, c: hostile.png_text_chunk_bomb(d), 422),
    "9 gif with 10000 frames": (lambda d, c: hostile.gif_many_frames(d), 422),
    "10 jpeg cut at 60%": (lambda d, c: hostile.jpeg_cut(d), 422),
    "11 html named jpg": (lambda d, c: hostile.html_named_jpg(d), 415),
    "11 fits named png": (lambda d, c: hostile.disguised_documents(d)["fits"], 415),
    "11 postscript named jpg": (lambda d, c: hostile.disguised_documents(d)["postscript"], 415),
    "11 psd named png": (lambda d, c: hostile.disguised_documents(d)["psd"], 415),
    "11 zip named jpg": (lambda d, c: hostile.disguised_documents(d)["zip"], 415),
    "14 pickle named model.pt": (lambda d, c: hostile.pickle_model(d, d / "PLANTED"), 415),
}


def _no_leftovers(app: Flask) -> None:
    leftovers = [p.name for p in (Path(app.config["DATA_DIR"]) / "uploads").glob("*")
                 if p.suffix in {".tmp", ".part"}]
    assert leftovers == []


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_file_is_refused_through_multipart(app: Flask, client: FlaskClient, merchant: MerchantCredentials,
                                                   tmp_path: Path, case: str) -> None:
    make, status = CASES[case]
    with hostile.canary() as trap:
        path = make(tmp_path, trap)
        response = client.post("/v1/assets", headers=merchant.headers, content_type="multipart/form-data",
                               data={"file": (BytesIO(path.read_bytes()), path.name)})
        assert response.status_code == status, (case, response.json)
        assert response.mimetype == "application/problem+json"
        assert response.json["detail"] and response.json["code"]
        trap.assert_untouched(response.get_data(as_text=True))
    assert client.get("/v1/assets", headers=merchant.headers).json["items"] == []
    assert not (tmp_path / "PLANTED").exists()
    _no_leftovers(app)


@pytest.mark.parametrize("case", ["1 avi with embedded hls", "2 hls named mp4 (url)", "5 truncated mp4 (moov first)",
                                  "9 png pixel bomb"])
def test_hostile_file_is_refused_through_tus_on_the_live_server(app: Flask, live_server: LiveServer,
                                                                merchant: MerchantCredentials, tmp_path: Path,
                                                                case: str) -> None:
    make, status = CASES[case]
    tus = {**merchant.headers, "Tus-Resumable": "1.0.0"}
    with hostile.canary() as trap:
        data = make(tmp_path, trap).read_bytes()
        created = requests.post(f"{live_server.url}/v1/uploads", headers={**tus, "Upload-Length": str(len(data))},
                                timeout=30)
        assert created.status_code == 201
        response = requests.patch(created.headers["Location"], data=data, timeout=60, headers={
            **tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"] == "application/problem+json"
        trap.assert_untouched(response.text)
        state = requests.get(created.headers["Location"], headers=merchant.headers, timeout=30).json()
        assert state["state"] == "rejected" and state["error"]["status"] == status
    _no_leftovers(app)


@pytest.mark.parametrize("name", hostile.HOSTILE_FILENAMES)
def test_hostile_file_names_are_display_text_only(app: Flask, client: FlaskClient, merchant: MerchantCredentials,
                                                  name: str) -> None:
    photo = media("panorama/hill/1.JPG").read_bytes()
    metadata = "filename " + base64.b64encode(name.encode()).decode()
    tus = {**merchant.headers, "Tus-Resumable": "1.0.0"}
    created = client.post("/v1/uploads", headers={**tus, "Upload-Length": str(len(photo)), "Upload-Metadata": metadata})
    assert created.status_code == 201
    response = client.patch(created.headers["Location"].split("localhost", 1)[1], data=photo, headers={
        **tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert response.status_code == 204
    asset = client.get(f"/v1/assets/{response.headers['Media-Service-Asset-Id']}", headers=merchant.headers).json
    shown = asset["filename"]
    assert "/" not in shown and "\\" not in shown and "\x00" not in shown and "\r" not in shown
    assert "\u202e" not in shown and len(shown) <= 255
    # the stored object's key is service-generated, whatever the client called the file
    assert asset["url"].split("/files/", 1)[1].startswith(f"assets/{merchant.merchant_id}/{asset['id']}/original.jpg")
    stored = list((Path(app.config["STORAGE_ROOT"]) / "assets").rglob("*"))
    assert all(p.name in {merchant.merchant_id, asset["id"], "original.jpg"} for p in stored)
    client.delete(f"/v1/assets/{asset['id']}", headers=merchant.headers)
