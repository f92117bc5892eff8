"""Indexing a semi-real video through the API and a real worker, then tapping, circling, reviewing, buying.

The shop fixture uploads the whole test catalog (9 SKUs, 14 real photos) and a clip in which two of
the products move over real footage with known boxes; a worker process runs the ``videos.index`` job.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest
from PIL import Image

from media_service.webhooks import verify_signature
from tests.conftest import wait_for_job
from tests.support.products.semireal import Placement, render_clip, truths_at
from tests.support.products.shop import Shop, artifact, upload

pytestmark = pytest.mark.slow  # the shop fixture indexes a video with a real worker (~10-20 s)


def _get(shop: Shop, url: str) -> Any:
    parts = urlsplit(url)
    return shop.client.get(parts.path + ("?" + parts.query if parts.query else ""))


def _png_alpha(shop: Shop, url: str) -> np.ndarray:
    response = _get(shop, url)
    assert response.status_code == 200 and response.mimetype == "image/png"
    with Image.open(BytesIO(response.data)) as image:
        assert image.mode == "RGBA"
        return np.asarray(image)


def _centre(box: tuple[float, ...], width: int, height: int) -> tuple[float, float]:
    return (box[0] + box[2]) / 2 / width, (box[1] + box[3]) / 2 / height


def test_index_tracks_the_products_and_writes_a_contact_sheet(shop: Shop) -> None:
    index = shop.index
    assert index["state"] == "ready" and index["detector"] == "catalog" and index["fps"] == 4.0
    assert index["frame_count"] == 10 and (index["width"], index["height"]) == (640, 360)
    tracks = shop.client.get(f"/v1/videos/{shop.video_id}/tracks?samples=1", headers=shop.merchant.headers).json
    skus = sorted(t["sku"] for t in tracks["items"])
    assert skus == ["CAP-BLACK", "TOTE-RED"], tracks
    for track in tracks["items"]:
        assert track["end"] - track["start"] >= 2.0  # followed through (nearly) the whole 2.5 s clip
        assert track["candidates"][0]["sku"] == track["sku"]
        assert track["sample_count"] >= 8
    sheet = _get(shop, index["contact_sheet_url"])
    assert sheet.status_code == 200 and sheet.mimetype == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(sheet.data, np.uint8), cv2.IMREAD_COLOR)  # our own JPEG
    cv2.imwrite(str(artifact("shop_contact_sheet.png")), image)


def test_taps_at_known_positions_return_the_right_sku(shop: Shop) -> None:
    width, height = 640, 360
    right = total = 0
    answers = []
    for t in (0.1, 0.5, 0.8, 1.0, 1.37, 1.75, 2.0, 2.3):  # sampled times and times between samples
        for truth in truths_at(shop.clip.truths, t, shop.clip.fps):
            x, y = _centre(truth.box, width, height)
            answer = shop.tap({"t": t, "x": x, "y": y}).json
            answers.append(answer)
            total += 1
            right += answer["hit"] and answer["product"]["sku"] == truth.sku
            assert answer["hit"], answer
            assert answer["source"] == "track" and answer["track_id"].startswith("trk_")
            assert answer["candidates"][0]["sku"] == answer["product"]["sku"]
            assert answer["product"]["price"] and answer["product"]["url"].startswith("https://shop.example/")
            assert answer["cart"]["token"].startswith("mct1.")
            box = np.array(answer["box"]) * [width, height, width, height]
            assert _iou(box, truth.box) > 0.6, (answer["box"], truth.box)
            alpha = _png_alpha(shop, answer["cutout"]["url"])
            assert alpha[:, :, 3].mean() > 0.4 * 255  # mostly product, transparent around it
    assert right == total and total == 16
    _tap_preview(shop, answers[6], "tap_preview.png")


def _tap_preview(shop: Shop, answer: dict[str, Any], name: str) -> None:
    """The tapped frame with the point, the answer's box and SKU, and the cut-out beside it (to look at)."""
    from tests.support.products.semireal import _decode

    frame_number = round(answer["tap"]["t"] * shop.clip.fps)
    frame = _decode(shop.clip.path, (640, 360), shop.clip.fps, frame_number + 1, 0.0)[frame_number]
    x0, y0, x1, y1 = (int(v * s) for v, s in zip(answer["box"], (640, 360, 640, 360), strict=True))
    cv2.rectangle(frame, (x0, y0), (x1, y1), (0, 255, 0), 2)
    point = (int(answer["tap"]["x"] * 640), int(answer["tap"]["y"] * 360))
    cv2.circle(frame, point, 7, (0, 0, 255), -1)
    label = " / ".join(f"{c['sku']} {c['score']:.2f}" for c in answer["candidates"][:3])
    cv2.putText(frame, label, (x0, max(14, y0 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 0), 1, cv2.LINE_AA)
    cut = _png_alpha(shop, answer["cutout"]["url"])
    canvas = np.full((360, 640 + cut.shape[1] + 20, 3), 235, np.uint8)
    canvas[:, :640] = frame
    alpha = cut[:, :, 3:4] / 255.0
    h = min(cut.shape[0], 360)
    region = canvas[:h, 650:650 + cut.shape[1]]
    canvas[:h, 650:650 + cut.shape[1]] = (cut[:h, :, 2::-1] * alpha[:h] + region * (1 - alpha[:h])).astype(np.uint8)
    cv2.imwrite(str(artifact(name)), canvas)


def _iou(a: Any, b: Any) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _ellipse(box: tuple[float, ...], width: int, height: int, grow: float = 1.3, points: int = 28) -> list[list[float]]:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    rx, ry = (box[2] - box[0]) / 2 * grow, (box[3] - box[1]) / 2 * grow
    return [[min(max((cx + rx * np.cos(a)) / width, 0.0), 1.0), min(max((cy + ry * np.sin(a)) / height, 0.0), 1.0)]
            for a in np.linspace(0, 2 * np.pi, points, endpoint=False)]


def _mask_from_cutout(alpha: np.ndarray, cutout: dict[str, Any], width: int, height: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    x0, y0 = round(cutout["box"][0] * width), round(cutout["box"][1] * height)
    h, w = alpha.shape[:2]
    mask[y0:y0 + h, x0:x0 + w] = alpha[:, :, 3] > 127
    return mask


def test_lasso_returns_a_cutout_whose_mask_covers_the_product(shop: Shop) -> None:
    width, height = 640, 360
    for t in (0.5, 1.5, 2.25):  # sampled frames: the cut-out is of that very frame
        for truth in truths_at(shop.clip.truths, t, shop.clip.fps):
            answer = shop.tap({"t": t, "polygon": _ellipse(truth.box, width, height)}).json
            assert answer["hit"] and answer["product"]["sku"] == truth.sku, answer
            alpha = _png_alpha(shop, answer["cutout"]["url"])
            mask = _mask_from_cutout(alpha, answer["cutout"], width, height)
            iou = (mask & truth.mask).sum() / (mask | truth.mask).sum()
            covered = (mask & truth.mask).sum() / truth.mask.sum()
            assert covered >= 0.95 and iou >= 0.85, (truth.sku, t, covered, iou)
            if t == 1.5:
                Image.fromarray(alpha).save(artifact(f"shop_cutout_{truth.sku}.png"))


def test_cutout_links_are_signed_and_expire(shop: Shop) -> None:
    truth = truths_at(shop.clip.truths, 0.5, shop.clip.fps)[0]
    x, y = _centre(truth.box, 640, 360)
    url = shop.tap({"t": 0.5, "x": x, "y": y}).json["cutout"]["url"]
    assert "/media/cutouts/" in url
    first, again = _get(shop, url), _get(shop, url)  # rendered once, then served from storage
    assert first.status_code == again.status_code == 200 and first.data == again.data
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    tampered = url.replace("signature=", "signature=0")
    assert _get(shop, tampered).status_code == 403
    other_frame = url.replace(".png?", "0.png?")
    assert _get(shop, other_frame).status_code == 403
    parts = urlsplit(url)
    assert shop.client.get(parts.path).status_code == 403  # unsigned
    expired = parts.path + "?" + "&".join(p if not p.startswith("expires=") else "expires=1000"
                                          for p in parts.query.split("&"))
    assert _get(shop, "http://x" + expired).status_code == 403


def test_tap_on_nothing_is_a_clear_empty_answer(shop: Shop) -> None:
    response = shop.tap({"t": 1.0, "x": 0.02, "y": 0.03})
    assert response.status_code == 200
    body = response.json
    assert body["hit"] is False and body["candidates"] == [] and body["product"] is None and body["cart"] is None
    assert "no product" in body["reason"]
    past_the_end = shop.tap({"t": 3600, "x": 0.5, "y": 0.5}).json
    assert past_the_end["hit"] is False


@pytest.mark.parametrize("body", [
    {}, {"t": 1}, {"t": -1, "x": 0.5, "y": 0.5}, {"t": 1, "x": 1.5, "y": 0.5}, {"t": 1, "x": 0.5},
    {"t": "1", "x": 0.5, "y": 0.5}, {"t": 1, "x": 0.5, "y": 0.5, "polygon": [[0, 0], [1, 0], [1, 1]]},
    {"t": 1, "polygon": [[0, 0], [1, 1]]}, {"t": 1, "polygon": [[0, 0], [0.5, 0.5], [1, 1]]},
    {"t": 1, "polygon": "around it"}, {"t": float("nan"), "x": 0.1, "y": 0.1}, {"t": 1, "x": 0.1, "y": 0.1, "z": 1},
])
def test_malformed_taps_are_400(shop: Shop, body: dict[str, Any]) -> None:
    response = shop.client.post(f"/v1/videos/{shop.video_id}/taps", headers=shop.merchant.headers,
                                data=json.dumps(body, allow_nan=True), content_type="application/json")
    assert response.status_code == 400 and response.json["code"] in {"invalid_tap", "invalid_json"}, response.json


def _fresh_video(shop: Shop, path: Any) -> tuple[str, Any]:
    """A semi-real clip never seen before (one red notebook); its asset id and the truth at t = 0.5 s."""
    placements = (Placement("NOTEBOOK-RED", "solidus_notebook.png", (0.35, 0.5), (0.35, 0.5), (0.6, 0.6),
                            tilt=0.1, gain=1.1),)
    truths = render_clip("video/friday.mp4", path, placements, seconds=1.0, fps=12.0, start=2.0)
    return upload(shop.client, shop.merchant, path)["id"], truths_at(truths, 0.5, 12.0)[0]


def test_on_demand_detection_and_cutout_on_a_video_never_indexed(shop: Shop, tmp_path: Any) -> None:
    video_id, truth = _fresh_video(shop, tmp_path / "fresh.mp4")
    x, y = _centre(truth.box, 640, 360)
    point = shop.tap({"t": 0.5, "x": x, "y": y}, video_id=video_id).json
    assert point["hit"] and point["source"] == "on_demand" and point["product"]["sku"] == "NOTEBOOK-RED", point
    assert point["track_id"] is None and abs(point["frame_t"] - 0.5) < 1e-6
    queued = shop.client.get(f"/v1/videos/{video_id}/index", headers=shop.merchant.headers).json
    assert queued["detector"] == "catalog"  # the first tap queued the video's index (TAP_AUTO_INDEX)
    lasso = shop.tap({"t": 0.5, "polygon": _ellipse(truth.box, 640, 360)}, video_id=video_id).json
    mask = _mask_from_cutout(_png_alpha(shop, lasso["cutout"]["url"]), lasso["cutout"], 640, 360)
    assert (mask & truth.mask).sum() / (mask | truth.mask).sum() >= 0.85
    nothing = shop.tap({"t": 0.5, "x": 0.95, "y": 0.1}, video_id=video_id).json
    assert nothing["hit"] is False


def test_deleting_a_video_asset_deletes_its_index_and_tap_cutouts(shop: Shop, tmp_path: Any) -> None:
    video_id, truth = _fresh_video(shop, tmp_path / "doomed.mp4")
    x, y = _centre(truth.box, 640, 360)
    assert shop.tap({"t": 0.5, "x": x, "y": y}, video_id=video_id).json["hit"]  # a cut-out, and the index queued
    index = shop.client.get(f"/v1/videos/{video_id}/index", headers=shop.merchant.headers).json
    assert wait_for_job(shop.app, index["job"]["id"], timeout=120).state == "succeeded"
    storage, merchant_id = shop.data_dir / "storage", shop.merchant.merchant_id
    made = [storage / "taps" / merchant_id / video_id, storage / "indexes" / merchant_id / index["id"]]
    assert all(folder.is_dir() and any(folder.iterdir()) for folder in made)

    assert shop.client.delete(f"/v1/assets/{video_id}", headers=shop.merchant.headers).status_code == 204
    assert shop.client.get(f"/v1/videos/{video_id}/index", headers=shop.merchant.headers).status_code == 404
    assert not any(folder.exists() for folder in made)


def test_review_corrects_and_hides_tracks(shop: Shop) -> None:
    headers = shop.merchant.headers
    tracks = shop.client.get(f"/v1/videos/{shop.video_id}/tracks", headers=headers).json["items"]
    cap = next(t for t in tracks if t["sku"] == "CAP-BLACK")
    url = f"/v1/videos/{shop.video_id}/tracks/{cap['id']}"
    truth = truths_at(shop.clip.truths, 1.0, shop.clip.fps)
    cap_truth = next(t for t in truth if t.sku == "CAP-BLACK")
    x, y = _centre(cap_truth.box, 640, 360)
    try:
        corrected = shop.client.patch(url, headers=headers, json={"sku": "CAP-RED"})
        assert corrected.status_code == 200 and corrected.json["state"] == "confirmed"
        assert corrected.json["sku"] == "CAP-RED" and corrected.json["detected_sku"] == "CAP-BLACK"
        answer = shop.tap({"t": 1.0, "x": x, "y": y}).json
        assert answer["product"]["sku"] == "CAP-RED" and answer["candidates"][0]["score"] == 1.0
        assert "CAP-BLACK" in [c["sku"] for c in answer["candidates"]]
        hidden = shop.client.patch(url, headers=headers, json={"state": "rejected"})
        assert hidden.status_code == 200 and hidden.json["state"] == "rejected"
        answer = shop.tap({"t": 1.0, "x": x, "y": y}).json
        assert answer["hit"] is False and "hid" in answer["reason"]
        assert shop.client.patch(url, headers=headers, json={"sku": "NOPE"}).status_code == 404
        assert shop.client.patch(url, headers=headers, json={"state": "maybe"}).status_code == 400
        assert shop.client.patch(url, headers=headers, json={"sku": "CAP-RED", "state": "rejected"}).status_code == 400
    finally:
        restored = shop.client.patch(url, headers=headers, json={"state": "detected"})
        assert restored.status_code == 200 and restored.json["sku"] == "CAP-BLACK"


class _CartReceiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append((dict(self.headers), body))
        reply = json.dumps({"cart_url": "https://shop.example/cart", "items": 1}).encode()
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def cart_receiver() -> Any:
    _CartReceiver.received = []
    _CartReceiver.status = 200
    server = HTTPServer(("127.0.0.1", 0), _CartReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_add_to_cart_calls_the_signed_cart_webhook(shop: Shop, cart_receiver: Any) -> None:
    headers = shop.merchant.headers
    truth = next(t for t in truths_at(shop.clip.truths, 1.0, shop.clip.fps) if t.sku == "TOTE-RED")
    x, y = _centre(truth.box, 640, 360)
    answer = shop.tap({"t": 1.0, "x": x, "y": y}).json
    cart_url = f"/v1/videos/{shop.video_id}/cart"
    no_hook = shop.client.post(cart_url, headers=headers, json={"cart_token": answer["cart"]["token"],
                                                                "sku": "TOTE-RED"})
    assert no_hook.status_code == 200 and no_hook.json["state"] == "no_webhook"

    url = f"http://127.0.0.1:{cart_receiver.server_port}/cart"
    hook = shop.client.put("/v1/settings/cart-webhook", headers=headers, json={"url": url})
    assert hook.status_code == 200 and hook.json["secret"].startswith("whsec_")
    secret = hook.json["secret"]
    try:
        added = shop.client.post(cart_url, headers=headers, json={
            "cart_token": answer["cart"]["token"], "sku": "TOTE-RED", "quantity": 2, "shopper_ref": "s-42"})
        assert added.status_code == 200, added.json
        assert added.json["state"] == "delivered" and added.json["merchant_response"]["cart_url"]
        (sent_headers, body), = _CartReceiver.received
        assert verify_signature(secret, body, sent_headers["Media-Service-Signature"])
        payload = json.loads(body)
        assert payload["event"] == "cart.add"
        assert {k: payload["data"][k] for k in ("sku", "quantity", "shopper_ref", "video_id")} == {
            "sku": "TOTE-RED", "quantity": 2, "shopper_ref": "s-42", "video_id": shop.video_id}
        assert payload["data"]["price"] == shop.products["TOTE-RED"]["price"]

        # Runner-up SKUs (products sharing the tote's logo) are offered too: refuse one the tap did not offer.
        not_offered = next(sku for sku in sorted(shop.products) if sku not in {c["sku"] for c in answer["candidates"]})
        refused = [
            ({"cart_token": answer["cart"]["token"], "sku": not_offered}, 400, "sku_not_offered"),
            ({"cart_token": answer["cart"]["token"][:-2] + "00", "sku": "TOTE-RED"}, 403, "invalid_cart_token"),
            ({"cart_token": "nonsense", "sku": "TOTE-RED"}, 403, "invalid_cart_token"),
            ({"cart_token": answer["cart"]["token"], "sku": "TOTE-RED", "quantity": 0}, 400, "invalid_quantity"),
        ]
        for body_, status, code in refused:
            response = shop.client.post(cart_url, headers=headers, json=body_)
            assert (response.status_code, response.json["code"]) == (status, code), body_

        _CartReceiver.status = 503  # the merchant's cart is down: the add is queued in the outbox
        queued = shop.client.post(cart_url, headers=headers, json={"cart_token": answer["cart"]["token"],
                                                                   "sku": "TOTE-RED"})
        assert queued.status_code == 202 and queued.json["state"] == "queued"
        _CartReceiver.status = 200
        deadline = time.monotonic() + 30  # the worker's housekeeping retries it
        while time.monotonic() < deadline and len(_CartReceiver.received) < 3:
            time.sleep(0.2)
        assert len(_CartReceiver.received) == 3
        retried_body = _CartReceiver.received[2][1]
        assert retried_body == _CartReceiver.received[1][1]  # the same signed event, re-sent
        first_try, retry = _CartReceiver.received[1][0], _CartReceiver.received[2][0]
        assert retry["Idempotency-Key"] == first_try["Idempotency-Key"] == first_try["Media-Service-Delivery"]
        info = shop.client.get("/v1/settings/cart-webhook", headers=headers).json
        assert "secret" not in info and info["url"] == url
    finally:
        assert shop.client.delete("/v1/settings/cart-webhook", headers=headers).status_code == 204


def test_another_merchants_products_and_videos_are_404(shop: Shop) -> None:
    other = shop.other.headers
    client, video = shop.client, shop.video_id
    track_id = client.get(f"/v1/videos/{video}/tracks", headers=shop.merchant.headers).json["items"][0]["id"]
    for method, url, body in [
        ("get", "/v1/products/TOTE-RED", None), ("patch", "/v1/products/TOTE-RED", {"title": "x"}),
        ("delete", "/v1/products/TOTE-RED", None), ("post", f"/v1/videos/{video}/index", {}),
        ("get", f"/v1/videos/{video}/index", None), ("get", f"/v1/videos/{video}/tracks", None),
        ("get", f"/v1/videos/{video}/tracks/{track_id}", None),
        ("patch", f"/v1/videos/{video}/tracks/{track_id}", {"state": "rejected"}),
        ("post", f"/v1/videos/{video}/taps", {"t": 1.0, "x": 0.5, "y": 0.5}),
    ]:
        response = getattr(client, method)(url, headers=other, json=body)
        assert response.status_code == 404, (method, url, response.json)
    assert client.get("/v1/products", headers=other).json["items"] == []
    # the other shop may use the same SKU for its own product
    mine = client.post("/v1/products", headers=other, json={"sku": "TOTE-RED", "title": "Their tote"})
    assert mine.status_code == 201
    assert client.get("/v1/products/TOTE-RED", headers=shop.merchant.headers).json["title"] == "Tote Red"
    # a track id of the first shop is not found through a video of the second
    theirs = upload(client, shop.other, shop.clip.path)["id"]
    assert client.get(f"/v1/videos/{theirs}/tracks/{track_id}", headers=other).status_code == 404


def test_embed_token_lets_the_widget_tap_with_exact_origin_cors(shop: Shop) -> None:
    minted = shop.client.post("/v1/embed-tokens", headers=shop.merchant.headers, json={
        "target_id": shop.video_id, "origins": ["https://shop.example"]})
    assert minted.status_code == 201, minted.json
    token = minted.json["token"]
    truth = truths_at(shop.clip.truths, 1.0, shop.clip.fps)[0]
    x, y = _centre(truth.box, 640, 360)
    url = f"/v1/videos/{shop.video_id}/taps?embed_token={token}"
    preflight = shop.client.options(url, headers={"Origin": "https://shop.example"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    tapped = shop.client.post(url, json={"t": 1.0, "x": x, "y": y}, headers={"Origin": "https://shop.example"})
    assert tapped.status_code == 200 and tapped.json["product"]["sku"] == truth.sku
    assert tapped.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    foreign = shop.client.post(url, json={"t": 1.0, "x": x, "y": y}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and "Access-Control-Allow-Origin" not in foreign.headers
    other_video = upload(shop.client, shop.merchant, shop.clip.path.parent / "shop.mp4")["id"]  # the same asset
    assert other_video == shop.video_id
    wrong_target = shop.client.post(f"/v1/videos/{shop.video_id}x/taps?embed_token={token}",
                                    json={"t": 1.0, "x": x, "y": y})
    assert wrong_target.status_code == 404
    cart = shop.client.post(f"/v1/videos/{shop.video_id}/cart?embed_token={token}",
                            json={"cart_token": tapped.json["cart"]["token"], "sku": truth.sku},
                            headers={"Origin": "https://shop.example"})
    assert cart.status_code == 200 and cart.json["state"] == "no_webhook"


def test_processed_video_ids_of_any_profile_reach_the_same_index(shop: Shop) -> None:
    from media_service import models

    if not hasattr(models, "Video"):
        pytest.skip("the processed-videos feature (issue 3) is not in this build")
    with shop.app.extensions["database"].session() as session:
        video = models.Video(merchant_id=shop.merchant.merchant_id, asset_id=shop.video_id, profile="buyer_show")
        session.add(video)
        session.flush()
        video_id = video.id
    again = shop.client.post(f"/v1/videos/{video_id}/index", headers=shop.merchant.headers, json={})
    assert again.status_code == 200 and again.json["id"] == shop.index["id"]  # same asset, catalog: same index
    tracks = shop.client.get(f"/v1/videos/{video_id}/tracks", headers=shop.merchant.headers).json
    assert tracks["index_id"] == shop.index["id"] and len(tracks["items"]) == 2
    truth = truths_at(shop.clip.truths, 1.0, shop.clip.fps)[0]
    x, y = _centre(truth.box, 640, 360)
    answer = shop.tap({"t": 1.0, "x": x, "y": y}, video_id=video_id).json
    assert answer["hit"] and answer["product"]["sku"] == truth.sku and answer["video_id"] == video_id
    assert shop.tap({"t": 1.0, "x": x, "y": y}, who=shop.other, video_id=video_id).status_code == 404


def test_a_point_tap_where_the_index_has_no_track_detects_around_the_finger(shop: Shop, tmp_path: Any) -> None:
    """The index of this video sampled one frame (0.4 frames/s over 1 s): no track, though the notebook is
    there all along. A point tap on it used to answer "no product" from the index alone; it now looks."""
    video_id, truth = _fresh_video(shop, tmp_path / "sparse.mp4")
    response = shop.client.post(f"/v1/videos/{video_id}/index", headers=shop.merchant.headers, json={"fps": 0.4})
    assert response.status_code == 202, response.json
    assert wait_for_job(shop.app, response.json["job"]["id"], timeout=120).state == "succeeded"
    index = shop.client.get(f"/v1/videos/{video_id}/index", headers=shop.merchant.headers).json
    assert index["state"] == "ready" and index["track_count"] == 0, index
    x, y = _centre(truth.box, 640, 360)
    answer = shop.tap({"t": 0.5, "x": x, "y": y}, video_id=video_id).json
    assert answer["hit"] and answer["source"] == "on_demand", answer
    assert answer["product"]["sku"] == "NOTEBOOK-RED" and answer["uncertain"] is False, answer
    assert 0 < answer["confidence"] <= 1
    beside = shop.tap({"t": 0.5, "x": 0.95, "y": 0.1}, video_id=video_id).json
    assert beside["hit"] is False and beside["product"] is None and beside["uncertain"] is False
