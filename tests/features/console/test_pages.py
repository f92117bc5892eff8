"""Console pages with the Flask client: problems shown in words, hotspot rules, insights drawn from events."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from media_service.models import EmbedEventCount, Job, utcnow
from tests.conftest import MerchantCredentials, media
from tests.features.console.conftest import ConsoleUser


def _photos(client: FlaskClient, merchant: MerchantCredentials) -> list[str]:
    ids = []
    for n in (1, 2):
        with media(f"panorama/hill/{n}.JPG").open("rb") as handle:
            ids.append(client.post("/v1/assets", headers=merchant.headers,
                                   data={"file": (handle, f"{n}.JPG")}).json["id"])
    return ids


def test_a_hotspot_waits_for_the_panorama_and_bad_requests_read_as_words(client: FlaskClient, owner: ConsoleUser,
                                                                         merchant: MerchantCredentials) -> None:
    ids = _photos(client, merchant)
    page = owner.client.get("/console/studio")
    assert all(f'value="{asset_id}"' in page.text for asset_id in ids)
    made = owner.client.post("/console/studio", data={"csrf_token": owner.csrf, "make": "panorama", "asset_id": ids,
                                                      "nonce": "n1"})
    assert made.status_code == 303
    panorama_id = made.headers["Location"].rsplit("/", 1)[1]
    again = owner.client.post("/console/studio", data={"csrf_token": owner.csrf, "make": "panorama", "asset_id": ids,
                                                       "nonce": "n1"})
    assert again.headers["Location"].endswith(panorama_id)  # a double submit returns the first
    page = owner.client.get(f"/console/panoramas/{panorama_id}")
    assert "Stitching 2 photos" in page.text
    refused = owner.client.post(f"/console/panoramas/{panorama_id}/hotspots", data={
        "csrf_token": owner.csrf, "yaw": "1", "pitch": "0", "label": "Door"})
    assert refused.status_code == 409 and "not ready yet" in refused.text and 'class="problem"' in refused.text
    one = owner.client.post("/console/studio", data={"csrf_token": owner.csrf, "make": "panorama",
                                                     "asset_id": ids[:1]})
    assert one.status_code == 400 and "at least 2 photos" in one.text
    assert client.get(f"/v1/panoramas/{panorama_id}", headers=merchant.headers).json["hotspots"] == []


def test_insights_draw_the_widget_events(app: Flask, owner: ConsoleUser, merchant: MerchantCredentials) -> None:
    with app.extensions["database"].session() as session:
        for kind, count in (("view", 5), ("spin", 3), ("add_to_cart", 1)):
            session.add(EmbedEventCount(merchant_id=merchant.merchant_id, target_kind="panorama", target_id="pan_123",
                                        day=utcnow().date(), type=kind, count=count))
    page = owner.client.get("/console/insights?days=7")
    assert page.status_code == 200
    assert "Views (5)" in page.text and "Spins (3)" in page.text and "Adds to cart (1)" in page.text
    assert page.text.count("<svg") >= 3 and "pan_123" in page.text


def test_a_failure_reads_in_words_and_is_retried(app: Flask, owner: ConsoleUser, other_owner: ConsoleUser,
                                                 merchant: MerchantCredentials) -> None:
    with app.extensions["database"].session() as session:
        job = Job(merchant_id=merchant.merchant_id, kind="panoramas.stitch", state="failed", attempts=1,
                  error={"code": "no_overlap", "detail": "photo 2 shares too little with the others; retake it"})
        session.add(job)
        session.flush()
        job_id = job.id
    page = owner.client.get("/console/jobs")
    assert "Panorama stitching" in page.text and "photo 2 shares too little with the others" in page.text
    assert other_owner.client.post(f"/console/jobs/{job_id}/retry", data={"csrf_token": other_owner.csrf}
                                   ).status_code == 404
    retried = owner.client.post(f"/console/jobs/{job_id}/retry", data={"csrf_token": owner.csrf})
    assert retried.status_code == 303
    page = owner.client.get("/console/jobs")
    assert f"Panorama stitching {job_id} is queued again." in page.text and "Failed (0)" in page.text
    with app.extensions["database"].session() as session:
        assert session.get(Job, job_id).state == "queued"
