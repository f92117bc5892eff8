"""A campaign world for the tests of this folder: one app on a temporary folder, a merchant, the Big Buck
Bunny promo clip processed by the real video pipeline (approved), and a real logo uploaded as an asset.

Built once per test module (processing a video takes seconds); jobs run in-process with the worker's own
``run_one`` (the same code a worker process runs).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from media_service import create_app
from media_service.db import upgrade
from media_service.jobs.worker import run_one
from tests.conftest import MerchantCredentials, add_merchant, make_test_config, media

RULES = "One entry per shopper. No purchase necessary. Winners are drawn with a published, verifiable method."
ODDS = "Odds depend on the number of entries: each entry has the same chance."
FREE_ROUTE = "Send a postcard with your name and e-mail to Shop A, 1 Main Street, before the end date."


@dataclass
class World:
    app: Flask
    client: FlaskClient
    merchant: MerchantCredentials
    video_id: str
    logo_id: str
    data_dir: Path

    def run_jobs(self, timeout: float = 300) -> None:
        """Run queued jobs in this process until the queue is empty."""
        deadline = time.monotonic() + timeout
        while run_one(self.app.extensions["database"], self.app.config, "tests") is not None:
            assert time.monotonic() < deadline, "jobs took too long"

    def upload(self, path: Path) -> dict[str, Any]:
        response = self.client.post("/v1/assets", headers=self.merchant.headers,
                                    data={"file": (BytesIO(path.read_bytes()), path.name)},
                                    content_type="multipart/form-data")
        assert response.status_code in (200, 201), response.json
        return response.json

    def create(self, **overrides: Any) -> dict[str, Any]:
        body = {"video_id": self.video_id, "logo_asset_id": self.logo_id, "title": "Big sale logo hunt",
                "mode": "overlay", "fragments": 4, "seed": 7, "rule": {"kind": "all"},
                "prizes": [{"name": "Gift card", "quantity": 2}, {"name": "Mug", "quantity": 1}],
                "rules": RULES, "odds": ODDS, "alternative_entry": FREE_ROUTE, **overrides}
        response = self.client.post("/v1/campaigns", headers=self.merchant.headers, json=body)
        assert response.status_code == 202, response.json
        self.run_jobs()
        shown = self.client.get(f"/v1/campaigns/{response.json['id']}", headers=self.merchant.headers).json
        assert shown["render"]["state"] == "ready", shown["render"]
        return shown


def populate(world: World) -> World:
    """The promo clip processed (promo profile) and approved, and the logo uploaded."""
    asset = world.upload(media("video/bigbuckbunny.mp4"))
    video = world.client.post("/v1/videos", headers=world.merchant.headers,
                              json={"asset_id": asset["id"], "profile": "promo"})
    assert video.status_code == 202, video.json
    world.run_jobs()
    approved = world.client.post(f"/v1/videos/{video.json['id']}/approve", headers=world.merchant.headers, json={})
    assert approved.status_code == 200, approved.json
    world.video_id = video.json["id"]
    world.logo_id = world.upload(media("logos/scikit-video_logo.png"))["id"]
    return world


def make_world(root: Path, **settings: Any) -> Iterator[World]:
    data_dir = root / "data"
    data_dir.mkdir()
    app = create_app(make_test_config(data_dir, **settings))
    upgrade(app.config["DATABASE_URL"])
    yield populate(World(app, app.test_client(), add_merchant(app, "Shop A"), "", "", data_dir))
    app.extensions["database"].dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from make_world(tmp_path_factory.mktemp("campaigns"))
