"""The same service on PostgreSQL (by URL): migrations, uploads, tus, claims and a real worker."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from flask import Flask

from media_service import create_app
from media_service.db import upgrade
from media_service.jobs import queue
from tests.conftest import add_merchant, make_test_config, media, start_worker, stop_process, wait_for_job
from tests.support.postgres import postgres_server


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        upgrade(url)
        yield url


@pytest.fixture
def pg_app(postgres_url: str, data_dir: Path) -> Iterator[Flask]:
    app = create_app(make_test_config(data_dir, DATABASE_URL=postgres_url))
    yield app
    app.extensions["database"].dispose()


def test_upload_tus_and_worker_on_postgres(pg_app: Flask, data_dir: Path, postgres_url: str) -> None:
    who = add_merchant(pg_app, "PG shop")
    client = pg_app.test_client()
    photo = media("panorama/hill/1.JPG")
    response = client.post("/v1/assets", headers=who.headers, content_type="multipart/form-data",
                           data={"file": (BytesIO(photo.read_bytes()), "hill.jpg")})
    assert response.status_code == 201, response.json

    video = media("video/sample_portrait.mp4").read_bytes()
    tus = {**who.headers, "Tus-Resumable": "1.0.0"}
    created = client.post("/v1/uploads", headers={**tus, "Upload-Length": str(len(video)),
                                                  "Idempotency-Key": "pg-1"})
    again = client.post("/v1/uploads", headers={**tus, "Upload-Length": str(len(video)), "Idempotency-Key": "pg-1"})
    assert created.headers["Location"] == again.headers["Location"]
    location = created.headers["Location"].split("localhost", 1)[1]
    half = len(video) // 2
    for start, end in ((0, half), (half, len(video))):
        patched = client.patch(location, data=video[start:end], headers={
            **tus, "Upload-Offset": str(start), "Content-Type": "application/offset+octet-stream"})
        assert patched.status_code == 204, patched.json
    asset = client.get(f"/v1/assets/{patched.headers['Media-Service-Asset-Id']}", headers=who.headers).json
    assert asset["sha256"] == hashlib.sha256(video).hexdigest()

    worker = start_worker(data_dir, DATABASE_URL=postgres_url)
    try:
        jobs = client.get("/v1/jobs?kind=assets.thumbnail", headers=who.headers).json["items"]
        assert len(jobs) == 2
        for job in jobs:
            assert wait_for_job(pg_app, job["id"]).state == "succeeded"
    finally:
        stop_process(worker)


def test_claims_are_exclusive_on_postgres(pg_app: Flask) -> None:
    who = add_merchant(pg_app, "PG claims")
    db = pg_app.extensions["database"]
    with db.session() as session:
        job, _ = queue.enqueue(session, "test.none", {}, merchant_id=who.merchant_id)
    with db.session() as first, db.session() as second:
        claimed = [queue.claim_next(first, "w1", 30, kinds=["test.none"]),
                   queue.claim_next(second, "w2", 30, kinds=["test.none"])]
    assert [c.id if c else None for c in claimed] == [job.id, None]
