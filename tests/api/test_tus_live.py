"""The real tus client (tuspy) against the live service, including connections cut at random offsets."""

from __future__ import annotations

import hashlib
import random
import shutil
from pathlib import Path

import pytest
import requests
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

from tests.conftest import LiveServer, MerchantCredentials, media
from tests.cutting_proxy import CuttingProxy


def upload_with_resume(base_url: str, who: MerchantCredentials, path: Path, *, chunk_size: int,
                       checksum: bool = False, max_tries: int = 200) -> tuple[str, int]:
    """Upload ``path``; after every broken connection, resume from the server's offset with a new client."""
    client = tus.TusClient(f"{base_url}/v1/uploads/", headers=who.headers)
    url = None
    failures = 0
    for _ in range(max_tries):
        try:
            uploader = client.uploader(str(path), url=url, chunk_size=chunk_size, upload_checksum=checksum,
                                       metadata={"filename": path.name})
            if url is None:
                url = uploader.create_url()
                uploader.set_url(url)
            uploader.upload()
            return url, failures
        except (TusCommunicationError, TusUploadFailed, requests.RequestException, ConnectionError):
            failures += 1
    raise AssertionError(f"upload of {path} did not finish in {max_tries} tries")


def asset_of(server: LiveServer, who: MerchantCredentials, upload_url: str) -> dict:
    upload_id = upload_url.rstrip("/").rsplit("/", 1)[1]
    state = requests.get(f"{server.url}/v1/uploads/{upload_id}", headers=who.headers, timeout=10).json()
    assert state["state"] == "completed", state
    return requests.get(f"{server.url}/v1/assets/{state['asset_id']}", headers=who.headers, timeout=10).json()


def test_tuspy_uploads_a_real_video(live_server: LiveServer, merchant: MerchantCredentials) -> None:
    path = media("video/bigbuckbunny.mp4")
    url, _ = upload_with_resume(live_server.url, merchant, path, chunk_size=256 * 1024)
    asset = asset_of(live_server, merchant, url)
    assert asset["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (asset["kind"], asset["width"], asset["height"]) == ("video", 1280, 720)
    assert requests.head(url, headers={**merchant.headers, "Tus-Resumable": "1.0.0"},
                         timeout=10).headers["Upload-Offset"] == str(path.stat().st_size)


@pytest.mark.slow
@pytest.mark.parametrize("checksum", [False, True])
def test_connections_cut_at_random_offsets_resume_to_identical_files(
        live_server: LiveServer, merchant: MerchantCredentials, tmp_path: Path, checksum: bool) -> None:
    """N files, each broken several times mid-PATCH; every one arrives with the same SHA-256."""
    rng = random.Random(1234 + checksum)
    sources = ["video/flower.mp4", "video/bottle-detection.mp4", "video/friday.mp4",
               "panorama/berlin/01.jpg", "video/nasa_13013.mp4"]
    port = int(live_server.url.rsplit(":", 1)[1])
    proxy = CuttingProxy(port, cut_after=lambda: rng.randint(1000, 400_000) if rng.random() < 0.7 else None)
    identical = 0
    total_failures = 0
    try:
        for index, relative in enumerate(sources):
            path = tmp_path / f"file{index}{Path(relative).suffix}"
            shutil.copyfile(media(relative), path)
            url, failures = upload_with_resume(f"http://127.0.0.1:{proxy.port}", merchant, path,
                                               chunk_size=200 * 1024, checksum=checksum)
            total_failures += failures
            asset = asset_of(live_server, merchant, url.replace(str(proxy.port), str(port)))
            identical += asset["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    finally:
        proxy.close()
    assert proxy.cuts >= len(sources), "the proxy should have cut connections"
    assert identical == len(sources)
    print(f"tus resume: {identical}/{len(sources)} files identical by SHA-256 after {proxy.cuts} cuts "
          f"(checksum={checksum})")
