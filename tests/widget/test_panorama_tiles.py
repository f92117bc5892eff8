"""Panorama tile streaming in a real Chromium: the widget shows the preview first, then fetches only the tiles
of the level the screen needs that the view can see, nearest the centre first, never the whole image; it
fetches new tiles as the view moves (each tile once), gets sharper, and a tile that fails leaves the preview.

The panorama is stitched by the real service and a real worker from the shared ``berlin`` photos (3634 x 2537
px, 4 tile levels); the page is a 2x (retina) screen, so zooming in asks for the full-resolution level.
"""

from __future__ import annotations

import io
import math
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from flask import Flask
from PIL import Image
from playwright.sync_api import Browser, Page, Route

from tests.conftest import LiveServer, MerchantCredentials, start_worker, stop_process
from tests.widget.conftest import ARTIFACTS, HostSite
from tests.widget.test_widget_embed import host_page, mint, upload

TILE = re.compile(r"/tiles/(\d+)/(\d+)_(\d+)\.jpg")
SIZE = "<style>media-viewer { width: 800px; height: 500px; }</style>"
VIEWER = "media-viewer[data-rendered][data-mode=panorama]"


@pytest.fixture
def retina(browser: Browser) -> Iterator[Page]:
    """A 2x screen without the browser cache (a tile fetched twice shows in the log) and without autorotate."""
    context = browser.new_context(viewport={"width": 1000, "height": 700}, device_scale_factor=2,
                                  reduced_motion="reduce")
    page = context.new_page()
    context.new_cdp_session(page).send("Network.setCacheDisabled", {"cacheDisabled": True})
    yield page
    context.close()


def _berlin(server: LiveServer, who: MerchantCredentials, data_dir: Path) -> dict:
    ids = [upload(server, who, f"panorama/berlin/0{n}.jpg")["id"] for n in (1, 2, 3)]
    # spherical: under "auto" this near-duplicate set is (rightly) stitched flat and would embed as an image
    created = requests.post(f"{server.url}/v1/panoramas", headers=who.headers,
                            json={"asset_ids": ids, "options": {"projection": "spherical"}}, timeout=30)
    assert created.status_code == 202, created.text
    worker = start_worker(data_dir)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            body = requests.get(f"{server.url}/v1/panoramas/{created.json()['id']}", headers=who.headers,
                                timeout=10).json()
            if body["state"] not in {"queued", "processing"}:
                assert body["state"] == "ready", body
                return body
            time.sleep(0.5)
    finally:
        stop_process(worker)
    raise AssertionError("the berlin panorama was not ready in 120 s")


class Network:
    """What the page requested: tiles as (level, column, row), and every URL."""

    def __init__(self, page: Page) -> None:
        self.urls: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def tiles(self) -> list[tuple[int, int, int]]:
        return [tuple(map(int, match.groups())) for url in self.urls if (match := TILE.search(url))]

    def fetched(self, name: str) -> bool:
        return any(f"/{name}?" in url for url in self.urls)


def _view(page: Page) -> dict:
    return page.locator("media-viewer").evaluate("""(v) => ({ yaw: v.mode.yaw, pitch: v.mode.pitch,
        fov: v.mode.fov, width: v.mode.canvas.width, height: v.mode.canvas.height })""")


def _zoom_in(page: Page) -> None:
    # all the wheel steps in one task, so the widget sees only the final zoom (no tiles of levels in between)
    page.locator("media-viewer").evaluate("""(v) => { const c = v.shadowRoot.querySelector('canvas');
        for (let i = 0; i < 12; i++) c.dispatchEvent(new WheelEvent('wheel', { deltaY: -100, cancelable: true })); }""")


def _settle(page: Page) -> None:
    # the widget re-plans at most every 120 ms; then wait until every tile the view wants has arrived (or failed)
    page.wait_for_timeout(400)
    page.wait_for_selector("media-viewer[data-sharp]", timeout=20_000)
    page.wait_for_timeout(200)


def _pixels(page: Page, name: str) -> np.ndarray:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    data = page.locator("media-viewer").screenshot(path=str(ARTIFACTS / f"{name}.png"))
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), np.float32)


def _sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian: high-frequency energy, higher for a sharper picture."""
    lap = 4 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:]
    return float(lap.var())


def _expected_level(levels: list[dict], preview_width: int, hfov: float, view: dict) -> int | None:
    """The coarsest level at least as sharp as the screen at the view's centre; None while the preview is enough."""
    need = view["height"] / (2 * math.tan(view["fov"] / 2))
    usable = sorted((lvl for lvl in levels if lvl["width"] > preview_width), key=lambda lvl: lvl["width"])
    if need <= preview_width / hfov:
        return None
    return next((lvl["level"] for lvl in usable if lvl["width"] / hfov >= need), usable[-1]["level"])


def _on_screen(spec: dict, view: dict, u: float, v: float) -> tuple[int, int]:
    """Canvas pixel where image point (u, v) appears (the inverse of the widget's shader)."""
    hfov, vfov, voff = (math.radians(spec[k]) for k in ("hfov", "vfov", "v_offset"))
    lon, lat = (u - 0.5) * hfov - view["yaw"], voff + (0.5 - v) * vfov
    x, y, z = math.cos(lat) * math.sin(lon), math.sin(lat), -math.cos(lat) * math.cos(lon)
    cp, sp = math.cos(-view["pitch"]), math.sin(-view["pitch"])
    y, z = y * cp - z * sp, y * sp + z * cp
    f, aspect = math.tan(view["fov"] / 2), view["width"] / view["height"]
    sx, sy = x / (-z * f * aspect), y / (-z * f)
    return round((sx + 1) / 2 * view["width"]), round((1 - sy) / 2 * view["height"])


def test_panorama_streams_visible_tiles_of_the_screens_level(app: Flask, retina: Page, live_server: LiveServer,
                                                              host_site: HostSite, data_dir: Path,
                                                              merchant: MerchantCredentials) -> None:
    """Preview alone (every tile 404) as the baseline; then a narrow view fetches a few full-resolution tiles
    (one of them failing), gets sharper except where that tile is, and a drag fetches only new tiles."""
    page = retina
    panorama = _berlin(live_server, merchant, data_dir)
    minted = mint(live_server, merchant, panorama["id"], host_site.origin)
    spec = requests.get(minted["manifest_url"], headers={"Origin": host_site.origin}, timeout=10).json()["panorama"]
    levels = spec["tiles"]["levels"]
    assert len(levels) >= 3, levels
    preview_width = Image.open(io.BytesIO(requests.get(spec["preview"], timeout=10).content)).width
    hfov = math.radians(spec["hfov"])
    host_site.pages["tiles.html"] = host_page(minted, SIZE)
    tile_size = spec["tiles"]["tile_size"]
    centre = (int(0.5 * levels[0]["width"] / tile_size), int(0.5 * levels[0]["height"] / tile_size))
    failing = (0, centre[0] - 1, centre[1])  # a full-resolution tile left of the centre, in its row

    # 1. every tile answers 404: the preview alone, never blank, no page error, no tile retried
    network = Network(page)
    page.route(lambda url: TILE.search(url) is not None, lambda route: route.fulfill(status=404, body="gone"))
    page.goto(host_site.url("tiles.html"))
    page.wait_for_selector(VIEWER, timeout=20_000)
    _zoom_in(page)
    _settle(page)
    preview_only = _pixels(page, "panorama-tiles-all-404")
    assert preview_only.std() > 10, "blank panorama when tiles fail"
    assert network.tiles(), "no tile was even asked for at a zoomed-in view"
    assert max(Counter(network.tiles()).values()) == 1, "a failed tile was fetched again"
    assert not network.errors, network.errors
    page.unroute_all()

    # 2. tiles work (except one): the narrow view asks only for some tiles of the level matching the screen
    network = Network(page)
    page.route(lambda url: f"/tiles/{failing[0]}/{failing[1]}_{failing[2]}.jpg" in url,
               lambda route: route.fulfill(status=404, body="gone"))
    page.goto(host_site.url("tiles.html"))
    page.wait_for_selector(VIEWER, timeout=20_000)
    _settle(page)
    view = _view(page)
    assert _expected_level(levels, preview_width, hfov, view) is None  # the whole partial view: preview enough
    assert network.tiles() == [], "tiles fetched although the preview is as sharp as the screen"
    _zoom_in(page)
    _settle(page)
    view = _view(page)
    expected = _expected_level(levels, preview_width, hfov, view)
    assert expected == 0, view  # 2x screen, narrowest view: only the full resolution is enough
    first = network.tiles()
    top = next(lvl for lvl in levels if lvl["level"] == expected)
    assert first and {level for level, _, _ in first} == {expected}, first
    assert len(set(first)) < top["columns"] * top["rows"], "every tile of the level was fetched for a narrow view"
    assert (expected, *centre) in first[:4], f"the centre tile {centre} was not among the first fetched: {first}"
    assert failing in first
    assert not network.fetched("panorama.jpg"), "the whole image was downloaded although tiles exist"
    sharp = _pixels(page, "panorama-tiles-zoomed")
    assert sharp.std() > 10
    # sharper than the preview alone, where tiles arrived; where the failed tile is, the preview shows
    h, w = sharp.shape
    assert _sharpness(sharp[h // 2:]) > 1.3 * _sharpness(preview_only[h // 2:]), (
        _sharpness(sharp[h // 2:]), _sharpness(preview_only[h // 2:]))
    scale = h / view["height"]  # screenshot pixels per canvas pixel

    def crop(gray: np.ndarray, column: int, row: int) -> np.ndarray:
        u, v = (column + 0.5) * tile_size / top["width"], (row + 0.5) * tile_size / top["height"]
        x, y = (round(p * scale) for p in _on_screen(spec, view, u, v))
        assert 60 <= x < w - 60 and 60 <= y < h - 60, (column, row, x, y)
        return gray[y - 60:y + 60, x - 60:x + 60]

    gain = {name: _sharpness(crop(sharp, *tile)) / _sharpness(crop(preview_only, *tile))
            for name, tile in (("centre", centre), ("failed", failing[1:]))}
    assert gain["centre"] > 1.3 and 0.95 < gain["failed"] < 1.05, gain
    assert np.abs(crop(sharp, *failing[1:]) - crop(preview_only, *failing[1:])).mean() < 1, "not the preview"

    # 3. a drag to another direction fetches the newly visible tiles, none of them twice
    box = page.locator("media-viewer").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x - 35 * step, y + 25 * step)
    page.mouse.up()
    page.wait_for_timeout(800)  # inertia
    _settle(page)
    dragged = _pixels(page, "panorama-tiles-dragged")
    assert dragged.std() > 10
    after = network.tiles()
    assert set(after) - set(first), "no new tile after the view moved"
    assert max(Counter(after).values()) == 1, Counter(after).most_common(3)
    assert {level for level, _, _ in after} == {_expected_level(levels, preview_width, hfov, _view(page))}
    assert not network.fetched("panorama.jpg")
    assert not network.errors, network.errors


SMALL_GPU = """() => {  // a phone GPU: the largest texture is 2048 px (the whole full-resolution level is not)
  const real = WebGLRenderingContext.prototype.getParameter;
  WebGLRenderingContext.prototype.getParameter = function (name) {
    return name === this.MAX_TEXTURE_SIZE ? 2048 : real.call(this, name);
  };
}"""


def test_panorama_tiles_fit_a_small_gpu_texture_limit(app: Flask, retina: Page, live_server: LiveServer,
                                                      host_site: HostSite, data_dir: Path,
                                                      merchant: MerchantCredentials) -> None:
    """The full-resolution level (3634 px) exceeds the texture limit: it is held as a window of tiles around the
    view that moves with it, refilled from tiles already fetched (none fetched twice), and stays sharp."""
    page = retina
    panorama = _berlin(live_server, merchant, data_dir)
    minted = mint(live_server, merchant, panorama["id"], host_site.origin)
    page.add_init_script(f"({SMALL_GPU})()")
    # a tall element: at the narrowest view the visible full-resolution tiles (3 x 4) fit in 2048 px (4 x 4)
    host_site.pages["phone.html"] = host_page(minted, "<style>media-viewer { width: 300px; height: 600px; }</style>")

    def look_right_edge(network: Network, name: str) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
        """Zoom in to the narrowest view, then look as far right as the partial panorama goes: the picture
        and the tiles fetched after zooming in."""
        page.goto(host_site.url("phone.html"))
        page.wait_for_selector(VIEWER, timeout=20_000)
        _settle(page)
        before = len(network.tiles())  # the whole height at 2x needs the 1817 px level (it fits: 4 x 3 tiles)
        _zoom_in(page)
        _settle(page)
        page.locator("media-viewer").evaluate("(v) => v.shadowRoot.querySelector('.stage').focus()")
        for _ in range(30):
            page.keyboard.press("ArrowRight")
        _settle(page)
        return _pixels(page, name), network.tiles()[before:]

    network = Network(page)
    page.route(lambda url: TILE.search(url) is not None, lambda route: route.fulfill(status=404, body="gone"))
    preview_only, _ = look_right_edge(network, "panorama-small-gpu-all-404")
    assert not network.errors, network.errors
    page.unroute_all()
    network = Network(page)
    sharp, zoomed = look_right_edge(network, "panorama-small-gpu")
    tiles = network.tiles()
    assert max(Counter(tiles).values()) == 1, Counter(tiles).most_common(3)
    assert zoomed and {level for level, _, _ in zoomed} == {0}, zoomed
    assert {column for _, column, _ in zoomed} >= {2, 3, 6, 7}, f"the window did not follow the view: {zoomed}"
    assert not network.fetched("panorama.jpg")
    assert not network.errors, network.errors
    assert sharp.std() > 10
    assert _sharpness(sharp) > 1.3 * _sharpness(preview_only), (_sharpness(sharp), _sharpness(preview_only))


def test_full_sphere_streams_tiles_on_both_sides_of_its_seam(app: Flask, retina: Page, live_server: LiveServer,
                                                             host_site: HostSite, data_dir: Path,
                                                             merchant: MerchantCredentials) -> None:
    """Looking at the seam of a full 360-degree panorama fetches the tiles of its last and first columns.

    No shared photo set covers a full sphere, so the manifest of the stitched berlin panorama is rewritten in
    the browser (route interception) to say it covers 360 x 180 degrees, looking at yaw 180 (the seam)."""
    page = retina
    panorama = _berlin(live_server, merchant, data_dir)
    minted = mint(live_server, merchant, panorama["id"], host_site.origin)

    def as_full_sphere(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["panorama"].update(hfov=360, vfov=180, v_offset=0, full_360=True, initial_yaw=180)
        route.fulfill(response=response, json=body)

    page.route(lambda url: "/v1/embed/" in url and not url.endswith("/events"), as_full_sphere)
    host_site.pages["sphere.html"] = host_page(minted, SIZE)
    network = Network(page)
    page.goto(host_site.url("sphere.html"))
    page.wait_for_selector(VIEWER, timeout=20_000)
    _zoom_in(page)
    _settle(page)
    picture = _pixels(page, "panorama-tiles-seam")
    tiles = network.tiles()
    level = max(tiles)[0]
    columns = next(lvl["columns"] for lvl in panorama["viewer"]["tiles"]["levels"] if lvl["level"] == level)
    assert {column for _, column, _ in tiles} >= {0, columns - 1}, tiles
    assert max(Counter(tiles).values()) == 1
    assert picture.std() > 10
    assert not network.errors, network.errors
