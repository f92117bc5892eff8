"""Each mode of the widget in a real Chromium: it renders, and it answers drags and the phone's motion.

The panorama is stitched and the spin built by the real service and a real worker from the shared photos.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import requests
from flask import Flask
from PIL import Image
from playwright.sync_api import Page

from tests.conftest import LiveServer, MerchantCredentials, start_worker, stop_process
from tests.widget.conftest import HostSite, shot
from tests.widget.test_widget_embed import host_page, mint, upload


def _wait_ready(server: LiveServer, who: MerchantCredentials, path: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = requests.get(f"{server.url}{path}", headers=who.headers, timeout=10).json()
        if body["state"] in {"ready", "failed", "cancelled"}:
            assert body["state"] == "ready", body
            return body
        time.sleep(0.5)
    raise AssertionError(f"{path} not ready in {timeout} s")


def _pixels(page: Page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.locator("media-viewer").screenshot())).convert("L"), np.float32)


def _changed(before: np.ndarray, after: np.ndarray) -> float:
    return float(np.mean(np.abs(before - after)))


def _drag(page: Page, dx: int) -> None:
    box = page.locator("media-viewer").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x + dx * step / 10, y + 5 * step / 10)
    page.mouse.up()


def test_panorama_renders_drags_and_follows_the_gyroscope(app: Flask, page: Page, live_server: LiveServer,
                                                          host_site: HostSite, data_dir: Path,
                                                          merchant: MerchantCredentials) -> None:
    ids = [upload(live_server, merchant, f"panorama/hill/{n}.JPG")["id"] for n in (1, 2, 3)]
    created = requests.post(f"{live_server.url}/v1/panoramas", headers=merchant.headers, json={"asset_ids": ids},
                            timeout=30)
    assert created.status_code == 202, created.text
    worker = start_worker(data_dir)
    try:
        panorama = _wait_ready(live_server, merchant, f"/v1/panoramas/{created.json()['id']}")
    finally:
        stop_process(worker)
    minted = mint(live_server, merchant, panorama["id"], host_site.origin)
    host_site.pages["pano.html"] = host_page(minted)
    page.emulate_media(reduced_motion="reduce")  # no autorotate: changes below come from input only
    page.goto(host_site.url("pano.html"))
    page.wait_for_selector("media-viewer[data-rendered][data-mode=panorama]", timeout=20_000)
    page.wait_for_timeout(300)
    start = _pixels(page)
    assert start.std() > 10, "blank panorama"
    shot(page, "panorama-start")
    page.wait_for_timeout(300)
    assert _changed(start, _pixels(page)) < 1.0, "the view moved without input"
    _drag(page, -200)
    page.wait_for_timeout(800)
    dragged = _pixels(page)
    shot(page, "panorama-dragged")
    assert _changed(start, dragged) > 5
    page.locator("media-viewer").evaluate("""(v) => [...v.shadowRoot.querySelectorAll('button')]
        .find((b) => b.textContent === 'Motion').click()""")
    for alpha, beta in ((0, 90), (330, 95)):  # the phone turns 30 degrees to the right and tips a little
        page.evaluate(f"""() => window.dispatchEvent(new DeviceOrientationEvent('deviceorientation',
            {{alpha: {alpha}, beta: {beta}, gamma: 0}}))""")
    page.wait_for_timeout(500)
    turned = _pixels(page)
    shot(page, "panorama-gyroscope")
    assert _changed(dragged, turned) > 5
    page.keyboard.press("Tab")


def test_spin_turns_with_drag_and_tilt(app: Flask, page: Page, live_server: LiveServer, host_site: HostSite,
                                       data_dir: Path, merchant: MerchantCredentials) -> None:
    ids = [upload(live_server, merchant, f"spin/civic_52/{n}.png")["id"] for n in range(1, 53, 4)]
    created = requests.post(f"{live_server.url}/v1/spins", headers=merchant.headers, json={"asset_ids": ids},
                            timeout=30)
    assert created.status_code == 202, created.text
    worker = start_worker(data_dir)
    try:
        spin = _wait_ready(live_server, merchant, f"/v1/spins/{created.json()['id']}")
    finally:
        stop_process(worker)
    minted = mint(live_server, merchant, spin["id"], host_site.origin)
    host_site.pages["spin.html"] = host_page(minted)
    page.goto(host_site.url("spin.html"))
    page.wait_for_selector("media-viewer[data-rendered][data-mode=spin]", timeout=20_000)
    frame = page.locator("media-viewer").evaluate("(v) => v.shadowRoot.querySelector('img.frame').dataset.frame")
    start = _pixels(page)
    shot(page, "spin-start")
    assert start.std() > 10
    page.wait_for_timeout(1500)  # the rest of the frames arrive
    _drag(page, 120)
    after = page.locator("media-viewer").evaluate("(v) => v.shadowRoot.querySelector('img.frame').dataset.frame")
    page.wait_for_timeout(300)
    shot(page, "spin-dragged")
    assert after != frame
    assert _changed(start, _pixels(page)) > 2
    page.locator("media-viewer").evaluate("""(v) => [...v.shadowRoot.querySelectorAll('button')]
        .find((b) => b.textContent === 'Tilt').click()""")
    page.evaluate("() => window.dispatchEvent(new DeviceOrientationEvent('deviceorientation', {gamma: 60}))")
    tilted = page.locator("media-viewer").evaluate("(v) => v.shadowRoot.querySelector('img.frame').dataset.frame")
    assert tilted not in {after, None}


def test_video_plays_with_poster_and_storyboard(app: Flask, page: Page, live_server: LiveServer, host_site: HostSite,
                                                data_dir: Path, merchant: MerchantCredentials) -> None:
    asset = upload(live_server, merchant, "video/flower.mp4")
    created = requests.post(f"{live_server.url}/v1/videos", headers=merchant.headers, timeout=30,
                            json={"asset_id": asset["id"], "profile": "promo"})
    assert created.status_code == 202, created.text
    worker = start_worker(data_dir)
    try:
        video = _wait_ready(live_server, merchant, f"/v1/videos/{created.json()['id']}", timeout=300)
    finally:
        stop_process(worker)
    assert video["published"]
    minted = mint(live_server, merchant, video["id"], host_site.origin)
    host_site.pages["video.html"] = host_page(minted)
    page.goto(host_site.url("video.html"))
    page.wait_for_selector("media-viewer[data-rendered][data-mode=video]", timeout=30_000)
    source = page.locator("media-viewer").evaluate("(v) => v.shadowRoot.querySelector('video').currentSrc")
    assert source.endswith(("master.m3u8", "video.mp4"))
    page.locator("media-viewer").evaluate("(v) => { const m = v.shadowRoot.querySelector('video'); m.muted = true; "
                                          "m.currentTime = 2.5; }")
    page.wait_for_timeout(1000)
    frame = _pixels(page)
    shot(page, "video-frame")
    assert frame.std() > 10
    # hovering the seek bar shows a storyboard thumbnail
    bar = page.locator("media-viewer").evaluate("""(v) => { const r = v.shadowRoot.querySelector('.scrub')
        .getBoundingClientRect(); return [r.x + r.width * 0.7, r.y + r.height / 2]; }""")
    page.mouse.move(bar[0], bar[1])
    page.wait_for_timeout(800)
    shown = page.locator("media-viewer").evaluate(
        "(v) => getComputedStyle(v.shadowRoot.querySelector('.thumb')).display")
    shot(page, "video-storyboard")
    assert shown == "block"
