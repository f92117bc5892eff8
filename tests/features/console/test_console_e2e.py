"""The console end to end in a real Chromium, against the real service (gunicorn) and a real worker.

One merchant's day: sign in, upload shared photos through a proxy that cuts the connection mid-upload
(tus resumes), stitch a panorama and place a hotspot the widget shows, approve a buyer show with one key
and fetch its public URL, correct a track's SKU, paste an embed snippet into a page on another origin and
see it render. Forged cross-site requests and another merchant's user are refused. Screenshots of every
page go to ``test-artifacts/console/``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, expect

from media_service.features.console.service import create_user
from tests.conftest import (
    REPO,
    LiveServer,
    MerchantCredentials,
    free_port,
    media,
    service_env,
    start_worker,
    stop_process,
)
from tests.features.console.conftest import PASSWORD
from tests.support.browser import HostSite
from tests.support.cutting_proxy import CuttingProxy
from tests.support.products.shop import add_catalog

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
ARTIFACTS = REPO / "test-artifacts" / "console"
PHOTOS = [media(f"panorama/hill/{n}.JPG") for n in (1, 2, 3)]


def shot(page: Page, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


@pytest.fixture
def server(app: Flask, data_dir: Path) -> Iterator[LiveServer]:
    """The service with small upload blocks, so a cut upload keeps what arrived (the client resumes there)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "media_service", "serve", "--port", str(port), "--no-worker", "--processes", "2"],
        env=service_env(data_dir, UPLOAD_CHUNK_BYTES=16384), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url + "/v1/health", timeout=1).status_code in (200, 503):
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, "the service did not start"
        time.sleep(0.2)
    worker = start_worker(data_dir)
    yield LiveServer(url, process, data_dir)
    stop_process(worker)
    stop_process(process)


def user(app: Flask, merchant: MerchantCredentials, email: str, role: str = "owner") -> str:
    with app.extensions["database"].session() as session:
        create_user(session, merchant.merchant_id, email, role, password=PASSWORD)
    return email


def sign_in(page: Page, base: str, email: str, screenshot: str | None = None) -> None:
    page.goto(f"{base}/console/library")
    assert "/console/sign-in" in page.url
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    if screenshot:
        shot(page, screenshot)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console/library")


def wait_for(condition: Any, what: str, timeout: float = 180, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what} did not happen in {timeout} s")


def api(server: LiveServer, who: MerchantCredentials, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, server.url + path, headers={**who.headers, **kwargs.pop("headers", {})},
                            timeout=30, **kwargs)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


def test_a_merchants_day_in_the_console(app: Flask, server: LiveServer, merchant: MerchantCredentials,
                                        other_merchant: MerchantCredentials, context: BrowserContext,
                                        browser: Browser, host_site: HostSite,
                                        shop_clip: Any) -> None:
    owner = user(app, merchant, "owner@shop-a.example")
    port = int(server.url.rsplit(":", 1)[1])
    budget = {"bytes": 40_000}  # client bytes a connection may carry before it is cut, until the first cut
    proxy = CuttingProxy(port, cut_after=lambda: budget["bytes"] if proxy.cuts == 0 else None)
    base = f"http://127.0.0.1:{proxy.port}"
    page = context.new_page()
    try:
        # --- sign in, then upload three photos while a connection is cut mid-file
        sign_in(page, base, owner, screenshot="sign-in")
        page.set_input_files("#files", [str(p) for p in PHOTOS])
        # (the console's CSP forbids eval, so the test waits with locators, not with page functions)
        expect(page.locator("#uploads li[data-state]")).to_have_count(3, timeout=120_000)
        rows = page.locator("#uploads li")
        states = [rows.nth(i).get_attribute("data-state") for i in range(3)]
        assert states == ["done"] * 3, page.inner_text("#uploads")
        assert proxy.cuts >= 1, "the proxy never cut an upload"
        assert page.locator("#uploads li[data-resumed]").count() >= 1, "no upload had to resume"
        asset_ids = [rows.nth(i).get_attribute("data-asset-id") for i in range(3)]
        for path, asset_id in zip(PHOTOS, asset_ids, strict=True):
            stored = api(server, merchant, "GET", f"/v1/assets/{asset_id}").json()
            assert stored["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and stored["filename"] == path.name
        shot(page, "library-uploading")

        def thumbnails_ready() -> bool:
            page.goto(f"{base}/console/library")
            return page.locator(".card .state-ready").count() == 3

        wait_for(thumbnails_ready, "three thumbnails", timeout=120, every=2)
        shot(page, "library")

        # --- a panorama from the three photos, then a hotspot placed by clicking on it
        page.goto(f"{base}/console/studio")
        for asset_id in asset_ids:
            page.check(f'input[name=asset_id][value="{asset_id}"]')
        page.click("button[value=panorama]")
        page.wait_for_url(f"{base}/console/panoramas/*")
        panorama_url = page.url
        panorama_id = panorama_url.rsplit("/", 1)[1]

        def panorama_ready() -> bool:
            page.goto(panorama_url)
            return page.locator("h1 .state-ready").count() == 1

        wait_for(panorama_ready, "the panorama", timeout=240, every=2)
        page.wait_for_selector("media-viewer[data-rendered][data-mode=panorama]", timeout=30_000)
        assert page.locator(".diagnostics li").count() == 3
        box = page.locator("#pano-pick img").bounding_box()
        assert box is not None
        page.click("#pano-pick img", position={"x": box["width"] * 0.55, "y": box["height"] * 0.5})
        assert page.input_value("#hs-yaw") != ""
        page.fill("#hs-label", "Summit")
        page.click("#hotspot-form button[type=submit]")
        page.wait_for_selector("text=Hotspot “Summit” placed.")
        page.wait_for_selector("media-viewer[data-rendered][data-mode=panorama]", timeout=30_000)
        page.locator('media-viewer .spot[aria-label="Summit"]').wait_for(state="attached", timeout=15_000)
        stored = api(server, merchant, "GET", f"/v1/panoramas/{panorama_id}").json()
        assert [spot["label"] for spot in stored["hotspots"]] == ["Summit"]
        assert 0 < stored["hotspots"][0]["yaw"] < stored["field_of_view"]["horizontal"] / 2
        page.wait_for_timeout(500)
        shot(page, "panorama")

        # --- a buyer show with its order and SKU: approved with one key, its public URL works
        add_catalog(app.test_client(), merchant, {"TOTE-RED": ("solidus_canvas_tote.png",),
                                                  "CAP-BLACK": ("solidus_cap_black_1.png", "solidus_cap_black_2.png"),
                                                  "CAP-RED": ("solidus_cap_red_1.png",)})
        token = api(server, merchant, "POST", "/v1/upload-tokens", json={"order_id": "ORD-1001",
                                                                        "sku": "CAP-BLACK"}).json()["token"]
        with shop_clip.path.open("rb") as handle:
            clip = requests.post(server.url + "/v1/assets", headers={"Authorization": f"Bearer {token}"},
                                 files={"file": ("buyer.mp4", handle)}, timeout=60)
        assert clip.status_code == 201, clip.text
        clip_id = clip.json()["id"]

        def video_ready() -> dict[str, Any] | None:
            items = api(server, merchant, "GET", "/v1/videos?profile=buyer_show").json()["items"]
            return items[0] if items and items[0]["state"] == "ready" else None

        video = wait_for(video_ready, "the buyer show", timeout=300, every=2)
        assert video["moderation"]["status"] == "pending"
        page.goto(f"{base}/console/reviews")
        item = page.locator(f'.review[data-video-id="{video["id"]}"]')
        assert "ORD-1001" in item.inner_text() and "CAP-BLACK" in item.inner_text()
        shot(page, "reviews")
        item.focus()
        page.keyboard.press("a")
        page.wait_for_selector("text=Approved 1 video.")
        assert api(server, merchant, "GET", f"/v1/videos/{video['id']}").json()["moderation"]["status"] == "approved"
        page.goto(f"{base}/console/reviews/{video['id']}")
        public = page.input_value("#public-mp4")
        answer = requests.get(public, timeout=30)
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "video/mp4"
        assert len(answer.content) > 1000
        shot(page, "review-approved")
        page.goto(f"{base}/console/reviews")
        page.check("input[name=buyer_show_auto_approve][value=if_clean]")
        page.click(".policy button[type=submit]")
        page.wait_for_selector("text=Auto-approval is now: if clean.")
        assert api(server, merchant, "GET", "/v1/video-policy").json()["buyer_show_auto_approve"] == "if_clean"

        # --- products found in the video: correct a track's SKU
        page.goto(f"{base}/console/videos/{clip_id}")
        page.click("text=Find the catalog's products in this video")
        page.wait_for_selector("text=Finding products in this video")

        def tracks_shown() -> bool:
            page.goto(f"{base}/console/videos/{clip_id}")
            return page.locator(".tracks > li").count() >= 1

        wait_for(tracks_shown, "the video's tracks", timeout=240, every=2)
        track = page.locator(".tracks > li").first
        track_id = track.get_attribute("id")
        detected = track.locator("code.sku").inner_text()
        correction = "CAP-RED" if detected != "CAP-RED" else "TOTE-RED"
        track.locator("select").select_option(correction)
        track.locator("button[value=correct]").click()
        page.wait_for_selector(f"text=set to {correction}")
        assert page.locator(f'[id="{track_id}"] code.sku').inner_text() == correction
        stored = api(server, merchant, "GET", f"/v1/videos/{clip_id}/tracks/{track_id}").json()
        assert stored["state"] == "confirmed" and stored["sku"] == correction and stored["detected_sku"] == detected
        shot(page, "video-tracks")

        # --- embed: allow the shop's site, copy the snippet into its page, see it render there
        page.goto(f"{base}/console/embed")
        page.fill("#origins", host_site.origin)
        page.click("text=Save sites")
        page.wait_for_selector("text=1 allowed origin saved.")
        page.goto(f"{base}/console/embed/{panorama_id}")
        page.wait_for_selector("media-viewer[data-rendered]", timeout=30_000)
        snippet = page.input_value("#snippet-element")
        assert "<media-viewer src=" in snippet and "oembed" in page.input_value("#snippet-oembed")
        shot(page, "embed")
        host_site.pages["product.html"] = f"<!doctype html><html><body><h1>Our hill</h1>{snippet}</body></html>"
        shop_page = browser.new_page(viewport={"width": 800, "height": 600})
        shop_page.goto(host_site.url("product.html"))
        shop_page.wait_for_selector("media-viewer[data-rendered][data-mode=panorama]", timeout=30_000)
        shop_page.locator('media-viewer .spot[aria-label="Summit"]').wait_for(state="attached", timeout=15_000)
        shop_page.wait_for_timeout(500)
        shot(shop_page, "embed-on-shop-page", full_page=False)
        shop_page.close()

        # --- a forged cross-site form is refused (same site, other origin: the cookie goes, the check stops it)
        host_site.pages["evil.html"] = (
            f'<!doctype html><form method="post" action="{base}/console/library/{asset_ids[0]}/delete">'
            '<input name="csrf_token" value="guess"></form><script>document.forms[0].submit()</script>')
        page.goto(host_site.url("evil.html"))
        page.wait_for_url(f"{base}/console/library/*/delete")
        page.wait_for_load_state()
        assert "must come from the console's own pages" in page.content()
        assert api(server, merchant, "GET", f"/v1/assets/{asset_ids[0]}").status_code == 200

        # --- insights and jobs
        page.goto(f"{base}/console/insights")
        assert page.locator(".chart svg").count() >= 3
        shot(page, "insights")
        page.goto(f"{base}/console/jobs")
        shot(page, "jobs")
        page.goto(f"{base}/console/catalog")
        shot(page, "catalog")
        page.goto(f"{base}/console/studio")
        shot(page, "studio")

        # --- another merchant's user sees none of it
        other = user(app, other_merchant, "owner@shop-b.example")
        other_context = browser.new_context(viewport={"width": 390, "height": 844})
        other_page = other_context.new_page()
        sign_in(other_page, server.url, other)
        assert other_page.locator(".card").count() == 0
        response = other_page.goto(f"{server.url}/console/panoramas/{panorama_id}")
        assert response is not None and response.status == 404
        assert "no panorama" in other_page.inner_text(".problem")
        shot(other_page, "other-merchant-refused")
        other_context.close()

        # --- on a phone
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        phone_page = phone.new_page()
        sign_in(phone_page, server.url, owner)
        shot(phone_page, "phone-library")
        phone_page.goto(f"{server.url}/console/reviews?status=approved")
        shot(phone_page, "phone-reviews")
        phone.close()
    finally:
        proxy.close()
