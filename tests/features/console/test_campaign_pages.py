"""The console's campaign pages with the Flask client, over the campaigns test world (the promo clip processed
by the real video pipeline and a real logo, rendered by the real worker code): create -> render -> preview
sheet -> publish -> close -> draw -> the proof, checked by ``tools/verify_draw.py``; roles, other merchants and
forged forms are refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from werkzeug.serving import make_server

from tests.conftest import REPO, add_merchant
from tests.features.campaigns.conftest import FREE_ROUTE, ODDS, RULES, World, make_world
from tests.features.console.conftest import PASSWORD, ConsoleUser, add_user

ARTIFACTS = REPO / "test-artifacts" / "console"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from make_world(tmp_path_factory.mktemp("console_campaigns"))


@pytest.fixture(scope="module")
def users(world: World) -> dict[str, ConsoleUser]:
    other = add_merchant(world.app, "Shop B")
    return {"owner": add_user(world.app, world.merchant, "owner@shop-a.example", "owner"),
            "reviewer": add_user(world.app, world.merchant, "reviewer@shop-a.example", "reviewer"),
            "other": add_user(world.app, other, "owner@shop-b.example", "owner")}


def form(user: ConsoleUser, world: World, **overrides: str) -> dict[str, str]:
    return {"csrf_token": user.csrf, "nonce": overrides.pop("nonce", ""), "title": "Console logo hunt",
            "video_id": world.video_id, "logo_asset_id": world.logo_id, "fragments": "4", "rule": "n",
            "rule_n": "3", "mode": "overlay", "starts_at": "2026-01-01T09:00", "ends_at": "2026-12-31T18:00",
            "utc_offset": "+08:00", "prizes": "2 x Gift card\nMug", "max_entries": "", "rules": RULES,
            "odds": ODDS, "alternative_entry": FREE_ROUTE, **overrides}


@pytest.fixture(scope="module")
def campaign_id(world: World, users: dict[str, ConsoleUser]) -> str:
    """A campaign created through the console form and rendered by the worker."""
    owner = users["owner"]
    page = owner.client.get("/console/campaigns")
    assert page.status_code == 200
    assert f'value="{world.video_id}"' in page.text and f'value="{world.logo_id}"' in page.text
    made = owner.client.post("/console/campaigns", data=form(owner, world, nonce="first"))
    assert made.status_code == 303, made.text
    campaign_id = made.headers["Location"].rsplit("/", 1)[1]
    again = owner.client.post("/console/campaigns", data=form(owner, world, nonce="first"))
    assert again.headers["Location"].endswith(campaign_id)  # a double submit returns the first
    waiting = owner.client.get(f"/console/campaigns/{campaign_id}")
    assert "Rendering the fragments" in waiting.text and "preview-sheet" not in waiting.text
    world.run_jobs()
    return campaign_id


def _api(world: World, campaign_id: str) -> dict:
    return world.client.get(f"/v1/campaigns/{campaign_id}", headers=world.merchant.headers).json


def test_the_form_reaches_the_service_as_the_api_would(world: World, campaign_id: str) -> None:
    shown = _api(world, campaign_id)
    assert shown["render"]["state"] == "ready" and shown["fragments"] == 4
    assert shown["rule"] == {"kind": "n", "n": 3} and shown["mode"] == "overlay"
    assert shown["prizes"] == [{"name": "Gift card", "quantity": 2}, {"name": "Mug", "quantity": 1}]
    assert shown["starts_at"].startswith("2026-01-01T") and shown["max_entries"] is None
    assert shown["alternative_entry"] == FREE_ROUTE


def test_create_to_draw_shows_the_sheet_and_then_the_proof(world: World, users: dict[str, ConsoleUser],
                                                         campaign_id: str, tmp_path: Path) -> None:
    owner = users["owner"]
    page = owner.client.get(f"/console/campaigns/{campaign_id}")
    assert page.status_code == 200
    sheet = re.search(r'id="preview-sheet" src="([^"]+)"', page.text)
    assert sheet, "no preview sheet on the page"
    image = owner.client.get(sheet.group(1).replace("&amp;", "&"))
    assert image.status_code == 200 and image.data[:3] == b"\xff\xd8\xff"  # the rendered JPEG, signed
    fragments = re.findall(r'<img src="([^"]+)" alt="Fragment \d+"', page.text)
    assert len(fragments) == 4
    assert owner.client.get(fragments[0].replace("&amp;", "&")).data[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Console logo hunt" in owner.client.get("/console/campaigns").text

    published = owner.client.post(f"/console/campaigns/{campaign_id}/publish", data={"csrf_token": owner.csrf})
    assert published.status_code == 303
    page = owner.client.get(f"/console/campaigns/{campaign_id}")
    commitment = _api(world, campaign_id)["seed_commitment"]
    assert "Published: shoppers can collect now" in page.text and commitment in page.text
    assert "Revealed seed" not in page.text and "Close entries" in page.text
    for shopper in ("alice", "bob", "carol", "dan"):  # the free alternative route, through the API
        entered = world.client.post(f"/v1/campaigns/{campaign_id}/entries", headers=world.merchant.headers,
                                    json={"shopper_id": shopper})
        assert entered.status_code == 201, entered.json
    assert re.search(r'id="entries">4<', owner.client.get(f"/console/campaigns/{campaign_id}").text)

    twice = owner.client.post(f"/console/campaigns/{campaign_id}/publish", data={"csrf_token": owner.csrf})
    assert twice.status_code == 409 and 'class="problem"' in twice.text
    assert "a published campaign cannot be published" in twice.text and "campaign_state" in twice.text

    assert owner.client.post(f"/console/campaigns/{campaign_id}/close",
                             data={"csrf_token": owner.csrf}).status_code == 303
    root = _api(world, campaign_id)["merkle_root"]
    assert root in owner.client.get(f"/console/campaigns/{campaign_id}").text
    assert owner.client.post(f"/console/campaigns/{campaign_id}/draw",
                             data={"csrf_token": owner.csrf}).status_code == 303

    page = owner.client.get(f"/console/campaigns/{campaign_id}")
    record = world.client.get(f"/v1/public/campaigns/{campaign_id}/draw").json
    seed = re.search(r'id="revealed-seed">([0-9a-f]{64})<', page.text)
    assert seed and seed.group(1) == record["seed"]
    assert hashlib.sha256(bytes.fromhex(seed.group(1))).hexdigest() == commitment  # the seed kept its promise
    assert len(record["winners"]) == 3 and all(w["entry_id"] in page.text for w in record["winners"])
    command = re.search(r'id="verify-command">([^<]+)<', page.text).group(1)
    url = f"http://localhost/v1/public/campaigns/{campaign_id}/draw"
    assert command == f"python3 tools/verify_draw.py {url}"
    saved = tmp_path / "draw.json"  # the test client has no socket: the tool reads the same record from a file
    saved.write_text(json.dumps(record))
    checked = subprocess.run([sys.executable, str(REPO / "tools" / "verify_draw.py"), str(saved)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Drawn: the seed is revealed" in page.text and "Draw the winners" not in page.text


def test_a_reviewer_reads_but_cannot_act(world: World, users: dict[str, ConsoleUser], campaign_id: str) -> None:
    reviewer = users["reviewer"]
    page = reviewer.client.get(f"/console/campaigns/{campaign_id}")
    assert page.status_code == 200 and "can read this campaign" in page.text
    assert f'action="/console/campaigns/{campaign_id}/' not in page.text  # no publish, close or draw button
    assert 'id="create-campaign"' not in reviewer.client.get("/console/campaigns").text
    state = _api(world, campaign_id)["state"]
    for action in ("publish", "close", "draw"):
        refused = reviewer.client.post(f"/console/campaigns/{campaign_id}/{action}",
                                       data={"csrf_token": reviewer.csrf})
        assert refused.status_code == 403 and "role_forbidden" in refused.text and 'class="problem"' in refused.text
    refused = reviewer.client.post("/console/campaigns", data=form(reviewer, world))
    assert refused.status_code == 403
    assert _api(world, campaign_id)["state"] == state


def test_another_merchant_sees_nothing(world: World, users: dict[str, ConsoleUser], campaign_id: str) -> None:
    other = users["other"]
    assert other.client.get(f"/console/campaigns/{campaign_id}").status_code == 404
    assert other.client.post(f"/console/campaigns/{campaign_id}/close",
                             data={"csrf_token": other.csrf}).status_code == 404
    listing = other.client.get("/console/campaigns")
    assert campaign_id not in listing.text and world.video_id not in listing.text
    stolen = other.client.post("/console/campaigns", data=form(other, world))  # shop A's video and logo
    assert stolen.status_code == 404


def test_a_forged_form_is_refused(world: World, users: dict[str, ConsoleUser]) -> None:
    owner = users["owner"]
    before = owner.client.get("/console/campaigns").text.count('class="state state-draft"')
    no_token = {k: v for k, v in form(owner, world).items() if k != "csrf_token"}
    assert owner.client.post("/console/campaigns", data=no_token).status_code == 403
    wrong = owner.client.post("/console/campaigns", data={**no_token, "csrf_token": "x" * 32})
    assert wrong.status_code == 403
    cross_site = owner.client.post("/console/campaigns", data=form(owner, world),
                                   headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    assert owner.client.get("/console/campaigns").text.count('class="state state-draft"') == before


def test_form_mistakes_read_as_words(world: World, users: dict[str, ConsoleUser]) -> None:
    owner = users["owner"]
    cases = [({"fragments": "13"}, "fragments must be a whole number from 3 to 12"),
             ({"fragments": "four"}, "the fragment count must be a whole number"),
             ({"rule_n": "9"}, "rule n must be a whole number from 1 to the fragment count"),
             ({"prizes": ""}, "prizes must be a list"),
             ({"utc_offset": "Paris"}, "offset from UTC"),
             ({"ends_at": "2025-01-01T00:00"}, "ends_at must be after starts_at"),
             ({"logo_asset_id": world.video_id}, "no asset")]
    for fields, words in cases:
        answer = owner.client.post("/console/campaigns", data=form(owner, world, **fields))
        assert answer.status_code in (400, 404), (fields, answer.status_code)
        assert words in answer.text and 'class="problem"' in answer.text, (fields, answer.text[-800:])


@pytest.mark.slow
def test_the_campaign_page_in_chromium(world: World, users: dict[str, ConsoleUser], campaign_id: str,
                                       browser: Browser) -> None:
    """The drawn campaign's page in a real Chromium (after the flow above, or drawn here when run alone):
    the preview sheet and the fragments load through their signed links, the command shown verifies the live
    public draw record; a screenshot goes to
    ``test-artifacts/console/campaign.png`` (and the list with its form to ``campaigns.png``)."""
    owner = users["owner"]
    for action in ("publish", "close", "draw"):  # whatever is left of the flow (refused steps are harmless)
        owner.client.post(f"/console/campaigns/{campaign_id}/{action}", data={"csrf_token": owner.csrf})
    server = make_server("127.0.0.1", 0, world.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{base}/console/campaigns/{campaign_id}")
        page.fill("#email", owner.email)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/console/campaigns/{campaign_id}")
        command = page.locator("#verify-command").inner_text().split()
        assert command[:2] == ["python3", "tools/verify_draw.py"] and command[2].startswith(base)
        checked = subprocess.run([sys.executable, str(REPO / command[1]), command[2]], capture_output=True,
                                 text=True, timeout=60)  # the shown command, against the live public record
        assert checked.returncode == 0, checked.stdout + checked.stderr
        for image in [page.locator("#preview-sheet"), *page.locator("img[alt^=Fragment]").all()]:
            expect(image).to_be_visible()
            assert image.evaluate("img => img.complete && img.naturalWidth > 0"), "an image did not load"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "campaign.png"), full_page=True)
        page.goto(f"{base}/console/campaigns")
        expect(page.locator("#create-campaign")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "campaigns.png"), full_page=True)
    finally:
        context.close()
        server.shutdown()
        thread.join(timeout=10)
