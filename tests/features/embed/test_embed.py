"""Embed tokens, origin checks, the widget manifest, the iframe page, events and oEmbed."""

from __future__ import annotations

import base64
import json
import time
from io import BytesIO
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from media_service import create_app
from media_service.db import upgrade
from media_service.features.embed.service import mint_token
from media_service.security.ratelimit import RateLimiter
from tests.conftest import MerchantCredentials, add_merchant, make_test_config, media

SHOP = "https://shop.example"


@pytest.fixture
def image_id(client: FlaskClient, merchant: MerchantCredentials) -> str:
    photo = media("panorama/hill/1.JPG")
    return client.post("/v1/assets", headers=merchant.headers, content_type="multipart/form-data",
                       data={"file": (BytesIO(photo.read_bytes()), photo.name)}).json["id"]


def mint(client: FlaskClient, who: MerchantCredentials, target_id: str, origins: list[str] | None = None,
         **extra: object):
    return client.post("/v1/embed-tokens", headers=who.headers,
                       json={"target_id": target_id, "origins": [SHOP] if origins is None else origins, **extra})


def test_manifest_for_an_image_with_exact_origin_cors(client: FlaskClient, merchant: MerchantCredentials,
                                                     image_id: str) -> None:
    minted = mint(client, merchant, image_id, [SHOP + "/", "https://SHOP.example:443"])
    assert minted.status_code == 201, minted.json
    assert minted.json["origins"] == [SHOP]
    token = minted.json["token"]
    response = client.get(f"/v1/embed/{token}", headers={"Origin": SHOP})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    body = response.json
    assert body["mode"] == "image" and body["image"]["width"] == 400 and body["target"]["id"] == image_id
    assert "<media-viewer" in minted.json["html"]
    preflight = client.options(f"/v1/embed/{token}/events", headers={"Origin": SHOP})
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == SHOP


@pytest.mark.parametrize("origin", ["https://evil.example", "https://shop.example.evil.example", "null",
                                    "http://shop.example"])
def test_foreign_origins_are_refused(client: FlaskClient, merchant: MerchantCredentials, image_id: str,
                                     origin: str) -> None:
    token = mint(client, merchant, image_id).json["token"]
    response = client.get(f"/v1/embed/{token}", headers={"Origin": origin})
    assert response.status_code == 403 and response.json["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response.headers


def test_tampered_expired_and_alg_none_tokens_are_refused(app, client: FlaskClient, merchant: MerchantCredentials,
                                                          image_id: str) -> None:
    token = mint(client, merchant, image_id).json["token"]
    prefix, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["o"] = ["https://evil.example"]
    forged = ".".join([prefix, base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("="), signature])
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    alg_none = f"{header}.{payload}."
    for bad in (forged, alg_none, token[:-4] + "AAAA", "met1.x.y", "garbage"):
        response = client.get(f"/v1/embed/{bad}", headers={"Origin": SHOP})
        assert response.status_code == 401, bad
    # a token signed with another instance's secret is foreign
    foreign, _ = mint_token("another-secret", merchant_id=merchant.merchant_id, kind="asset", target_id=image_id,
                            origins=[SHOP], ttl_seconds=60)
    assert client.get(f"/v1/embed/{foreign}").status_code == 401
    assert client.get(f"/v1/embed/{token}", headers={"Origin": SHOP}).status_code == 200


def test_expiry(app, client: FlaskClient, merchant: MerchantCredentials, image_id: str, monkeypatch) -> None:
    token, _grant = mint_token(app.config["SECRET_KEY"], merchant_id=merchant.merchant_id, kind="asset",
                              target_id=image_id, origins=[SHOP], ttl_seconds=60)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 61)  # the clock, not a component
    response = client.get(f"/v1/embed/{token}")
    assert response.status_code == 401 and response.json["code"] == "embed_token_expired"


def test_tokens_only_for_own_items_and_allowed_origins(client: FlaskClient, merchant: MerchantCredentials,
                                                       other_merchant: MerchantCredentials, image_id: str) -> None:
    assert mint(client, other_merchant, image_id).status_code == 404
    assert mint(client, merchant, "job_123").status_code == 400
    for origins in (["*"], ["https://shop.example/path"], ["ftp://x"], ["http://shop.example"], []):
        assert mint(client, merchant, image_id, origins).status_code == 400, origins
    put = client.put("/v1/embed-settings", headers=merchant.headers, json={"allowed_origins": [SHOP]})
    assert put.status_code == 200
    assert mint(client, merchant, image_id, ["https://other.example"]).json["code"] == "origin_not_allowed"
    assert mint(client, merchant, image_id, [SHOP]).status_code == 201
    assert mint(client, merchant, image_id, [SHOP], ttl_seconds=10).status_code == 400


def test_iframe_page_sends_frame_ancestors(client: FlaskClient, merchant: MerchantCredentials, image_id: str) -> None:
    minted = mint(client, merchant, image_id, [SHOP, "https://m.shop.example"]).json
    page = client.get(minted["iframe_url"].split("localhost", 1)[1])
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors https://m.shop.example https://shop.example;" in policy
    assert "script-src 'self'" in policy and b"<media-viewer" in page.data
    wrong_target = client.get(f"/embed/ast_other?token={minted['token']}")
    assert wrong_target.status_code == 404


def test_events_are_counted(client: FlaskClient, merchant: MerchantCredentials, image_id: str) -> None:
    token = mint(client, merchant, image_id).json["token"]
    batch = {"session": "s1", "events": [{"type": "view"}, {"type": "drag", "data": {"dx": 3}}, {"type": "view"}]}
    response = client.post(f"/v1/embed/{token}/events", json=batch, headers={"Origin": SHOP})
    assert response.status_code == 202 and response.json["accepted"] == 3
    bad = client.post(f"/v1/embed/{token}/events", json={"events": [{"type": "hack"}]}, headers={"Origin": SHOP})
    assert bad.status_code == 400
    too_many = client.post(f"/v1/embed/{token}/events", json={"events": [{"type": "view"}] * 51})
    assert too_many.status_code == 400
    stats = client.get(f"/v1/embed-stats/{image_id}", headers=merchant.headers).json
    assert stats["counts"] == {"view": 2, "drag": 1} and stats["total"] == 3


def test_oembed(client: FlaskClient, merchant: MerchantCredentials, image_id: str) -> None:
    minted = mint(client, merchant, image_id).json
    response = client.get("/oembed", query_string={"url": minted["iframe_url"], "maxwidth": 500})
    assert response.status_code == 200
    assert response.json["type"] == "rich" and response.json["width"] == 500
    assert "<iframe" in response.json["html"] and minted["token"] in response.json["html"]
    assert client.get("/oembed", query_string={"url": "https://elsewhere.example/embed/x"}).status_code == 404
    assert client.get("/oembed", query_string={"url": minted["iframe_url"], "format": "xml"}).status_code == 501
    for bad in ("abc", "-5", "0", "1e9"):
        refused = client.get("/oembed", query_string={"url": minted["iframe_url"], "maxheight": bad})
        assert (refused.status_code, refused.json["code"]) == (400, "invalid_size")


def test_a_script_hammering_with_an_embed_token_is_slowed_down_before_any_work(tmp_path: Path) -> None:
    """50 requests in a burst from one viewer: the burst is served, the rest get 429 with Retry-After (and
    CORS, so the page can read it); another viewer is not affected; after Retry-After it works again."""
    clock = [0.0]
    app = create_app(make_test_config(tmp_path, SHOPPER_RATE_PER_MINUTE=60, SHOPPER_RATE_BURST=10))
    upgrade(app.config["DATABASE_URL"])
    app.extensions["shopper_limiter"] = RateLimiter(60, 10, clock=lambda: clock[0])  # time stands still
    client = app.test_client()
    merchant = add_merchant(app, "Busy shop")
    image = client.post("/v1/assets", headers=merchant.headers, content_type="multipart/form-data",
                        data={"file": (BytesIO(media("panorama/hill/1.JPG").read_bytes()), "p.jpg")}).json["id"]
    token = mint(client, merchant, image).json["token"]
    events = {"events": [{"type": "view"}]}
    answers = [client.post(f"/v1/embed/{token}/events", json=events, headers={"Origin": SHOP}) for _ in range(50)]
    assert [a.status_code for a in answers] == [202] * 10 + [429] * 40
    limited = answers[-1]
    assert limited.mimetype == "application/problem+json" and limited.json["code"] == "rate_limited"
    assert limited.headers["Retry-After"] == "1" and limited.headers["Access-Control-Allow-Origin"] == SHOP
    other = client.post(f"/v1/embed/{token}/events", json=events, headers={"Origin": SHOP},
                        environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 202
    assert client.options(f"/v1/embed/{token}/events", headers={"Origin": SHOP}).status_code == 204  # preflight
    clock[0] += 1.0
    assert client.post(f"/v1/embed/{token}/events", json=events, headers={"Origin": SHOP}).status_code == 202
    assert client.post(f"/v1/embed/{token}/events", json=events, headers={"Origin": SHOP}).status_code == 429
    stats = client.get(f"/v1/embed-stats/{image}", headers=merchant.headers).json
    assert stats["counts"] == {"view": 12}  # nothing of the refused requests was recorded
    # without a trusted proxy a forwarded address is ignored: a script cannot pose as many viewers
    spoofed = client.post(f"/v1/embed/{token}/events", json=events,
                          headers={"Origin": SHOP, "X-Forwarded-For": "198.51.100.9"})
    assert spoofed.status_code == 429
    app.extensions["database"].dispose()


def test_behind_a_trusted_proxy_each_shopper_has_their_own_rate(tmp_path: Path) -> None:
    app = create_app(make_test_config(tmp_path, TRUSTED_PROXIES=1, SHOPPER_RATE_BURST=2))
    upgrade(app.config["DATABASE_URL"])
    client = app.test_client()
    merchant = add_merchant(app, "Proxied shop")
    image = client.post("/v1/assets", headers=merchant.headers, content_type="multipart/form-data",
                        data={"file": (BytesIO(media("panorama/hill/1.JPG").read_bytes()), "p.jpg")}).json["id"]
    token = mint(client, merchant, image).json["token"]

    def view(shopper: str) -> int:
        return client.get(f"/v1/embed/{token}", headers={"Origin": SHOP, "X-Forwarded-For": shopper}).status_code

    assert [view("203.0.113.1") for _ in range(3)] == [200, 200, 429]
    assert view("203.0.113.2") == 200  # another shopper behind the same proxy
    app.extensions["database"].dispose()
