"""Time to first rendered frame and bytes on the wire: the widget against a bare <img> of the same media.

Starts the real service and a worker on 127.0.0.1, stitches a panorama (shared ``hill`` photos) and
builds a spin (13 ``civic_52`` frames), then loads, in headless Chromium with a fresh profile each time:

* the widget (``<script type="module">`` + ``<media-viewer>``) on a merchant page on another origin,
  timed from navigation start to the element's ``media-viewer:rendered`` event (first frame drawn);
* the same page with a bare ``<img>`` of the same picture (panorama preview; first spin frame), timed to
  the image's ``load`` event.

Prints medians over ``--runs`` loads, the ratio widget / bare image, the bytes transferred (CDP
``encodedDataLength``) and the widget's own size gzipped.

Then tile streaming, on a large panorama stitched from the shared ``berlin`` photos (3634 x 2537 px, a
tile pyramid): for a phone (390 px wide at 3x), a retina laptop embed (960 x 600 at 2x) and the same zoomed
in to the narrowest view, the bytes the page downloaded in its first 3 seconds with tiles, against the
full image's size and against the same page whose manifest has its tiles taken out (the widget then loads
preview + full image, as before tiles), and the time from navigation until the view is sharp (the
element's ``data-sharp``: every tile the view needs has arrived; without tiles, the full image has).

    .venv/bin/python bench/widget_first_frame.py --runs 7
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MEDIA_SERVICE_TEST_MEDIA", REPO.parent / "shared" / "media"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(base: str, headers: dict[str, str], path: str) -> dict:
    for _ in range(600):
        body = requests.get(base + path, headers=headers, timeout=10).json()
        if body["state"] == "ready":
            return body
        if body["state"] in {"failed", "cancelled"}:
            raise RuntimeError(body)
        time.sleep(0.5)
    raise RuntimeError(f"{path} not ready")


def upload(base: str, headers: dict[str, str], path: Path) -> str:
    with path.open("rb") as handle:
        return requests.post(base + "/v1/assets", headers=headers, files={"file": (path.name, handle)},
                             timeout=60).json()["id"]


def measure(browser, url: str, ready_js: str, runs: int) -> tuple[float, int]:
    times, sizes = [], []
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 800, "height": 600})
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        finished: list[float] = []
        cdp.on("Network.loadingFinished", lambda event, sink=finished: sink.append(event["encodedDataLength"]))
        page.goto(url)
        elapsed = page.evaluate(ready_js)
        page.wait_for_timeout(200)  # let the last loadingFinished events arrive
        times.append(elapsed)
        sizes.append(int(sum(finished)))
        context.close()
    return statistics.median(times), int(statistics.median(sizes))


WIDGET_READY = """() => new Promise((resolve) => {
  const v = document.querySelector('media-viewer');
  const done = () => resolve(performance.now());
  if (v && v.hasAttribute('data-rendered')) return done();
  document.addEventListener('media-viewer:rendered', () => requestAnimationFrame(done), { once: true });
})"""
IMG_READY = """() => new Promise((resolve) => {
  const img = document.querySelector('img');
  const done = () => requestAnimationFrame(() => resolve(performance.now()));
  if (img.complete && img.naturalWidth) return done();
  img.addEventListener('load', done, { once: true });
})"""


TILE_SCENARIOS = {  # name: viewport, device pixel ratio, element CSS, zoom in to the narrowest view
    "phone 390x244 @3x": ({"width": 390, "height": 844}, 3, "width: 390px; height: 244px;", False),
    "laptop 960x600 @2x": ({"width": 1000, "height": 700}, 2, "width: 960px; height: 600px;", False),
    "laptop @2x zoomed in": ({"width": 1000, "height": 700}, 2, "width: 960px; height: 600px;", True),
}
# records when the element becomes sharp (last time) and, for the zoomed scenario, zooms in at the first frame
WATCH_SHARP = """(zoom) => {
  window.sharpAt = null;
  new MutationObserver(() => {
    const v = document.querySelector('media-viewer');
    if (v && v.hasAttribute('data-sharp')) { if (window.sharpAt === null) window.sharpAt = performance.now(); }
    else window.sharpAt = null;
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-sharp'] });
  if (zoom) document.addEventListener('media-viewer:rendered', (e) => {
    const c = e.target.shadowRoot.querySelector('canvas');
    for (let i = 0; i < 12; i++) c.dispatchEvent(new WheelEvent('wheel', { deltaY: -100, cancelable: true }));
  });
}"""


def without_tiles(route) -> None:
    """Serve the embed manifest with its tiles taken out: the widget's behaviour before tile streaming."""
    response = route.fetch()
    body = response.json()
    body.get("panorama", {}).pop("tiles", None)
    route.fulfill(response=response, json=body)


NETWORKS = {  # name: CDP network conditions (None: 127.0.0.1 as it is)
    "127.0.0.1": None,
    "4G 9 Mbit/s 60 ms": {"offline": False, "latency": 60, "downloadThroughput": 9e6 / 8,
                          "uploadThroughput": 1.5e6 / 8},
}


def measure_tiles(browser, url: str, scenario: tuple, network: dict | None, tiled: bool,
                  runs: int) -> tuple[int, float, int]:
    """Median bytes finished in the first 3 s after navigation, ms until the view is sharp, tiles requested."""
    viewport, ratio, _, zoom = scenario
    sizes, sharp, tiles = [], [], []
    for _ in range(runs):
        context = browser.new_context(viewport=viewport, device_scale_factor=ratio)
        context.add_init_script(f"({WATCH_SHARP})({'true' if zoom else 'false'})")
        page = context.new_page()
        if not tiled:
            page.route(lambda u: "/v1/embed/" in u and not u.endswith("/events"), without_tiles)
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        if network:
            cdp.send("Network.emulateNetworkConditions", network)
        started: list[float] = []
        finished: list[tuple[float, float]] = []
        requested: list[str] = []
        cdp.on("Network.requestWillBeSent", lambda e, s=started, r=requested: (s.append(e["timestamp"]),
                                                                                r.append(e["request"]["url"])))
        cdp.on("Network.loadingFinished", lambda e, sink=finished: sink.append((e["timestamp"],
                                                                                 e["encodedDataLength"])))
        page.goto(url)
        page.wait_for_timeout(3000)
        sizes.append(int(sum(size for t, size in finished if t - started[0] <= 3.0)))
        try:
            page.wait_for_function("() => window.sharpAt !== null", timeout=20_000)
            sharp.append(page.evaluate("() => window.sharpAt"))
        except PlaywrightTimeout:
            sharp.append(float("nan"))
        tiles.append(sum("/tiles/" in u for u in requested))
        context.close()
    return int(statistics.median(sizes)), statistics.median(sharp), int(statistics.median(tiles))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-widget-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_SERVICE_")}
        # every load here is one viewer reloading quickly: lift the per-viewer rate limit (not measured)
        env.update(MEDIA_SERVICE_DATA_DIR=str(Path(tmp) / "data"), MEDIA_SERVICE_LOG_LEVEL="WARNING",
                   MEDIA_SERVICE_SHOPPER_RATE_BURST="100000", PYTHONPATH=str(REPO))
        run = [sys.executable, "-m", "media_service"]
        subprocess.run([*run, "db", "upgrade"], env=env, check=True, capture_output=True)
        key = json.loads(subprocess.run([*run, "merchants", "create", "bench", "--json"], env=env, check=True,
                                        capture_output=True, text=True).stdout)["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        port = free_port()
        server = subprocess.Popen([*run, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        pages: dict[str, str] = {}

        class Host(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.lstrip("/"), "").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: object) -> None:
                pass

        host = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Host)
        threading.Thread(target=host.serve_forever, daemon=True).start()
        origin = f"http://127.0.0.1:{host.server_address[1]}"
        try:
            for _ in range(300):
                try:
                    requests.get(base + "/v1/health", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            photos = [upload(base, headers, SHARED / "panorama" / "hill" / f"{n}.JPG") for n in (1, 2, 3)]
            pano = requests.post(base + "/v1/panoramas", headers=headers, json={"asset_ids": photos},
                                 timeout=30).json()
            frames = [upload(base, headers, SHARED / "spin" / "civic_52" / f"{n}.png") for n in range(1, 53, 4)]
            spin = requests.post(base + "/v1/spins", headers=headers, json={"asset_ids": frames}, timeout=30).json()
            photos = [upload(base, headers, SHARED / "panorama" / "berlin" / f"0{n}.jpg") for n in (1, 2, 3)]
            large = requests.post(base + "/v1/panoramas", headers=headers, json={"asset_ids": photos},
                                  timeout=30).json()
            pano = wait_ready(base, headers, f"/v1/panoramas/{pano['id']}")
            spin = wait_ready(base, headers, f"/v1/spins/{spin['id']}")
            large = wait_ready(base, headers, f"/v1/panoramas/{large['id']}")
            results = {}
            for name, item in (("panorama", pano), ("spin", spin)):
                minted = requests.post(base + "/v1/embed-tokens", headers=headers, timeout=10,
                                       json={"target_id": item["id"], "origins": [origin], "ttl_seconds": 3600}).json()
                manifest = requests.get(minted["manifest_url"], timeout=10).json()
                picture = manifest[name]["preview"] if name == "panorama" else manifest[name]["frames"][0]
                style = "<style>media-viewer, img { width: 640px; height: 400px; object-fit: contain; }</style>"
                pages[f"{name}-widget.html"] = f"<!doctype html>{style}{minted['html']}"
                pages[f"{name}-img.html"] = f"<!doctype html>{style}<img src='{picture}' alt=''>"
                results[name] = minted
            widget_gz = len(gzip.compress((REPO / "static" / "media-viewer.js").read_bytes(), 9))
            print(f"widget script: {(REPO / 'static' / 'media-viewer.js').stat().st_size} bytes, "
                  f"{widget_gz} bytes gzipped (budget 30720)")
            print(f"{'mode':<10}{'widget ms':>11}{'<img> ms':>10}{'ratio':>8}{'widget bytes':>14}{'<img> bytes':>13}")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
                for name in ("panorama", "spin"):
                    widget_ms, widget_bytes = measure(browser, f"{origin}/{name}-widget.html", WIDGET_READY, args.runs)
                    img_ms, img_bytes = measure(browser, f"{origin}/{name}-img.html", IMG_READY, args.runs)
                    print(f"{name:<10}{widget_ms:>11.0f}{img_ms:>10.0f}{widget_ms / img_ms:>8.2f}"
                          f"{widget_bytes:>14}{img_bytes:>13}")
                minted = requests.post(base + "/v1/embed-tokens", headers=headers, timeout=10,
                                       json={"target_id": large["id"], "origins": [origin], "ttl_seconds": 3600}).json()
                spec = requests.get(minted["manifest_url"], headers={"Origin": origin}, timeout=10).json()["panorama"]
                full = len(requests.get(spec["src"], timeout=30).content)
                levels = spec["tiles"]["levels"]
                print(f"\ntiled panorama: {spec['width']}x{spec['height']} px, {len(levels)} levels of "
                      f"{spec['tiles']['tile_size']} px tiles, full image {full} bytes. Bytes: all the page "
                      "downloaded in its first 3 s; / full: against the full image; no tiles: the same page with "
                      "the manifest's tiles taken out (preview + full image, the widget before tiles)")
                for index, scenario in enumerate(TILE_SCENARIOS.values()):
                    pages[f"tiles-{index}.html"] = (f"<!doctype html><style>media-viewer {{ {scenario[2]} }}</style>"
                                                    f"{minted['html']}")
                for network_name, network in NETWORKS.items():
                    print(f"\n{network_name:<22}{'tiles':>6}{'bytes':>10}{'/ full':>8}{'no tiles':>10}{'ratio':>7}"
                          f"{'sharp ms':>10}{'no tiles':>10}")
                    for index, (name, scenario) in enumerate(TILE_SCENARIOS.items()):
                        url = f"{origin}/tiles-{index}.html"
                        tiled = measure_tiles(browser, url, scenario, network, True, args.runs)
                        whole = measure_tiles(browser, url, scenario, network, False, args.runs)
                        print(f"{name:<22}{tiled[2]:>6}{tiled[0]:>10}{tiled[0] / full:>8.2f}{whole[0]:>10}"
                              f"{tiled[0] / whole[0]:>7.2f}{tiled[1]:>10.0f}{whole[1]:>10.0f}")
                browser.close()
        finally:
            host.shutdown()
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
