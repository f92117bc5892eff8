"""Fixtures of the product-extraction tests: settings, the indexed test catalog, semi-real clips, and a
shop (app, merchants, catalog uploaded through the API, a video indexed by a real worker) shared by a
module's API tests because indexing takes seconds. A pytest plugin (registered in ``tests/conftest.py``):
the detection engine tests, the products and video-index feature tests and the widget tests share it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from media_service import create_app
from media_service.config import SETTINGS
from media_service.db import upgrade
from media_service.media.detection.catalog import CatalogProduct, index_product_photo
from media_service.media.ingest.images import configure_image_limits
from media_service.media_options import ingest_limits
from tests.conftest import (
    REPO,
    MerchantCredentials,
    add_merchant,
    make_test_config,
    start_worker,
    stop_process,
    wait_for_job,
)
from tests.support.products.semireal import (
    CATALOG_SKUS,
    EVALUATION_CLIPS,
    Placement,
    Truth,
    load_photo,
    photo_path,
    render_clip,
)

ARTIFACTS = REPO / "test-artifacts" / "products"
CLIP_FPS = 12.0

#: The clip the API tests index: two products moving over real footage (known boxes in every frame).
SHOP_CLIP = ("video/bottle-detection.mp4", 6.0, (
    Placement("TOTE-RED", "solidus_canvas_tote.png", (0.27, 0.5), (0.33, 0.48), (0.62, 0.66), tilt=0.1, roll=-3,
              gain=0.9),
    Placement("CAP-BLACK", "solidus_cap_black_1.png", (0.72, 0.6), (0.68, 0.56), (0.36, 0.4), tilt=-0.1, roll=5,
              gain=1.15, blur=0.5),
))


def artifact(name: str) -> Path:
    """A path under test-artifacts/products/ (git-ignored) for images worth looking at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


@pytest.fixture(scope="session")
def settings() -> dict[str, Any]:
    values = {s.name: s.default for s in SETTINGS}
    configure_image_limits(ingest_limits(values))
    return values


@pytest.fixture(scope="session")
def catalog(settings: dict[str, Any]) -> list[CatalogProduct]:
    """Every SKU of the test catalog, its photos indexed as the service indexes them."""
    return [CatalogProduct(sku, [index_product_photo(load_photo(name), kind=settings["PRODUCT_FEATURES"],
                                                     max_side=settings["PRODUCT_PHOTO_SIDE"]) for name in names])
            for sku, names in CATALOG_SKUS.items()]


@dataclass
class Clip:
    path: Path
    truths: list[Truth]
    fps: float = CLIP_FPS


@pytest.fixture(scope="session")
def evaluation_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Clip]:
    """The four semi-real evaluation clips (3 s each, every catalog SKU appears)."""
    folder = tmp_path_factory.mktemp("semireal")
    clips = {}
    for name, (background, start, placements) in EVALUATION_CLIPS.items():
        path = folder / f"{name}.mp4"
        clips[name] = Clip(path, render_clip(background, path, placements, seconds=3.0, fps=CLIP_FPS, start=start))
    return clips


@pytest.fixture(scope="session")
def shop_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    path = tmp_path_factory.mktemp("shop") / "shop.mp4"
    background, start, placements = SHOP_CLIP
    return Clip(path, render_clip(background, path, placements, seconds=2.5, fps=CLIP_FPS, start=start))


# ------------------------------------------------------------------------------------------ API helpers


def upload(client: FlaskClient, who: MerchantCredentials, path: Path) -> dict[str, Any]:
    response = client.post("/v1/assets", headers=who.headers, data={"file": (BytesIO(path.read_bytes()), path.name)},
                           content_type="multipart/form-data")
    assert response.status_code in (200, 201), response.json
    return response.json


def add_catalog(client: FlaskClient, who: MerchantCredentials, skus: dict[str, tuple[str, ...]] = CATALOG_SKUS
                ) -> dict[str, dict[str, Any]]:
    """Upload the photos and create one product per SKU through the API."""
    created = {}
    for number, (sku, names) in enumerate(skus.items()):
        ids = [upload(client, who, photo_path(name))["id"] for name in names]
        response = client.post("/v1/products", headers=who.headers, json={
            "sku": sku, "title": sku.replace("-", " ").title(), "price": f"{10 + number}.90", "currency": "EUR",
            "url": f"https://shop.example/p/{sku.lower()}", "image_asset_ids": ids})
        assert response.status_code == 201, response.json
        created[sku] = response.json
    return created


@dataclass
class Shop:
    """An app with a catalog and an indexed semi-real video, shared by a module's tests."""

    app: Flask
    client: FlaskClient
    data_dir: Path
    merchant: MerchantCredentials
    other: MerchantCredentials
    video_id: str
    clip: Clip
    index: dict[str, Any]
    products: dict[str, dict[str, Any]] = field(default_factory=dict)

    def tap(self, body: dict[str, Any], who: MerchantCredentials | None = None, video_id: str | None = None) -> Any:
        return self.client.post(f"/v1/videos/{video_id or self.video_id}/taps", json=body,
                                headers=(who or self.merchant).headers)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, shop_clip: Clip) -> Iterator[Shop]:
    data_dir = tmp_path_factory.mktemp("shop-data")
    app = create_app(make_test_config(data_dir))
    upgrade(app.config["DATABASE_URL"])
    client = app.test_client()
    merchant, other = add_merchant(app, "Shop A"), add_merchant(app, "Shop B")
    products = add_catalog(client, merchant)
    video = upload(client, merchant, shop_clip.path)
    worker = start_worker(data_dir)
    try:
        response = client.post(f"/v1/videos/{video['id']}/index", headers=merchant.headers, json={})
        assert response.status_code == 202, response.json
        job = wait_for_job(app, response.json["job"]["id"], timeout=180)
        assert job.state == "succeeded", job.error
        index = client.get(f"/v1/videos/{video['id']}/index", headers=merchant.headers).json
        (artifact("shop_index.json")).write_text(json.dumps(index, indent=2))
        yield Shop(app=app, client=client, data_dir=data_dir, merchant=merchant, other=other, video_id=video["id"],
                   clip=shop_clip, index=index, products=products)
    finally:
        stop_process(worker)
        app.extensions["database"].dispose()
