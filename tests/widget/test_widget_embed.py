"""The widget in a real browser on a merchant's page (another origin): renders, keeps styles apart,
reports events, refuses foreign origins, and works as an iframe."""

from __future__ import annotations

import io
import time

import requests
from PIL import Image, ImageStat
from playwright.sync_api import Page

from tests.conftest import LiveServer, MerchantCredentials, media
from tests.widget.conftest import HostSite, shot

HOST_CSS = """<style>
  button, img, div { background: rgb(255, 0, 0) !important; border: 7px solid rgb(0, 255, 0) !important; }
  p.probe { color: rgb(1, 2, 3); font-family: serif; }
  media-viewer { width: 640px; height: 400px; }
</style>"""


def upload(server: LiveServer, who: MerchantCredentials, relative: str) -> dict:
    path = media(relative)
    with path.open("rb") as handle:
        response = requests.post(f"{server.url}/v1/assets", headers=who.headers, files={"file": (path.name, handle)},
                                 timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def mint(server: LiveServer, who: MerchantCredentials, target_id: str, origin: str) -> dict:
    response = requests.post(f"{server.url}/v1/embed-tokens", headers=who.headers, timeout=10,
                             json={"target_id": target_id, "origins": [origin]})
    assert response.status_code == 201, response.text
    return response.json()


def host_page(minted: dict, extra: str = "") -> str:
    return (f"<!doctype html><html><head>{HOST_CSS}</head><body><p class='probe'>Merchant text</p>"
            f"<button id='host-button'>Host button</button>{minted['html']}{extra}</body></html>")


def widget_pixels(page: Page, selector: str = "media-viewer") -> ImageStat.Stat:
    image = Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("L")
    return ImageStat.Stat(image)


def test_image_embed_renders_without_touching_host_styles(page: Page, live_server: LiveServer, host_site: HostSite,
                                                         merchant: MerchantCredentials) -> None:
    asset = upload(live_server, merchant, "panorama/hill/1.JPG")
    minted = mint(live_server, merchant, asset["id"], host_site.origin)
    host_site.pages["product.html"] = host_page(minted)
    page.goto(host_site.url("product.html"))
    page.wait_for_selector("media-viewer[data-rendered]", timeout=15_000)
    shot(page, "image-embed")
    assert widget_pixels(page).stddev[0] > 10, "the widget area is blank"
    # host styles do not reach inside, widget styles do not leak out
    inside = page.evaluate("""() => {
        const root = document.querySelector('media-viewer').shadowRoot;
        return getComputedStyle(root.querySelector('.stage')).backgroundColor; }""")
    assert inside != "rgb(255, 0, 0)"
    assert page.evaluate("getComputedStyle(document.querySelector('p.probe')).color") == "rgb(1, 2, 3)"
    assert page.evaluate("getComputedStyle(document.querySelector('#host-button')).borderTopWidth") == "7px"
    # the view was reported
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        stats = requests.get(f"{live_server.url}/v1/embed-stats/{asset['id']}", headers=merchant.headers,
                             timeout=10).json()
        if stats["counts"].get("view"):
            break
        time.sleep(0.5)
    assert stats["counts"].get("view") == 1


def test_token_for_another_origin_is_refused_in_the_browser(page: Page, live_server: LiveServer,
                                                            host_site: HostSite,
                                                            merchant: MerchantCredentials) -> None:
    asset = upload(live_server, merchant, "panorama/hill/2.JPG")
    minted = mint(live_server, merchant, asset["id"], "https://shop.example")
    host_site.pages["stolen.html"] = host_page(minted)
    page.goto(host_site.url("stolen.html"))
    page.wait_for_selector("media-viewer[data-error]", timeout=15_000)
    shot(page, "foreign-origin-refused")
    assert page.locator("media-viewer").get_attribute("data-rendered") is None


def test_iframe_embed_is_framed_only_by_allowed_origins(page: Page, live_server: LiveServer, host_site: HostSite,
                                                        merchant: MerchantCredentials) -> None:
    asset = upload(live_server, merchant, "panorama/hill/3.JPG")
    allowed = mint(live_server, merchant, asset["id"], host_site.origin)
    other = mint(live_server, merchant, asset["id"], "https://shop.example")
    frame = "<iframe id='f' src='{}' width='640' height='400' style='border:0'></iframe>"
    listener = ("<script>window.messages = []; window.addEventListener('message', "
                "(e) => window.messages.push({origin: e.origin, type: e.data && e.data.type}));</script>")
    host_site.pages["iframe.html"] = host_page({"html": listener + frame.format(allowed["iframe_url"])})
    host_site.pages["blocked.html"] = host_page({"html": frame.format(other["iframe_url"])})
    page.goto(host_site.url("iframe.html"))
    inner = page.frame_locator("#f")
    inner.locator("media-viewer[data-rendered]").wait_for(timeout=15_000)
    shot(page, "iframe-embed")
    # the framed widget told its parent, and only from the service's own origin
    page.wait_for_function("() => window.messages.length > 0", timeout=5_000)
    assert page.evaluate("() => window.messages") == [{"origin": live_server.url, "type": "media-viewer:rendered"}]
    page.goto(host_site.url("blocked.html"))
    page.wait_for_timeout(2000)
    child = page.frames[1] if len(page.frames) > 1 else None
    # frame-ancestors refused the page: no widget ever ran inside the frame
    assert child is None or child.evaluate("() => !!document.querySelector('media-viewer[data-rendered]')") is False
