"""A shopper taps a product in a video inside the widget: the product card appears with the right SKU and
"Add to cart" fires the DOM event the merchant's page listens to. Real browser, service, worker and index."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from playwright.sync_api import Page

from tests.conftest import LiveServer, MerchantCredentials, start_worker, stop_process, wait_for_job
from tests.support.products.semireal import render_clip, truths_at
from tests.support.products.shop import CLIP_FPS, SHOP_CLIP, add_catalog
from tests.support.products.shop import upload as upload_with_client
from tests.widget.conftest import HostSite, shot
from tests.widget.test_widget_embed import host_page, mint

LISTENER = ("<script>document.addEventListener('media-viewer:add-to-cart', "
            "(e) => { window.added = e.detail; });</script>")


def test_tap_on_a_product_shows_its_card_and_adds_it_to_the_cart(app: Flask, page: Page, live_server: LiveServer,
                                                                  host_site: HostSite, data_dir: Path,
                                                                  merchant: MerchantCredentials,
                                                                  tmp_path: Path) -> None:
    client = app.test_client()
    products = add_catalog(client, merchant)
    background, start, placements = SHOP_CLIP
    clip = tmp_path / "shop.mp4"
    truths = render_clip(background, clip, placements, seconds=2.5, fps=CLIP_FPS, start=start)
    video = upload_with_client(client, merchant, clip)
    worker = start_worker(data_dir)
    try:
        started = client.post(f"/v1/videos/{video['id']}/index", headers=merchant.headers, json={})
        assert started.status_code == 202, started.json
        assert wait_for_job(app, started.json["job"]["id"], timeout=180).state == "succeeded"
    finally:
        stop_process(worker)

    minted = mint(live_server, merchant, video["id"], host_site.origin)
    host_site.pages["shop.html"] = host_page(minted, LISTENER)
    page.goto(host_site.url("shop.html"))
    page.wait_for_selector("media-viewer[data-rendered][data-mode=video]", timeout=30_000)
    t = 1.0
    truth = truths_at(truths, t, CLIP_FPS)[0]
    page.locator("media-viewer").evaluate(f"""async (v) => {{ const m = v.shadowRoot.querySelector('video');
        m.muted = true; m.pause(); m.currentTime = {t};
        await new Promise((r) => m.addEventListener('seeked', r, {{ once: true }})); }}""")
    # where the product's centre is on screen (the video is letterboxed inside the element)
    cx, cy = (truth.box[0] + truth.box[2]) / 2, (truth.box[1] + truth.box[3]) / 2
    x, y = page.locator("media-viewer").evaluate(f"""(v) => {{ const m = v.shadowRoot.querySelector('video');
        const b = m.getBoundingClientRect(); const s = Math.min(b.width / m.videoWidth, b.height / m.videoHeight);
        const ox = (b.width - m.videoWidth * s) / 2, oy = (b.height - m.videoHeight * s) / 2;
        return [b.left + ox + {cx} * s, b.top + oy + {cy} * s]; }}""")
    page.mouse.click(x, y)
    card = page.locator("media-viewer .card")
    card.wait_for(timeout=15_000)
    shot(page, "tap-product-card")
    expected = products[truth.sku]
    assert card.locator("h3").inner_text() == expected["title"]
    card.locator("button.add").click()
    added = page.evaluate("() => window.added")
    assert added["sku"] == truth.sku and added["price"] == expected["price"]
