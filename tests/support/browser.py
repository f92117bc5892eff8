"""A real Chromium (Debian's, headless) driven by Playwright, and a merchant's page on another origin.

A pytest plugin (registered in ``tests/conftest.py``), so the whole run shares ONE browser: the widget,
console and campaign tests all use these fixtures (Playwright's sync API allows one instance per thread)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import REPO

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts" / "widget"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run 'make test' (it installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 800, "height": 600})
    page = context.new_page()
    yield page
    context.close()


@dataclass
class HostSite:
    """The merchant's own site: a page on another origin that embeds the widget."""

    origin: str
    pages: dict[str, str]

    def url(self, name: str) -> str:
        return f"{self.origin}/{name}"


@pytest.fixture
def host_site() -> Iterator[HostSite]:
    pages: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.lstrip("/").split("?")[0])
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write((body or "not found").encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield HostSite(f"http://127.0.0.1:{server.server_address[1]}", pages)
    server.shutdown()


def shot(page: Page, name: str) -> Path:
    """Save a screenshot as a test artefact (look at them) and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
