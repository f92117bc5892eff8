"""A shopper plays a logo campaign in the widget (real Chromium, real service on 127.0.0.1, real render):
tapping a visible fragment collects it, a tap beside it does not, collecting them all gives one entry, and
reloading the page does not give a second. The keyboard route (C key) collects too."""

from __future__ import annotations

import time
from pathlib import Path

from flask import Flask
from playwright.sync_api import Page

from media_service.models import CampaignClaim, CampaignEntry
from tests.conftest import LiveServer, MerchantCredentials
from tests.features.campaigns.conftest import World, populate
from tests.widget.conftest import HostSite, shot
from tests.widget.test_widget_embed import host_page, mint

LISTENER = ("<script>window.entries = []; document.addEventListener('media-viewer:campaign-entry', "
            "(e) => window.entries.push(e.detail));</script>")
PLAY = """async (v) => { const m = v.shadowRoot.querySelector('video'); m.muted = true; await m.play(); }"""


def fragment_centre(page: Page) -> tuple[float, float, int] | None:
    """The on-screen centre of a visible fragment (not yet collected) and how many are visible."""
    return page.locator("media-viewer").evaluate("""(v) => {
        const nodes = [...v.shadowRoot.querySelectorAll('.frag:not(.got)')];
        if (!nodes.length) return null;
        const b = nodes[0].getBoundingClientRect();
        return [b.left + b.width / 2, b.top + b.height / 2, b.width]; }""")


def progress(page: Page) -> str:
    return page.locator("media-viewer").evaluate("(v) => v.shadowRoot.querySelector('.prog').textContent")


def test_collecting_fragments_in_the_widget_gives_one_entry(app: Flask, page: Page, live_server: LiveServer,
                                                            host_site: HostSite, merchant: MerchantCredentials,
                                                            data_dir: Path) -> None:
    world = populate(World(app, app.test_client(), merchant, "", "", data_dir))
    campaign = world.create(fragments=3, seed=21)
    assert world.client.post(f"/v1/campaigns/{campaign['id']}/publish", headers=merchant.headers).status_code == 200
    minted = mint(live_server, merchant, campaign["id"], host_site.origin)
    host_site.pages["sale.html"] = host_page(minted, LISTENER)
    page.goto(host_site.url("sale.html"))
    page.wait_for_selector("media-viewer[data-rendered][data-mode=campaign]", timeout=30_000)
    page.locator("media-viewer").evaluate(PLAY)
    missed_beside = collected = 0
    deadline = time.monotonic() + 20
    while collected < 3 and time.monotonic() < deadline:
        found = fragment_centre(page)
        if found is None:
            time.sleep(0.05)
            continue
        x, y, width = found
        if missed_beside == 0:  # first a tap beside the fragment: nothing is collected
            page.mouse.click(x + width * 1.6, y)
            missed_beside = 1
            time.sleep(0.4)
            assert "0 of 3 collected" in progress(page)
            shot(page, "campaign-fragment")
        page.mouse.click(x, y)
        collected += 1
        time.sleep(0.4)
    page.wait_for_function("() => window.entries.length === 1", timeout=10_000)
    assert "prize draw" in progress(page)
    shot(page, "campaign-entered")
    entry = page.evaluate("() => window.entries[0].entry")
    page.reload()
    page.wait_for_selector("media-viewer[data-rendered][data-mode=campaign]", timeout=30_000)
    page.wait_for_function("() => document.querySelector('media-viewer').shadowRoot.querySelector('.prog')"
                           ".textContent.includes('prize draw')", timeout=10_000)
    assert entry in progress(page)  # the same device: the same entry, not a second one
    with app.extensions["database"].session() as session:
        assert session.query(CampaignEntry).filter_by(campaign_id=campaign["id"]).count() == 1
        claims = session.query(CampaignClaim).filter_by(campaign_id=campaign["id"]).all()
    assert sum(c.accepted for c in claims) == 3


def test_keyboard_users_collect_with_the_c_key(app: Flask, page: Page, live_server: LiveServer, host_site: HostSite,
                                               merchant: MerchantCredentials, data_dir: Path) -> None:
    world = populate(World(app, app.test_client(), merchant, "", "", data_dir))
    campaign = world.create(fragments=3, seed=4, rule={"kind": "any"})
    world.client.post(f"/v1/campaigns/{campaign['id']}/publish", headers=merchant.headers)
    minted = mint(live_server, merchant, campaign["id"], host_site.origin)
    host_site.pages["sale.html"] = host_page(minted, LISTENER)
    page.goto(host_site.url("sale.html"))
    page.wait_for_selector("media-viewer[data-rendered][data-mode=campaign]", timeout=30_000)
    page.locator("media-viewer").evaluate(PLAY)
    page.wait_for_function("() => document.querySelector('media-viewer').shadowRoot.querySelector('.frag')",
                           timeout=10_000)
    assert "appeared" in progress(page)  # announced in the live region
    page.locator("media-viewer").evaluate("(v) => v.shadowRoot.querySelector('.stage').focus()")
    page.keyboard.press("c")
    page.wait_for_function("() => window.entries.length === 1", timeout=10_000)
    assert "prize draw" in progress(page)


def test_the_iframe_page_plays_a_campaign_and_tells_the_parent(app: Flask, page: Page, live_server: LiveServer,
                                                               host_site: HostSite, merchant: MerchantCredentials,
                                                               data_dir: Path) -> None:
    """The campaign in the iframe page (the embed without script on the shop's page): the framed widget
    plays it, a keyboard collect counts, and the entry reaches the parent page as a message from the
    service's own origin; the shop's page never sees the schedule."""
    world = populate(World(app, app.test_client(), merchant, "", "", data_dir))
    campaign = world.create(fragments=3, seed=8, rule={"kind": "any"})
    assert world.client.post(f"/v1/campaigns/{campaign['id']}/publish", headers=merchant.headers).status_code == 200
    minted = mint(live_server, merchant, campaign["id"], host_site.origin)
    listener = ("<script>window.messages = []; window.addEventListener('message', "
                "(e) => window.messages.push({origin: e.origin, type: e.data && e.data.type, "
                "detail: e.data && e.data.detail}));</script>")
    frame = f"<iframe id='f' src='{minted['iframe_url']}' width='640' height='400' style='border:0'></iframe>"
    host_site.pages["framed-sale.html"] = host_page({"html": listener + frame})
    page.goto(host_site.url("framed-sale.html"))
    inner = page.frame_locator("#f")
    viewer = inner.locator("media-viewer[data-rendered][data-mode=campaign]")
    viewer.wait_for(timeout=30_000)
    viewer.evaluate(PLAY)
    viewer.evaluate("(v) => new Promise((done) => { const wait = () => v.shadowRoot.querySelector('.frag') ? "
                    "done() : setTimeout(wait, 50); wait(); })")
    inner.locator("media-viewer .stage").press("c")  # the frame's keyboard route (locators pierce the shadow root)
    page.wait_for_function("() => window.messages.some((m) => m.type === 'media-viewer:campaign-entry')",
                           timeout=10_000)
    shot(page, "campaign-iframe-entered")
    entries = [m for m in page.evaluate("() => window.messages") if m["type"] == "media-viewer:campaign-entry"]
    assert len(entries) == 1 and entries[0]["origin"] == live_server.url
    assert entries[0]["detail"]["campaign"] == campaign["id"] and entries[0]["detail"]["entry"].startswith("ent_")
    assert "prize draw" in viewer.evaluate("(v) => v.shadowRoot.querySelector('.prog').textContent")
    with app.extensions["database"].session() as session:
        entry = session.query(CampaignEntry).filter_by(campaign_id=campaign["id"]).one()
    assert entry.id == entries[0]["detail"]["entry"]
    # the parent page holds no fragment positions: only the frame and the messages
    assert '"start"' not in page.content() and "placements" not in page.content()
