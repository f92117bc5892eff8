"""``/v1/videos`` end to end: upload, process in a real worker, moderate, and play through signed URLs."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import MerchantCredentials, media, start_worker, stop_process, wait_for_job
from tests.support.videos import FFMPEG, tone_clip


def upload(client: FlaskClient, who: MerchantCredentials, path: Path) -> dict[str, Any]:
    response = client.post("/v1/assets", headers=who.headers, data={"file": (BytesIO(path.read_bytes()), path.name)},
                           content_type="multipart/form-data")
    assert response.status_code in (200, 201), response.json
    return response.json


def local(url: str) -> str:
    """The path and query of one of our absolute URLs (for the test client)."""
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


@pytest.fixture
def running_worker(app: Flask, data_dir: Path) -> Iterator[None]:
    process = start_worker(data_dir, concurrency=2)
    yield
    stop_process(process)


def process(app: Flask, client: FlaskClient, who: MerchantCredentials, asset_id: str, profile: str = "buyer_show",
            **extra: Any) -> dict[str, Any]:
    response = client.post("/v1/videos", headers=who.headers, json={"asset_id": asset_id, "profile": profile, **extra})
    assert response.status_code == 202, response.json
    wait_for_job(app, response.json["job"]["id"], timeout=120)
    return client.get(f"/v1/videos/{response.json['id']}", headers=who.headers).json


def test_buyer_show_is_published_only_after_approval(app: Flask, client: FlaskClient, merchant: MerchantCredentials,
                                                     running_worker: None) -> None:
    asset = upload(client, merchant, media("video/iphone_rotated.mov"))
    created = client.post("/v1/videos", headers=merchant.headers,
                          json={"asset_id": asset["id"], "profile": "buyer_show"})
    assert created.status_code == 202
    assert created.json["state"] in ("queued", "processing") and created.json["job"]["kind"] == "videos.process"
    assert created.headers["Location"].endswith(f"/v1/videos/{created.json['id']}")
    wait_for_job(app, created.json["job"]["id"], timeout=120)
    video = client.get(f"/v1/videos/{created.json['id']}", headers=merchant.headers).json
    assert video["state"] == "ready" and video["progress"] == 100
    assert video["moderation"]["status"] == "pending" and not video["published"]
    assert video["urls"] is None and video["review_urls"]["hls"]
    assert (video["width"], video["height"]) == (320, 568)
    assert video["source"]["had_location_metadata"] and video["loudness"]["audio"]
    # the merchant reviews it: the master playlist, a variant and a segment, by relative references
    master_url = video["review_urls"]["hls"]
    master = client.get(local(master_url))
    assert master.status_code == 200 and master.mimetype == "application/vnd.apple.mpegurl"
    assert master.headers["Cache-Control"] == "private, no-store"
    variant_url = urljoin(master_url, next(line for line in master.text.splitlines() if line.endswith(".m3u8")))
    variant = client.get(local(variant_url))
    assert variant.status_code == 200
    init = re.search(r'URI="([^"]+)"', variant.text).group(1)
    segment = next(line for line in variant.text.splitlines() if line.endswith(".m4s"))
    for name in (init, segment):
        assert client.get(local(urljoin(variant_url, name))).status_code == 200
    public_guess = master_url.replace("/review/", "/public/")
    assert client.get(local(public_guess)).status_code == 403  # a review signature is not a public one
    # approval publishes it
    approved = client.post(f"/v1/videos/{video['id']}/approve", headers=merchant.headers)
    assert approved.status_code == 200 and approved.json["published"]
    urls = approved.json["urls"]
    assert client.get(local(urls["hls"])).status_code == 200
    poster = client.get(local(urls["poster"]))
    assert poster.status_code == 200 and poster.mimetype == "image/jpeg"
    mp4 = client.get(local(urls["mp4"]), headers={"Range": "bytes=0-99"})
    assert mp4.status_code == 206 and len(mp4.data) == 100
    vtt = client.get(local(urls["storyboard"]["vtt"]))
    assert vtt.status_code == 200 and vtt.mimetype == "text/vtt"
    sprite_ref = next(line for line in vtt.text.splitlines() if "#xywh=" in line).split("#")[0]
    assert client.get(local(urljoin(urls["storyboard"]["vtt"], sprite_ref))).status_code == 200
    # rejection stops the public links at once
    rejected = client.post(f"/v1/videos/{video['id']}/reject", headers=merchant.headers, json={"reason": "blurry"})
    assert rejected.json["moderation"] == {**rejected.json["moderation"], "status": "rejected", "reason": "blurry"}
    refused = client.get(local(urls["hls"]))
    assert refused.status_code == 403 and refused.json["code"] == "video_not_published"
    # tampering with the signature, the expiry or the path is refused
    tampered = urls["hls"].replace("/public/", "/public/1").replace("master.m3u8", "master.m3u8")
    assert client.get(local(tampered)).status_code in (403, 404)
    assert client.get(local(urls["hls"].replace("hls/master.m3u8", "../../secret_key"))).status_code == 404


def test_same_request_twice_and_validation(app: Flask, client: FlaskClient, merchant: MerchantCredentials,
                                           other_merchant: MerchantCredentials, clips: Path) -> None:
    asset = upload(client, merchant, tone_clip(clips, "api_small.mp4", seconds=2))
    first = client.post("/v1/videos", headers=merchant.headers, json={"asset_id": asset["id"], "profile": "promo"})
    again = client.post("/v1/videos", headers=merchant.headers, json={"asset_id": asset["id"], "profile": "promo"})
    assert (first.status_code, again.status_code) == (202, 200) and first.json["id"] == again.json["id"]
    other_profile = client.post("/v1/videos", headers=merchant.headers,
                                json={"asset_id": asset["id"], "profile": "promo", "options": {"stabilize": True}})
    assert other_profile.status_code == 202 and other_profile.json["id"] != first.json["id"]
    cases = [({"asset_id": asset["id"], "profile": "tiktok"}, 400, "invalid_profile"),
             ({"asset_id": asset["id"], "profile": "promo", "options": {"sepia": True}}, 400, "invalid_options"),
             ({"asset_id": asset["id"], "profile": "promo", "options": {"stabilize": "yes"}}, 400, "invalid_options"),
             ({"asset_id": 5, "profile": "promo"}, 400, "invalid_asset_id"),
             ({"profile": "promo"}, 400, "missing_fields"),
             ({"asset_id": "ast_nope", "profile": "promo"}, 404, "asset_not_found")]
    for body, status, code in cases:
        response = client.post("/v1/videos", headers=merchant.headers, json=body)
        assert (response.status_code, response.json["code"]) == (status, code), body
    image = upload(client, merchant, media("panorama/hill/1.JPG"))
    response = client.post("/v1/videos", headers=merchant.headers, json={"asset_id": image["id"], "profile": "promo"})
    assert (response.status_code, response.json["code"]) == (422, "not_a_video")
    # another merchant sees nothing of it
    assert client.post("/v1/videos", headers=other_merchant.headers,
                       json={"asset_id": asset["id"], "profile": "promo"}).status_code == 404
    assert client.get(f"/v1/videos/{first.json['id']}", headers=other_merchant.headers).status_code == 404
    assert client.post(f"/v1/videos/{first.json['id']}/approve", headers=other_merchant.headers).status_code == 404
    assert client.get("/v1/videos", headers=other_merchant.headers).json["items"] == []
    # not processed yet: cannot be moderated
    assert client.post(f"/v1/videos/{first.json['id']}/approve", headers=merchant.headers).status_code == 409
    listed = client.get("/v1/videos?limit=1&profile=promo", headers=merchant.headers).json
    assert len(listed["items"]) == 1 and listed["next_cursor"]
    assert client.get("/v1/videos?state=queued", headers=merchant.headers).json["items"]
    assert client.get("/v1/videos?state=bogus", headers=merchant.headers).status_code == 400


def test_policy_auto_approves_clean_videos_and_flags_duplicates(app: Flask, client: FlaskClient, clips: Path,
                                                                 merchant: MerchantCredentials,
                                                                 running_worker: None) -> None:
    assert client.get("/v1/video-policy", headers=merchant.headers).json["buyer_show_auto_approve"] == "never"
    assert client.put("/v1/video-policy", headers=merchant.headers,
                      json={"buyer_show_auto_approve": "sometimes"}).status_code == 400
    assert client.put("/v1/video-policy", headers=merchant.headers,
                      json={"buyer_show_auto_approve": "if_clean"}).status_code == 200
    clean = upload(client, merchant, media("video/friday.mp4"))
    video = process(app, client, merchant, clean["id"])
    assert video["flags"] == [] and video["published"]
    assert video["moderation"]["decided_by"] == "policy:if_clean"
    # the same footage re-encoded smaller is a new asset but a near-duplicate: flagged, so held for review
    copy = clips / "friday_copy.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(media("video/friday.mp4")), "-vf", "scale=640:-2",
                    "-c:v", "libx264", "-crf", "30", "-c:a", "aac", str(copy)], check=True)
    duplicate = process(app, client, merchant, upload(client, merchant, copy)["id"])
    flag = next(f for f in duplicate["flags"] if f["code"] == "near_duplicate")
    assert flag["duplicate_of"] == video["id"] and flag["match"] >= 0.75
    assert duplicate["moderation"]["status"] == "pending" and not duplicate["published"]
    # a promo is the merchant's own: published at once whatever the policy
    promo = process(app, client, merchant, clean["id"], profile="promo")
    assert promo["published"] and promo["moderation"]["decided_by"] == "profile"
    # switching the policy to "always" approves what is pending
    client.put("/v1/video-policy", headers=merchant.headers, json={"buyer_show_auto_approve": "always"})
    assert client.get(f"/v1/videos/{duplicate['id']}", headers=merchant.headers).json["published"]


@pytest.mark.slow
def test_progress_is_visible_while_processing(app: Flask, client: FlaskClient, clips: Path,
                                              merchant: MerchantCredentials, data_dir: Path) -> None:
    asset = upload(client, merchant, tone_clip(clips, "progress.mp4", seconds=12, size="960x540"))
    video = client.post("/v1/videos", headers=merchant.headers,
                        json={"asset_id": asset["id"], "profile": "promo"}).json
    worker = start_worker(data_dir, concurrency=1)
    seen: list[float] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            body = client.get(f"/v1/videos/{video['id']}", headers=merchant.headers).json
            seen.append(body["progress"])
            if body["state"] in ("ready", "failed"):
                break
            time.sleep(0.2)
    finally:
        stop_process(worker)
    assert body["state"] == "ready", body["job"]
    assert any(10 < p < 90 for p in seen), seen
    assert seen == sorted(seen)
