"""``/v1/panoramas`` and ``/v1/spins`` end to end: real uploads, a real worker process, signed downloads."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from tests.conftest import MerchantCredentials, media, wait_for_job
from tests.support.panorama.turntable import write_turntable_video


def upload(client: FlaskClient, who: MerchantCredentials, path: Path, name: str | None = None) -> str:
    response = client.post("/v1/assets", headers=who.headers, content_type="multipart/form-data",
                           data={"file": (BytesIO(path.read_bytes()), name or path.name)})
    assert response.status_code in (200, 201), response.json
    return response.json["id"]


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def fetch_image(client: FlaskClient, url: str) -> Image.Image:
    response = client.get(local(url))
    assert response.status_code == 200, response.data[:200]
    image = Image.open(BytesIO(response.data))
    image.load()
    return image


def hill(client: FlaskClient, who: MerchantCredentials) -> list[str]:
    return [upload(client, who, media(f"panorama/hill/{i}.JPG")) for i in (1, 2, 3)]


# berlin's two usable photos overlap by ~90 %: "auto" makes them a flat picture; the viewer path is asked for.
OPTIONS = {"max_output_megapixels": 4, "projection": "spherical"}


def test_panorama_from_upload_to_viewer_manifest(app: Flask, client: FlaskClient, merchant: MerchantCredentials,
                                                 data_dir: Path, worker: Any) -> None:
    asset_ids = [upload(client, merchant, media(f"panorama/berlin/0{i}.jpg")) for i in (3, 1, 2)]  # any order
    response = client.post("/v1/panoramas", headers={**merchant.headers, "Idempotency-Key": "pano-1"},
                           json={"asset_ids": asset_ids, "options": OPTIONS})
    assert response.status_code == 202, response.json
    created = response.json
    assert created["id"].startswith("pan_") and created["state"] in {"queued", "processing"}
    assert response.headers["Location"].endswith(f"/v1/panoramas/{created['id']}")
    again = client.post("/v1/panoramas", headers={**merchant.headers, "Idempotency-Key": "pano-1"},
                        json={"asset_ids": asset_ids, "options": OPTIONS})
    assert again.status_code == 200 and again.json["id"] == created["id"]

    job = wait_for_job(app, created["job"]["id"], timeout=120)
    assert job.state == "succeeded", job.error
    body = client.get(f"/v1/panoramas/{created['id']}", headers=merchant.headers).json
    assert body["state"] == "ready" and body["projection"] == "spherical"
    assert body["width"] * body["height"] <= 4.2e6
    assert body["field_of_view"]["horizontal"] > 20
    diagnostics = body["diagnostics"]
    assert diagnostics["used"] == 2 and diagnostics["total"] == 3
    dropped = [p for p in diagnostics["photos"] if not p["used"]]
    assert dropped[0]["reason"] == "moved" and "03.jpg" in dropped[0]["message"]

    image = fetch_image(client, body["image_url"])
    assert image.size == (body["width"], body["height"])
    assert not image.getexif() and "exif" not in image.info  # berlin's GPS does not travel
    preview = fetch_image(client, body["preview_url"])
    assert preview.width <= 1600
    viewer = body["viewer"]
    assert viewer["projection"]["type"] == "equirectangular"
    assert viewer["projection"]["haov"] == body["field_of_view"]["horizontal"]
    levels = viewer["tiles"]["levels"]
    assert levels[0]["width"] == body["width"] and levels[-1]["columns"] == levels[-1]["rows"] == 1
    tile = fetch_image(client, levels[0]["urls"][0][0])
    assert tile.size == (min(512, body["width"]), min(512, body["height"])) and not tile.getexif()
    assert client.get(local(body["manifest_url"])).json["tiles"]["tile_size"] == 512

    listed = client.get("/v1/panoramas?limit=1", headers=merchant.headers).json
    assert listed["items"][0]["id"] == created["id"]

    minted = client.post("/v1/embed-tokens", headers=merchant.headers,
                         json={"target_id": created["id"], "origins": ["https://shop.example"]})
    assert minted.status_code == 201, minted.json
    embedded = client.get(local(minted.json["manifest_url"]), headers={"Origin": "https://shop.example"}).json
    assert embedded["mode"] == "panorama"
    assert embedded["panorama"]["hfov"] == body["field_of_view"]["horizontal"]
    assert fetch_image(client, embedded["panorama"]["preview"]).size == preview.size
    # deleting it removes its files and stops its links and embeds; the photos stay
    assert client.delete(f"/v1/panoramas/{created['id']}", headers=merchant.headers).status_code == 204
    assert client.get(f"/v1/panoramas/{created['id']}", headers=merchant.headers).status_code == 404
    assert client.get(local(body["manifest_url"])).status_code == 404
    assert client.get(local(minted.json["manifest_url"]), headers={"Origin": "https://shop.example"}).status_code \
        == 404
    assert not (data_dir / "storage" / "jobs" / merchant.merchant_id / job.id).exists()
    assert client.get(f"/v1/assets/{asset_ids[0]}", headers=merchant.headers).status_code == 200


def test_a_photo_deleted_before_the_job_runs_fails_cleanly(app: Flask, client: FlaskClient,
                                                           merchant: MerchantCredentials, data_dir: Path) -> None:
    from tests.conftest import start_worker, stop_process

    photos = hill(client, merchant)
    created = client.post("/v1/panoramas", headers=merchant.headers, json={"asset_ids": photos}).json
    assert client.delete(f"/v1/assets/{photos[1]}", headers=merchant.headers).status_code == 204
    worker = start_worker(data_dir)
    try:
        job = wait_for_job(app, created["job"]["id"], timeout=60)
    finally:
        stop_process(worker)
    assert job.state == "failed" and job.error["code"] == "asset_missing" and "upload it again" in job.error["detail"]


def test_a_bad_photo_set_fails_with_advice_not_a_stack_trace(app: Flask, client: FlaskClient,
                                                             merchant: MerchantCredentials, worker: Any) -> None:
    unrelated = [upload(client, merchant, media("panorama/hill/1.JPG"), "mountain.jpg"),
                 upload(client, merchant, media("panorama/pier/1.JPG"), "lake.jpg")]
    created = client.post("/v1/panoramas", headers=merchant.headers, json={"asset_ids": unrelated}).json
    job = wait_for_job(app, created["job"]["id"], timeout=60)
    assert job.state == "failed"
    body = client.get(f"/v1/panoramas/{created['id']}", headers=merchant.headers).json
    assert body["state"] == "failed"
    assert body["error"]["code"] == "no_overlap" and "overlaps the next" in body["error"]["detail"]
    assert "traceback" not in body["error"] and "traceback" not in body["job"]["error"]
    messages = [p["message"] for p in body["diagnostics"]["photos"]]
    assert "mountain.jpg" in messages[0] and "lake.jpg" in messages[1]


def test_panorama_requests_are_checked_at_once(client: FlaskClient, merchant: MerchantCredentials,
                                               other_merchant: MerchantCredentials) -> None:
    photos = hill(client, merchant)
    video = upload(client, merchant, media("video/flower.mp4"))
    foreign = upload(client, other_merchant, media("panorama/pier/1.JPG"))
    cases = [
        ({"asset_ids": photos[:1]}, 400, "too_few_photos"),
        ({"asset_ids": []}, 400, "too_few_photos"),
        ({"asset_ids": "ast_x"}, 400, "invalid_asset_ids"),
        ({"asset_ids": [photos[0], photos[0]]}, 400, "duplicate_asset"),
        ({"asset_ids": photos, "options": {"projection": "fisheye"}}, 400, "invalid_options"),
        ({"asset_ids": photos, "options": {"sharpen": True}}, 400, "invalid_options"),
        ({"asset_ids": photos, "options": {"max_output_megapixels": 10_000}}, 400, "invalid_options"),
        ({"asset_ids": photos, "options": "fast"}, 400, "invalid_options"),
        ({"asset_ids": [photos[0], video]}, 422, "not_an_image"),
        ({"asset_ids": [photos[0], foreign]}, 404, "asset_not_found"),
        ({"asset_ids": [photos[0], "ast_doesnotexist"]}, 404, "asset_not_found"),
        ({}, 400, "missing_fields"),
    ]
    for body, status, code in cases:
        response = client.post("/v1/panoramas", headers=merchant.headers, json=body)
        assert (response.status_code, response.json["code"]) == (status, code), (body, response.json)
        assert response.content_type.startswith("application/problem+json")
    assert client.post("/v1/panoramas", headers=merchant.headers, data="x").status_code == 400
    assert client.post("/v1/panoramas", json={"asset_ids": photos}).status_code == 401
    assert client.get("/v1/panoramas/pan_nothing", headers=merchant.headers).status_code == 404


def test_panoramas_belong_to_their_merchant(client: FlaskClient, merchant: MerchantCredentials,
                                            other_merchant: MerchantCredentials) -> None:
    created = client.post("/v1/panoramas", headers=merchant.headers, json={"asset_ids": hill(client, merchant)}).json
    assert client.get(f"/v1/panoramas/{created['id']}", headers=other_merchant.headers).status_code == 404
    assert client.get("/v1/panoramas", headers=other_merchant.headers).json["items"] == []
    mine = client.get("/v1/panoramas", headers=merchant.headers).json["items"]
    assert [p["id"] for p in mine] == [created["id"]] and mine[0]["state"] == "queued"


def test_spin_from_a_turntable_video_and_its_embed(app: Flask, client: FlaskClient, merchant: MerchantCredentials,
                                                   worker: Any, tmp_path: Path) -> None:
    video = write_turntable_video(tmp_path / "turntable.mp4", degrees_per_frame=4.0, frames=140,
                                  scratch=tmp_path / "render")
    video_id = upload(client, merchant, video)
    response = client.post("/v1/spins", headers=merchant.headers, json={"video_asset_id": video_id, "frames": 24})
    assert response.status_code == 202, response.json
    created = response.json
    assert created["source"] == "video" and created["frames"] == 24
    job = wait_for_job(app, created["job"]["id"], timeout=120)
    assert job.state == "succeeded", job.error
    body = client.get(f"/v1/spins/{created['id']}", headers=merchant.headers).json
    assert body["state"] == "ready" and body["frame_count"] == 24
    manifest = body["manifest"]
    assert abs(manifest["revolution"]["period_frames"] - 90) <= 1
    for size in manifest["sizes"]:
        assert len(size["urls"]["webp"]) == len(size["urls"]["jpeg"]) == 24
    frame = fetch_image(client, manifest["sizes"][0]["urls"]["webp"][5])
    assert frame.format == "WEBP" and frame.width == manifest["sizes"][0]["width"]
    sprite = fetch_image(client, manifest["sprite"]["url"])
    assert sprite.size == (manifest["sprite"]["width"], manifest["sprite"]["height"])

    minted = client.post("/v1/embed-tokens", headers=merchant.headers,
                         json={"target_id": created["id"], "origins": ["https://shop.example"]})
    assert minted.status_code == 201, minted.json
    embedded = client.get(local(minted.json["manifest_url"]), headers={"Origin": "https://shop.example"}).json
    assert embedded["mode"] == "spin" and len(embedded["spin"]["frames"]) == 24


def test_spin_from_photos_in_name_order(app: Flask, client: FlaskClient, merchant: MerchantCredentials,
                                        data_dir: Path, worker: Any) -> None:
    names = [f"{i}.png" for i in (10, 2, 1, 30, 20, 40, 50, 5)]
    asset_ids = [upload(client, merchant, media(f"spin/civic_52/{name}")) for name in names]
    created = client.post("/v1/spins", headers=merchant.headers,
                          json={"asset_ids": asset_ids, "options": {"clean_background": True, "widths": [200, 400]}})
    assert created.status_code == 202, created.json
    job = wait_for_job(app, created.json["job"]["id"], timeout=120)
    assert job.state == "succeeded", job.error
    manifest = client.get(f"/v1/spins/{created.json['id']}", headers=merchant.headers).json["manifest"]
    assert manifest["ordered_by"] == "name"
    assert [o["photo"] for o in manifest["order"]] == ["1.png", "2.png", "5.png", "10.png", "20.png", "30.png",
                                                        "40.png", "50.png"]
    assert [s["width"] for s in manifest["sizes"]] == [200, 400]
    assert client.delete(f"/v1/spins/{created.json['id']}", headers=merchant.headers).status_code == 204
    assert client.get(f"/v1/spins/{created.json['id']}", headers=merchant.headers).status_code == 404
    assert not (data_dir / "storage" / "jobs" / merchant.merchant_id / job.id).exists()


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"frames": 36}, 400, "invalid_source"),
    ({"asset_ids": ["a", "b", "c", "d"], "video_asset_id": "v"}, 400, "invalid_source"),
    ({"video_asset_id": "PHOTO", "frames": 36}, 422, "not_a_video"),
    ({"video_asset_id": "VIDEO", "frames": 30}, 400, "invalid_options"),
    ({"video_asset_id": "VIDEO", "options": {"background_color": "red"}}, 400, "invalid_options"),
    ({"video_asset_id": "ast_missing"}, 404, "asset_not_found"),
    ({"asset_ids": ["PHOTO", "VIDEO", "PHOTO2", "PHOTO3"]}, 422, "not_an_image"),
    ({"asset_ids": ["PHOTO", "PHOTO2"]}, 400, "too_few_photos"),
])
def test_spin_requests_are_checked_at_once(client: FlaskClient, merchant: MerchantCredentials, body: dict[str, Any],
                                           status: int, code: str) -> None:
    ids = {"PHOTO": upload(client, merchant, media("spin/civic_52/1.png")),
           "PHOTO2": upload(client, merchant, media("spin/civic_52/2.png")),
           "PHOTO3": upload(client, merchant, media("spin/civic_52/3.png")),
           "VIDEO": upload(client, merchant, media("video/flower.mp4"))}

    def resolve(value: Any) -> Any:
        if isinstance(value, list):
            return [ids.get(v, v) for v in value]
        return ids.get(value, value) if isinstance(value, str) else value

    request = {key: resolve(value) for key, value in body.items()}
    response = client.post("/v1/spins", headers=merchant.headers, json=request)
    assert (response.status_code, response.json["code"]) == (status, code), response.json


def test_schema_has_the_new_tables(app: Flask) -> None:
    """Migration 0003 creates exactly what the models describe."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from media_service.models import Base

    engine = app.extensions["database"].engine
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    ours = [d for d in differences if any(name in repr(d) for name in ("'panoramas'", "'spins'"))]
    assert ours == []
