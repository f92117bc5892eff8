"""Deleting videos and assets: rows, links, files on disk and the work still in flight are all gone."""

from __future__ import annotations

import io
import time
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from media_service.jobs import queue
from media_service.jobs.base import SUCCEEDED, job_output_root
from media_service.models import Job
from tests.conftest import MerchantCredentials, wait_for_job
from tests.features.videos.test_api import local, process, running_worker, upload
from tests.support.videos import tone_clip

__all__ = ["running_worker"]  # the fixture, imported to be shared


def _files_under(data_dir: Path, prefix: str) -> list[Path]:
    root = data_dir / "storage" / prefix
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_deleting_a_video_removes_its_outputs_and_links_but_keeps_the_asset(
        app: Flask, client: FlaskClient, clips: Path, data_dir: Path, merchant: MerchantCredentials,
        other_merchant: MerchantCredentials, running_worker: None) -> None:
    asset = upload(client, merchant, tone_clip(clips, "to_delete.mp4", seconds=3))
    video = process(app, client, merchant, asset["id"], profile="promo")
    assert video["state"] == "ready" and video["published"]
    root = job_output_root(merchant.merchant_id, video["job"]["id"])
    assert _files_under(data_dir, root), "the job published its outputs under its own prefix"
    poster = video["urls"]["poster"]
    assert client.get(local(poster)).status_code == 200

    assert client.delete(f"/v1/videos/{video['id']}", headers=other_merchant.headers).status_code == 404
    assert client.delete(f"/v1/videos/{video['id']}", headers=merchant.headers).status_code == 204
    assert client.get(f"/v1/videos/{video['id']}", headers=merchant.headers).status_code == 404
    assert client.get(local(poster)).status_code == 404
    assert _files_under(data_dir, root) == []
    assert client.get(f"/v1/assets/{asset['id']}", headers=merchant.headers).status_code == 200
    assert client.delete(f"/v1/videos/{video['id']}", headers=merchant.headers).status_code == 404


def test_deleting_an_asset_deletes_the_videos_made_of_it(app: Flask, client: FlaskClient, clips: Path,
                                                         data_dir: Path, merchant: MerchantCredentials,
                                                         running_worker: None) -> None:
    asset = upload(client, merchant, tone_clip(clips, "asset_to_delete.mp4", seconds=3))
    videos = [process(app, client, merchant, asset["id"], profile=profile) for profile in ("promo", "homepage")]
    roots = [job_output_root(merchant.merchant_id, video["job"]["id"]) for video in videos]
    assert all(_files_under(data_dir, root) for root in roots)
    assert client.delete(f"/v1/assets/{asset['id']}", headers=merchant.headers).status_code == 204
    for video, root in zip(videos, roots, strict=True):
        assert client.get(f"/v1/videos/{video['id']}", headers=merchant.headers).status_code == 404
        assert _files_under(data_dir, root) == []
    assert _files_under(data_dir, f"assets/{merchant.merchant_id}/{asset['id']}") == []


def test_deleting_a_queued_video_cancels_its_job(app: Flask, client: FlaskClient, clips: Path,
                                                 merchant: MerchantCredentials) -> None:
    asset = upload(client, merchant, tone_clip(clips, "queued.mp4", seconds=2))
    created = client.post("/v1/videos", headers=merchant.headers, json={"asset_id": asset["id"], "profile": "promo"})
    assert created.status_code == 202  # no worker in this test: the job stays queued
    assert client.delete(f"/v1/videos/{created.json['id']}", headers=merchant.headers).status_code == 204
    job = client.get(f"/v1/jobs/{created.json['job']['id']}", headers=merchant.headers).json
    assert job["state"] == "cancelled"


def test_deleting_a_video_while_it_is_processed_stops_the_job_and_leaves_no_files(
        app: Flask, client: FlaskClient, clips: Path, data_dir: Path, merchant: MerchantCredentials,
        running_worker: None) -> None:
    asset = upload(client, merchant, tone_clip(clips, "long.mp4", seconds=12, size="960x540"))
    created = client.post("/v1/videos", headers=merchant.headers, json={"asset_id": asset["id"], "profile": "promo"})
    job_url = f"/v1/jobs/{created.json['job']['id']}"
    deadline = time.monotonic() + 60
    while (running := client.get(job_url, headers=merchant.headers).json)["progress"] < 5 \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running["state"] == "running" and running["progress"] >= 5, running  # deleted mid-processing
    assert client.delete(f"/v1/videos/{created.json['id']}", headers=merchant.headers).status_code == 204
    job = wait_for_job(app, created.json["job"]["id"], timeout=120)
    assert job.state in ("cancelled", "succeeded")  # it stops at its next progress report, or was publishing
    assert _files_under(data_dir, job_output_root(merchant.merchant_id, job.id)) == []


def test_a_job_that_finishes_after_its_video_was_deleted_gives_its_outputs_back(
        app: Flask, client: FlaskClient, clips: Path, data_dir: Path, merchant: MerchantCredentials) -> None:
    """The worker side driven step by step through the real queue, to hit the window deterministically:
    the job is running (claimed), the merchant deletes the video, then the job ends succeeded anyway."""
    asset = upload(client, merchant, tone_clip(clips, "race.mp4", seconds=2))
    created = client.post("/v1/videos", headers=merchant.headers, json={"asset_id": asset["id"], "profile": "promo"})
    job_id = created.json["job"]["id"]
    db, storage = app.extensions["database"], app.extensions["storage"]
    with db.session() as session:
        assert queue.claim_next(session, "worker-1", 60, kinds=["videos.process"]).id == job_id
    root = job_output_root(merchant.merchant_id, job_id)
    storage.put_stream(f"{root}/video/poster.jpg", io.BytesIO(b"published just before the delete"))

    assert client.delete(f"/v1/videos/{created.json['id']}", headers=merchant.headers).status_code == 204
    with db.session() as session:
        assert session.get(Job, job_id).cancel_requested  # the running job is asked to stop
        finished = queue.finish(session, job_id, "worker-1", SUCCEEDED, result={"output_prefix": root})
    assert finished.recorded and finished.orphaned == (root,)
    job = client.get(f"/v1/jobs/{job_id}", headers=merchant.headers).json
    assert job["state"] == "succeeded" and "outputs_discarded" in job["result"]
