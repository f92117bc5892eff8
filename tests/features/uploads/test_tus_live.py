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
from tests.support.cutting_proxy import CuttingProxy


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


def test_hundred_parallel_patches_and_a_stalled_body(app, data_dir: Path, merchant: MerchantCredentials) -> None:
    """100 PATCHes race on one upload; then a client stalls mid-body and is cut after the read timeout."""
    import socket
    import subprocess
    import sys
    import time
    from concurrent.futures import ThreadPoolExecutor

    from tests.conftest import free_port, service_env

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "media_service", "serve", "--port", str(port), "--no-worker",
                               "--processes", "2", "--threads", "16"],
                              env=service_env(data_dir, UPLOAD_READ_TIMEOUT_SECONDS=1.0, UPLOAD_CHUNK_BYTES=16384),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                requests.get(base + "/v1/openapi.json", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        data = media("video/flower.mp4").read_bytes()
        tus = {**merchant.headers, "Tus-Resumable": "1.0.0"}
        location = requests.post(f"{base}/v1/uploads", headers={**tus, "Upload-Length": str(len(data))},
                                 timeout=10).headers["Location"]

        def race(_: int) -> int:
            return requests.patch(location, data=data[:100_000], timeout=60, headers={
                **tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}).status_code

        with ThreadPoolExecutor(max_workers=100) as pool:
            statuses = list(pool.map(race, range(100)))
        assert statuses.count(204) == 1 and set(statuses) <= {204, 409, 423}, statuses
        assert requests.head(location, headers=tus, timeout=10).headers["Upload-Offset"] == "100000"

        # a slow-body PATCH: announce the rest, send 50 kB, then stall
        path = location.split(str(port), 1)[1]
        stalled = socket.create_connection(("127.0.0.1", port))
        head = (f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {merchant.api_key}\r\n"
                f"Tus-Resumable: 1.0.0\r\nUpload-Offset: 100000\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Content-Length: {len(data) - 100_000}\r\n\r\n").encode()
        stalled.sendall(head + data[100_000:150_000])
        time.sleep(3)  # past the 1 s read timeout: the server gives up on this body and frees the lock
        offset = int(requests.head(location, headers=tus, timeout=10).headers["Upload-Offset"])
        # whole 16 KiB blocks that arrived are kept; the torn last block is for the client to resend
        assert offset == 100_000 + (50_000 // 16384) * 16384
        stalled.close()
        finish = requests.patch(location, data=data[offset:], timeout=60, headers={
            **tus, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
        assert finish.status_code == 204, finish.text
        asset_id = finish.headers["Media-Service-Asset-Id"]
        asset = requests.get(f"{base}/v1/assets/{asset_id}", headers=merchant.headers, timeout=10).json()
        assert asset["sha256"] == hashlib.sha256(data).hexdigest()
    finally:
        server.terminate()
        server.wait(timeout=20)
