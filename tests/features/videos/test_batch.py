"""Batches through the job system: the API and the ``batch videos`` command (skips, retries, report)."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import MerchantCredentials, media, service_env
from tests.support.videos import tone_clip


def upload(client: FlaskClient, who: MerchantCredentials, path: Path) -> str:
    return client.post("/v1/assets", headers=who.headers, content_type="multipart/form-data",
                       data={"file": (BytesIO(path.read_bytes()), path.name)}).json["id"]


def wait_batch(client: FlaskClient, who: MerchantCredentials, batch_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/batches/{batch_id}", headers=who.headers).json
        if body["state"] == "done":
            return body
        time.sleep(0.3)
    raise AssertionError(f"batch {batch_id} did not finish: {body}")


def test_api_batch_skips_what_is_done(app: Flask, client: FlaskClient, merchant: MerchantCredentials,
                                      other_merchant: MerchantCredentials, clips: Path, worker: object) -> None:
    first = upload(client, merchant, tone_clip(clips, "batch_a.mp4", seconds=2))
    second = upload(client, merchant, tone_clip(clips, "batch_b.mp4", seconds=2, volume_db=-20))
    image = upload(client, merchant, media("panorama/hill/1.JPG"))
    response = client.post("/v1/batches", headers=merchant.headers, json={
        "asset_ids": [first, second, image, "ast_missing", first], "profile": "buyer_show"})
    assert response.status_code == 202, response.json
    body = wait_batch(client, merchant, response.json["id"])
    assert body["total"] == 4 and body["counts"]["ready"] == 2 and body["counts"]["refused"] == 2
    errors = {item["input"]: item["error"]["code"] for item in body["items"] if item["error"]}
    assert errors == {image: "not_a_video", "ast_missing": "asset_not_found"}
    again = client.post("/v1/batches", headers=merchant.headers,
                        json={"asset_ids": [first, second], "profile": "buyer_show"}).json
    assert again["skipped"] == 2 and again["state"] == "done"
    assert client.get(f"/v1/batches/{again['id']}", headers=other_merchant.headers).status_code == 404
    assert client.post("/v1/batches", headers=merchant.headers, json={"asset_ids": [], "profile": "promo"}
                       ).status_code == 400
    assert client.post("/v1/batches", headers=merchant.headers, json={"asset_ids": [first], "profile": "x"}
                       ).status_code == 400
    listed = client.get("/v1/batches", headers=merchant.headers).json["items"]
    assert [b["id"] for b in listed] == [again["id"], response.json["id"]]


def test_cli_batch_with_its_own_workers_and_report(app: Flask, data_dir: Path, clips: Path,
                                                   merchant: MerchantCredentials, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name, volume in (("one.mp4", -10.0), ("two.mp4", -25.0)):
        (inputs / name).write_bytes(tone_clip(clips, f"cli_{name}", seconds=2, volume_db=volume).read_bytes())
    (inputs / "notes.txt").write_text("#EXTM3U\nnot a video\n")
    (inputs / "<img src=x onerror=alert(1)>.mov").write_bytes(media("video/iphone_rotated.mov").read_bytes())
    out = tmp_path / "report"
    command = [sys.executable, "-m", "media_service", "batch", "videos", str(inputs), "--profile", "buyer_show",
               "--out", str(out), "--merchant", merchant.merchant_id, "--workers", "2", "--timeout", "240"]
    run = subprocess.run(command, env=service_env(data_dir), capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr  # one input was refused
    assert "started a local worker pool of 2" in run.stdout
    rows = list(csv.DictReader((out / "report.csv").open()))
    states = {Path(r["input"]).name: r["state"] for r in rows}
    assert states == {"one.mp4": "ready", "two.mp4": "ready", "notes.txt": "refused",
                      "<img src=x onerror=alert(1)>.mov": "ready"}
    refused = next(r for r in rows if r["state"] == "refused")
    assert "unsupported_media_type" in refused["error"] or "HLS" in refused["error"]
    bold = next(r for r in rows if r["input"].endswith(".mov"))
    assert "blurry" in bold["flags"] and (out / bold["poster"]).is_file()
    html = (out / "report.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;.mov" in html and "onerror=alert(1)>" not in html
    assert html.count("<img ") == 3
    # the same folder again: everything already done is skipped, no worker needed to finish
    rerun = subprocess.run([*command[:-4], "--workers", "0"], env=service_env(data_dir), capture_output=True,
                           text=True, timeout=120)
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert sorted(r["skipped"] for r in rows) == ["", "yes", "yes", "yes"], rerun.stdout + rerun.stderr
    # an operator deletes one processed video, then the asset of another, from the command line
    def operator(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "media_service", *args], env=service_env(data_dir),
                              capture_output=True, text=True, timeout=120)

    listed = [line.split("\t") for line in operator("videos", "list", "--merchant", merchant.merchant_id)
              .stdout.splitlines()]
    assert len(listed) == 3
    (video_id, *_), (*_, asset_id) = listed[0], listed[1]
    assert operator("videos", "delete", video_id).stdout.strip() == f"{video_id}: deleted"
    assert "no video" in operator("videos", "show", video_id).stderr
    assert operator("assets", "delete", asset_id).stdout.strip() == f"{asset_id}: deleted"
    remaining = operator("videos", "list", "--merchant", merchant.merchant_id).stdout
    assert video_id not in remaining and asset_id not in remaining and len(remaining.splitlines()) == 1
    assert operator("assets", "delete", asset_id).returncode == 1
