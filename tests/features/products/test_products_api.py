"""``/v1/products`` and the cart-webhook setting: validation at the edge, indexing of photos, isolation."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import MerchantCredentials, media
from tests.support.products.semireal import photo_path
from tests.support.products.shop import upload


@pytest.fixture
def photos(client: FlaskClient, merchant: MerchantCredentials) -> dict[str, str]:
    return {name: upload(client, merchant, photo_path(name))["id"]
            for name in ("solidus_mug_set.png", "solidus_cap_red_1.png", "solidus_cap_red_2.png")}


def test_create_read_update_delete(client: FlaskClient, merchant: MerchantCredentials, photos: dict[str, str]) -> None:
    headers = merchant.headers
    body = {"sku": "MUG-SET", "title": "Mug set", "price": 24.5, "currency": "EUR",
            "url": "https://shop.example/mugs", "image_asset_ids": [photos["solidus_mug_set.png"]]}
    created = client.post("/v1/products", headers=headers, json=body)
    assert created.status_code == 201, created.json
    product = created.json
    assert product["price"] == "24.5" and product["currency"] == "EUR" and product["image_url"]
    assert product["images"][0]["keypoints"] > 40 and created.headers["Location"].endswith("/v1/products/MUG-SET")
    assert client.get("/v1/products/MUG-SET", headers=headers).json == product
    again = client.post("/v1/products", headers=headers, json=body)
    assert again.status_code == 409 and again.json["code"] == "product_exists"

    changed = client.patch("/v1/products/MUG-SET", headers=headers, json={
        "price": "19.90", "title": "Two mugs", "image_asset_ids": [photos["solidus_mug_set.png"],
                                                                   photos["solidus_cap_red_1.png"]]})
    assert changed.status_code == 200 and changed.json["price"] == "19.90" and len(changed.json["images"]) == 2
    listed = client.get("/v1/products?limit=1", headers=headers).json
    assert [p["sku"] for p in listed["items"]] == ["MUG-SET"] and listed["next_cursor"] is None
    assert client.delete("/v1/products/MUG-SET", headers=headers).status_code == 204
    assert client.get("/v1/products/MUG-SET", headers=headers).status_code == 404


def test_photos_are_indexed_once_and_shared(app: Flask, client: FlaskClient, merchant: MerchantCredentials,
                                            photos: dict[str, str]) -> None:
    ids = [photos["solidus_cap_red_1.png"], photos["solidus_cap_red_2.png"]]
    first = client.post("/v1/products", headers=merchant.headers, json={"sku": "CAP-RED", "title": "Cap",
                                                                         "image_asset_ids": ids})
    second = client.post("/v1/products", headers=merchant.headers, json={"sku": "CAP-RED-2", "title": "Cap too",
                                                                          "image_asset_ids": ids[:1]})
    assert first.status_code == second.status_code == 201
    storage_root = app.config["STORAGE_ROOT"]
    import pathlib

    features = sorted(pathlib.Path(storage_root).rglob("*.npz"))
    assert len(features) == 2  # two photos, three uses


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"title": "No SKU"}, 400, "missing_fields"),
    ({"sku": "has space", "title": "x"}, 400, "invalid_sku"),
    ({"sku": "a/b", "title": "x"}, 400, "invalid_sku"),
    ({"sku": "X" * 101, "title": "x"}, 400, "invalid_sku"),
    ({"sku": "OK", "title": ""}, 400, "invalid_title"),
    ({"sku": "OK", "title": "x", "price": -1}, 400, "invalid_price"),
    ({"sku": "OK", "title": "x", "price": "1.00001"}, 400, "invalid_price"),
    ({"sku": "OK", "title": "x", "price": "NaN"}, 400, "invalid_price"),
    ({"sku": "OK", "title": "x", "price": True}, 400, "invalid_price"),
    ({"sku": "OK", "title": "x", "currency": "euro"}, 400, "invalid_currency"),
    ({"sku": "OK", "title": "x", "url": "javascript:alert(1)"}, 400, "invalid_url"),
    ({"sku": "OK", "title": "x", "image_asset_ids": "ast_1"}, 400, "invalid_images"),
    ({"sku": "OK", "title": "x", "image_asset_ids": ["ast_1", "ast_1"]}, 400, "invalid_images"),
    ({"sku": "OK", "title": "x", "image_asset_ids": ["ast_nope"]}, 404, "asset_not_found"),
    ({"sku": "OK", "title": "x", "colour": "red"}, 400, "unknown_fields"),
])
def test_invalid_products_are_refused_with_a_reason(client: FlaskClient, merchant: MerchantCredentials,
                                                    body: dict[str, Any], status: int, code: str) -> None:
    response = client.post("/v1/products", headers=merchant.headers, json=body)
    assert (response.status_code, response.json["code"]) == (status, code), response.json


def test_a_video_is_not_a_product_photo_and_too_many_photos(client: FlaskClient, merchant: MerchantCredentials,
                                                            app: Flask) -> None:
    video = upload(client, merchant, media("video/bear-vp9-odd-dimensions.webm"))["id"]
    response = client.post("/v1/products", headers=merchant.headers, json={"sku": "V", "title": "v",
                                                                           "image_asset_ids": [video]})
    assert response.status_code == 422 and response.json["code"] == "not_an_image"
    photo = upload(client, merchant, photo_path("solidus_sticker.png"))["id"]
    app.config["PRODUCT_MAX_IMAGES"] = 1
    too_many = client.post("/v1/products", headers=merchant.headers, json={"sku": "S", "title": "s",
                                                                           "image_asset_ids": [photo, video]})
    assert too_many.status_code == 400 and too_many.json["code"] == "too_many_images"


def test_sku_cannot_change_and_scopes_are_enforced(app: Flask, client: FlaskClient,
                                                   merchant: MerchantCredentials) -> None:
    client.post("/v1/products", headers=merchant.headers, json={"sku": "A", "title": "a"})
    renamed = client.patch("/v1/products/A", headers=merchant.headers, json={"sku": "B"})
    assert renamed.status_code == 400 and renamed.json["code"] == "sku_immutable"
    from media_service.security.api_keys import create_api_key

    with app.extensions["database"].session() as session:
        reader = create_api_key(session, merchant.merchant_id, scopes=("assets:read",))
    headers = {"Authorization": f"Bearer {reader}"}
    assert client.get("/v1/products/A", headers=headers).status_code == 200
    assert client.post("/v1/products", headers=headers, json={"sku": "C", "title": "c"}).status_code == 403
    assert client.put("/v1/settings/cart-webhook", headers=headers,
                      json={"url": "https://shop.example/cart"}).status_code == 403
    assert client.get("/v1/products").status_code == 401


def test_index_needs_a_catalog_and_a_video(client: FlaskClient, merchant: MerchantCredentials,
                                           other_merchant: MerchantCredentials) -> None:
    video = upload(client, merchant, media("video/bear-vp9-odd-dimensions.webm"))["id"]
    empty = client.post(f"/v1/videos/{video}/index", headers=merchant.headers, json={})
    assert empty.status_code == 409 and empty.json["code"] == "empty_catalog"
    photo = upload(client, merchant, photo_path("solidus_sticker.png"))["id"]
    not_video = client.post(f"/v1/videos/{photo}/index", headers=merchant.headers, json={})
    assert not_video.status_code == 422 and not_video.json["code"] == "not_a_video"
    for body, code in [({"detector": "yolo"}, "invalid_detector"), ({"fps": 0}, "invalid_fps"),
                       ({"fps": "4"}, "invalid_fps"), ({"speed": 1}, "unknown_fields")]:
        response = client.post(f"/v1/videos/{video}/index", headers=merchant.headers, json=body)
        assert (response.status_code, response.json["code"]) == (400, code)
    missing_model = client.post(f"/v1/videos/{video}/index", headers=merchant.headers, json={"detector": "torchvision"})
    assert missing_model.status_code == 422 and missing_model.json["code"] == "model_missing"
    assert client.post("/v1/videos/vid_nothing/index", headers=merchant.headers, json={}).status_code == 404
    assert client.post("/v1/videos/xyz/index", headers=merchant.headers, json={}).status_code == 404
    assert client.get(f"/v1/videos/{video}/index", headers=merchant.headers).json["code"] == "not_indexed"
    tracks = client.get(f"/v1/videos/{video}/tracks", headers=merchant.headers).json
    assert tracks == {"video_id": video, "index_id": None, "state": "not_indexed", "items": []}
    assert client.get(f"/v1/videos/{video}/tracks", headers=other_merchant.headers).status_code == 404


def test_cart_webhook_setting(client: FlaskClient, merchant: MerchantCredentials, app: Flask) -> None:
    headers = merchant.headers
    assert client.get("/v1/settings/cart-webhook", headers=headers).status_code == 404
    first = client.put("/v1/settings/cart-webhook", headers=headers, json={"url": "https://shop.example/cart"})
    assert first.status_code == 200 and first.json["secret"].startswith("whsec_")
    changed = client.put("/v1/settings/cart-webhook", headers=headers, json={"url": "https://shop.example/c2"})
    assert changed.status_code == 200 and "secret" not in changed.json
    rotated = client.put("/v1/settings/cart-webhook", headers=headers,
                         json={"url": "https://shop.example/c2", "rotate_secret": True})
    assert rotated.json["secret"] != first.json["secret"]
    hooks = client.get("/v1/webhooks", headers=headers).json["items"]
    assert [h["events"] for h in hooks] == [["cart.add"]]  # one row, subscribed to cart.add only
    app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = False
    private = client.put("/v1/settings/cart-webhook", headers=headers, json={"url": "http://127.0.0.1:9/cart"})
    assert private.status_code == 400 and private.json["code"] == "invalid_webhook_url"
    assert client.put("/v1/settings/cart-webhook", headers=headers, json={"url": "ftp://x"}).status_code == 400
    assert client.delete("/v1/settings/cart-webhook", headers=headers).status_code == 204
    assert client.delete("/v1/settings/cart-webhook", headers=headers).status_code == 404
