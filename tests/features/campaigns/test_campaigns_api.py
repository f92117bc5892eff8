"""Campaigns end to end through the API: render, publish, collect, close, draw, verify, stats, delete; and the
cheating table: every way of claiming without watching is refused with its own stable code.

Real service (Flask test client), real SQLite, real ffmpeg render of the real promo clip and logo.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from media_service import features
from media_service.db import begin_write
from media_service.features.campaigns import draw as drawing
from media_service.jobs.worker import housekeeping
from media_service.models import Campaign, CampaignEntry, WebhookDelivery
from media_service.webhooks import SIGNATURE_HEADER, deliver_one, verify_signature
from tests.conftest import REPO, service_env
from tests.features.campaigns.conftest import FREE_ROUTE, ODDS, RULES, World, make_world
from tests.hardening.receivers import Receiver

VERIFY = REPO / "tools" / "verify_draw.py"
SLACK = 1.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from make_world(tmp_path_factory.mktemp("campaigns_api"), CAMPAIGN_CLOCK_SLACK_SECONDS=SLACK,
                          SHOPPER_RATE_BURST=100000, CAMPAIGN_CLAIM_BURST=100)


def embed_token(world: World, campaign_id: str) -> str:
    response = world.client.post("/v1/embed-tokens", headers=world.merchant.headers,
                                 json={"target_id": campaign_id, "origins": ["https://shop.example"]})
    assert response.status_code == 201, response.json
    return response.json["token"]


class Viewer:
    """A shopper's widget, as HTTP calls: a session, the schedule as playback goes, claims at centres."""

    def __init__(self, world: World, token: str, **who: str) -> None:
        self.world, self.token = world, token
        who = who or {"device_id": secrets.token_hex(8)}
        started = world.client.post(f"/v1/embed/{token}/campaign/session", json=who)
        assert started.status_code == 201, started.json
        self.session, self.began, self.state = started.json["session"], time.monotonic(), started.json
        self.items: dict[int, dict[str, Any]] = {}

    def schedule(self, t: float) -> Any:
        response = self.world.client.get(f"/v1/embed/{self.token}/campaign/schedule",
                                         query_string={"session": self.session, "t": t})
        if response.status_code == 200:
            self.items.update({item["fragment"]: item for item in response.json["items"]})
        return response

    def wait_until(self, t: float) -> None:
        """Play on: wait until the wall clock of this session reaches media time ``t`` (minus the slack)."""
        delay = t - SLACK + 0.05 - (time.monotonic() - self.began)
        if delay > 0:
            time.sleep(delay)

    def claim(self, fragment: int | None, t: float, x: float, y: float, nonce: str | None = None,
              session: str | None = None) -> Any:
        body = {"session": session or self.session, "fragment": fragment, "t": t, "x": x, "y": y,
                "nonce": nonce or secrets.token_urlsafe(16)}
        return self.world.client.post(f"/v1/embed/{self.token}/campaign/claims", json=body)

    def centre(self, fragment: int) -> tuple[float, float, float]:
        item = self.items[fragment]
        x, y, w, h = item["box"]
        polygon = item["polygon"]
        cx = sum(p[0] for p in polygon) / len(polygon)
        cy = sum(p[1] for p in polygon) / len(polygon)
        return (item["start"] + item["end"]) / 2, x + cx * w, y + cy * h

    def collect(self, fragment: int) -> Any:
        t, x, y = self.centre(fragment)
        self.wait_until(t)
        time.sleep(0.3)  # a person does not tap two fragments within 250 ms
        self.schedule(t)
        return self.claim(fragment, t, x, y)


@pytest.fixture(scope="module")
def live(world: World) -> dict[str, Any]:
    """A published overlay campaign and its embed token."""
    campaign = world.create()
    published = world.client.post(f"/v1/campaigns/{campaign['id']}/publish", headers=world.merchant.headers)
    assert published.status_code == 200, published.json
    return {"campaign": published.json, "token": embed_token(world, campaign["id"])}


def test_render_gives_a_fair_plan_and_previews(world: World, live: dict[str, Any]) -> None:
    campaign = live["campaign"]
    placements = campaign["plan"]["placements"]
    assert len(placements) == 4 and sorted(p["index"] for p in placements) == [0, 1, 2, 3]
    assert all(p["end"] - p["start"] >= 1.5 for p in placements)
    sheet = world.client.get(campaign["preview"]["sheet_url"])
    assert sheet.status_code == 200 and sheet.data[:3] == b"\xff\xd8\xff"
    preview = world.client.get(campaign["preview"]["video_url"])
    assert preview.status_code == 200 and b"ftyp" in preview.data[:16]
    assert len(campaign["seed_commitment"]) == 64 and campaign["state"] == "published"
    # the public page shows rules, odds, free route and the commitment, and never the seed or the schedule
    public = world.client.get(f"/v1/public/campaigns/{campaign['id']}")
    assert public.status_code == 200
    assert public.json["seed_commitment"] == campaign["seed_commitment"]
    assert public.json["alternative_entry"] and public.json["odds"] and public.json["rules"]
    text = json.dumps(public.json) + json.dumps(world.client.get(f"/v1/embed/{live['token']}").json)
    assert "placements" not in text and '"start"' not in text and "secret" not in text


def test_collecting_every_fragment_gives_one_entry(world: World, live: dict[str, Any]) -> None:
    viewer = Viewer(world, live["token"], shopper_id="shopper-42")
    assert viewer.schedule(0.0).status_code == 200  # the first segment: every fragment of this short clip
    order = sorted(viewer.items, key=lambda i: viewer.items[i]["start"])
    assert len(order) == 4
    answers = []
    for fragment in order:
        answer = viewer.collect(fragment)
        assert answer.status_code == 200, answer.json
        answers.append(answer.json)
    assert [len(a["collected"]) for a in answers] == [1, 2, 3, 4]
    assert answers[-1]["entered"] and answers[-1]["entry_id"].startswith("ent_")
    # the same shopper again (a reload): progress is kept, no second entry, collected fragments stay collected
    again = Viewer(world, live["token"], shopper_id="shopper-42")
    assert again.state["entered"] and again.state["entry_id"] == answers[-1]["entry_id"]
    again.schedule(0.0)
    first = order[0]
    repeat = again.collect(first)
    assert repeat.status_code == 422 and repeat.json["code"] == "already_collected"
    with world.app.extensions["database"].session() as session:
        assert session.query(CampaignEntry).filter_by(campaign_id=live["campaign"]["id"]).count() == 1


def test_cheating_claims_are_all_refused_with_their_code(world: World, live: dict[str, Any]) -> None:
    token = live["token"]
    viewer = Viewer(world, token)
    viewer.schedule(0.0)
    fragment = min(viewer.items, key=lambda i: viewer.items[i]["start"])
    t, x, y = viewer.centre(fragment)
    viewer.wait_until(t)
    item = viewer.items[fragment]
    other_campaign = world.create(seed=99)
    world.client.post(f"/v1/campaigns/{other_campaign['id']}/publish", headers=world.merchant.headers)
    other = Viewer(world, embed_token(world, other_campaign["id"]))
    forged = viewer.session[:-4] + ("AAAA" if not viewer.session.endswith("AAAA") else "BBBB")
    cases: list[tuple[str, Any, str]] = []

    def case(name: str, response: Any, code: str) -> None:
        cases.append((name, response.status_code, response.json.get("code")))
        assert response.status_code >= 400 and response.json.get("code") == code, (name, response.json)
        time.sleep(0.3)  # each case alone, not caught by too_fast

    case("no session", viewer.claim(fragment, t, x, y, session="nothing"), "invalid_session")
    case("forged session", viewer.claim(fragment, t, x, y, session=forged), "invalid_session")
    case("cross-campaign session", viewer.claim(fragment, t, x, y, session=other.session), "wrong_campaign")
    case("unknown fragment", viewer.claim(77, t, x, y), "unknown_fragment")
    early = Viewer(world, token)
    early.schedule(0.0)
    last = max(early.items, key=lambda i: early.items[i]["start"])
    assert early.items[last]["start"] > 1.0
    _, ex, ey = early.centre(last)
    case("early", early.claim(last, 0.1, ex, ey), "too_early")
    case("out of area", viewer.claim(fragment, t, min(1.0, x + 0.3), min(1.0, y + 0.3)), "missed")
    unrevealed = Viewer(world, token)
    case("not revealed to this session", unrevealed.claim(fragment, t, x, y), "not_revealed")
    seeker = Viewer(world, token)
    seeker.schedule(0.0)
    case("seek forward", seeker.schedule(4.5), "seek_ahead")
    case("seek-forward claim", seeker.claim(fragment, 4.9, x, y), "seek_ahead")
    nonce = secrets.token_urlsafe(16)
    viewer.wait_until(t)
    ok = viewer.claim(fragment, t, x, y, nonce=nonce)
    assert ok.status_code == 200, ok.json
    time.sleep(0.3)
    case("replayed nonce", viewer.claim(fragment, t, x, y, nonce=nonce), "replayed")
    case("already collected", viewer.claim(fragment, t, x, y), "already_collected")
    case("playback backwards", viewer.claim(fragment, max(0.0, t - 1.5), x, y), "playback_backwards")
    late = Viewer(world, token)
    late.schedule(0.0)
    late.wait_until(item["end"] + 1.5)
    late.schedule(item["end"] + 1.0)
    case("late", late.claim(fragment, item["end"] + 1.4, x, y), "too_late")
    fast = Viewer(world, token)
    fast.schedule(0.0)
    fast.wait_until(t)
    fast.schedule(t)
    answers = [fast.claim(i, t, x, y) for i in range(4) for _ in range(3)]  # 12 claims in a few ms
    assert sum(a.status_code == 200 for a in answers) <= 1
    assert {a.json["code"] for a in answers if a.status_code != 200} <= {"too_fast", "missed", "too_early"}
    assert any(a.json.get("code") == "too_fast" for a in answers)
    bulk = world.client.post(f"/v1/embed/{token}/campaign/claims", json=[{"session": fast.session}] * 10)
    case("bulk array", bulk, "invalid_json")
    with world.app.extensions["database"].session() as session:
        entries = session.query(CampaignEntry).filter_by(campaign_id=live["campaign"]["id"]).count()
    assert entries == 1  # only the honest shopper of the previous test
    print("\n".join(f"{name:32} {status} {code}" for name, status, code in cases))


def test_a_script_with_the_published_video_but_no_session_cannot_collect(world: World) -> None:
    burned = world.create(mode="burned", seed=5)
    world.client.post(f"/v1/campaigns/{burned['id']}/publish", headers=world.merchant.headers)
    token = embed_token(world, burned["id"])
    manifest = world.client.get(f"/v1/embed/{token}").json
    assert manifest["mode"] == "campaign" and manifest["campaign"]["video"]["mp4"]
    # the script knows exactly where and when each fragment is (say, from analysing the burned-in pixels)
    known = burned["plan"]["placements"]
    accepted = 0
    for placement in known:
        x, y, w, h = placement["slot"]
        t = (placement["start"] + placement["end"]) / 2
        for session in (None, "", "mcs1.e30.AAAA", "x" * 5000):
            body = {"fragment": placement["index"], "t": t, "x": x + w / 2, "y": y + h / 2,
                    "nonce": secrets.token_urlsafe(16)}
            if session is not None:
                body["session"] = session
            response = world.client.post(f"/v1/embed/{token}/campaign/claims", json=body)
            accepted += response.status_code == 200
            assert response.json["code"] == "invalid_session"
    assert accepted == 0
    # with a session of its own, a burned-in tap still counts only when watched in real time
    viewer = Viewer(world, token)
    first = min(known, key=lambda p: p["start"])
    x, y, w, h = first["slot"]
    t = (first["start"] + first["end"]) / 2
    viewer.wait_until(t)
    hit = viewer.claim(None, t, x + w / 2, y + h / 2)
    assert hit.status_code == 200 and hit.json["fragment"] == first["index"], hit.json


def test_close_draw_and_verify_in_another_process(world: World, live: dict[str, Any], tmp_path: Path) -> None:
    campaign_id = live["campaign"]["id"]
    for shopper in ("postcard-1", "postcard-2", "postcard-3", "postcard-4"):
        response = world.client.post(f"/v1/campaigns/{campaign_id}/entries", headers=world.merchant.headers,
                                     json={"shopper_id": shopper})
        assert response.status_code == 201 and response.json["route"] == "alternative"
    assert world.client.post(f"/v1/campaigns/{campaign_id}/entries", headers=world.merchant.headers,
                             json={"shopper_id": "postcard-1"}).status_code == 200  # once
    early = world.client.get(f"/v1/public/campaigns/{campaign_id}/draw").json
    assert early["entries"] is None and early["seed"] is None  # nothing to recompute before close
    closed = world.client.post(f"/v1/campaigns/{campaign_id}/close", headers=world.merchant.headers).json
    assert closed["state"] == "closed" and len(closed["merkle_root"]) == 64
    drawn = world.client.post(f"/v1/campaigns/{campaign_id}/draw", headers=world.merchant.headers).json
    assert drawn["state"] == "drawn" and len(drawn["winners"]) == 3  # 3 prize slots, 5 entries
    record = world.client.get(f"/v1/public/campaigns/{campaign_id}/draw").json
    assert len(record["entries"]) == 5 and record["seed"]
    path = tmp_path / "draw.json"
    path.write_text(json.dumps(record))
    result = subprocess.run([sys.executable, "-I", str(VERIFY), str(path)], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["winners"] == drawn["winners"]
    # a tampered record fails: one entry changed changes the root, and the script says so
    tampered = dict(record, entries=[*record["entries"][:-1], "ent_forged"])
    assert drawing.merkle_root(tampered["entries"]) != record["merkle_root"]
    path.write_text(json.dumps(tampered))
    refused = subprocess.run([sys.executable, "-I", str(VERIFY), str(path)], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path)
    assert refused.returncode == 1 and '"merkle_root_matches": false' in refused.stdout
    with world.app.extensions["database"].session() as session:
        events = sorted(d.event for d in session.query(WebhookDelivery).all())
        assert session.get(Campaign, campaign_id).secret_seed == record["seed"]
    assert events == [] or set(events) <= {"campaign.published", "campaign.closed", "campaign.drawn"}
    stats = world.client.get(f"/v1/campaigns/{campaign_id}/stats", headers=world.merchant.headers).json
    assert stats["entries"] == 5 and stats["collects"] >= 5 and stats["views"] >= 5 and stats["rejected_claims"] >= 10


def test_webhooks_are_written_on_publish_close_and_draw(world: World) -> None:
    hook = world.client.post("/v1/webhooks", headers=world.merchant.headers, json={"url": "http://127.0.0.1:9/hook"})
    assert hook.status_code == 201, hook.json
    campaign = world.create(seed=3)
    for action in ("publish", "close", "draw"):
        assert world.client.post(f"/v1/campaigns/{campaign['id']}/{action}",
                                 headers=world.merchant.headers).status_code == 200
    with world.app.extensions["database"].session() as session:
        events = [d.event for d in session.query(WebhookDelivery).filter_by(webhook_id=hook.json["id"])
                  if d.event.startswith("campaign.")]
    assert events == ["campaign.published", "campaign.closed", "campaign.drawn"]
    deleted = world.client.delete(f"/v1/campaigns/{campaign['id']}", headers=world.merchant.headers)
    assert deleted.status_code == 204
    assert world.client.get(f"/v1/campaigns/{campaign['id']}", headers=world.merchant.headers).status_code == 404


def test_draw_is_unbiased_and_changes_with_any_entry() -> None:
    entries = [f"ent_{i:04d}" for i in range(10)]
    seed = "ab" * 32
    root = drawing.merkle_root(entries)
    assert drawing.merkle_root([*entries[:-1], "ent_9999"]) != root
    assert drawing.merkle_root(list(reversed(entries))) == root  # order of listing does not matter
    counts = dict.fromkeys(entries, 0)
    for k in range(3000):
        counts[drawing.pick_winners(f"{k:064x}", entries, 1)[0]] += 1
    assert max(counts.values()) - min(counts.values()) < 120  # ~300 each; binomial sd ~16
    assert len(set(drawing.pick_winners(seed, entries, 10))) == 10


def test_a_hook_subscribed_to_campaign_drawn_receives_only_that(world: World) -> None:
    """Campaign events are subscribable by name: the hook for ``campaign.drawn`` gets the draw (delivered to
    a real socket, signed) and nothing else; a hook for job events gets no campaign event; unknown names
    are still refused."""
    receiver = Receiver()
    try:
        refused = world.client.post("/v1/webhooks", headers=world.merchant.headers,
                                    json={"url": receiver.url, "events": ["campaign.exploded"]})
        assert refused.status_code == 400 and refused.json["code"] == "invalid_events"
        drawn_hook = world.client.post("/v1/webhooks", headers=world.merchant.headers,
                                       json={"url": receiver.url, "events": ["campaign.drawn"]})
        assert drawn_hook.status_code == 201, drawn_hook.json
        assert drawn_hook.json["events"] == ["campaign.drawn"]
        job_hook = world.client.post("/v1/webhooks", headers=world.merchant.headers,
                                     json={"url": receiver.url, "events": ["job.succeeded"]})
        assert job_hook.status_code == 201, job_hook.json
        campaign = world.create(seed=13)
        for action in ("publish", "close", "draw"):
            assert world.client.post(f"/v1/campaigns/{campaign['id']}/{action}",
                                     headers=world.merchant.headers).status_code == 200
        database = world.app.extensions["database"]
        with database.session() as session:
            mine = session.query(WebhookDelivery).filter_by(webhook_id=drawn_hook.json["id"]).all()
            jobs_only = session.query(WebhookDelivery).filter_by(webhook_id=job_hook.json["id"]).all()
            pending = [d.id for d in mine]
        assert [d.event for d in mine] == ["campaign.drawn"]
        assert not [d for d in jobs_only if d.event.startswith("campaign.")]
        assert [deliver_one(database, world.app.config, d) for d in pending] == ["delivered"]
        [call] = receiver.calls
        body = json.loads(call.body)
        assert body["event"] == "campaign.drawn" and body["data"]["campaign_id"] == campaign["id"]
        assert body["data"]["seed"] and len(body["data"]["winners"]) == 0  # no entries: no winners
        assert verify_signature(drawn_hook.json["secret"], call.body, call.headers[SIGNATURE_HEADER])
    finally:
        receiver.close()
        for hook in world.client.get("/v1/webhooks", headers=world.merchant.headers).json["items"]:
            world.client.delete(f"/v1/webhooks/{hook['id']}", headers=world.merchant.headers)


def test_the_worker_closes_a_campaign_when_its_end_date_passes(world: World) -> None:
    """The supervisor's housekeeping (the features' chores) closes a published campaign once ``ends_at`` has
    passed, exactly as a manual close (entries frozen, Merkle root, ``campaign.closed``), and leaves a
    campaign without an end date, or whose end is still ahead, open; the draw then works as usual."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    ending = world.create(seed=17, ends_at=tomorrow)
    open_ended = world.create(seed=19)
    later = world.create(seed=23, ends_at=tomorrow)
    for campaign in (ending, open_ended, later):
        assert world.client.post(f"/v1/campaigns/{campaign['id']}/publish",
                                 headers=world.merchant.headers).status_code == 200
    for shopper in ("late-1", "late-2"):
        assert world.client.post(f"/v1/campaigns/{ending['id']}/entries", headers=world.merchant.headers,
                                 json={"shopper_id": shopper}).status_code == 201
    database = world.app.extensions["database"]
    housekeeping(database, world.app.config, features.chores())
    assert _state(world, ending["id"]) == "published"  # not ended yet
    with database.session() as session:  # the end date arrives (a render takes longer than waiting would)
        begin_write(session)
        session.get(Campaign, ending["id"]).ends_at = datetime.now(UTC) - timedelta(seconds=1)
        session.commit()
    housekeeping(database, world.app.config, features.chores())
    closed = world.client.get(f"/v1/campaigns/{ending['id']}", headers=world.merchant.headers).json
    assert closed["state"] == "closed" and closed["closed_at"]
    record = world.client.get(f"/v1/public/campaigns/{ending['id']}/draw").json
    assert len(record["entries"]) == 2 and record["merkle_root"] == drawing.merkle_root(record["entries"])
    assert _state(world, open_ended["id"]) == "published" and _state(world, later["id"]) == "published"
    late = world.client.post(f"/v1/campaigns/{ending['id']}/entries", headers=world.merchant.headers,
                             json={"shopper_id": "too-late"})
    assert late.status_code == 409 and late.json["code"] == "campaign_state"
    with database.session() as session:
        events = [d.payload["data"] for d in session.query(WebhookDelivery) if d.event == "campaign.closed"
                  and d.payload["data"]["campaign_id"] == ending["id"]]
    assert all(e["closed_by"] == "schedule" and e["entries"] == 2 for e in events)
    drawn = world.client.post(f"/v1/campaigns/{ending['id']}/draw", headers=world.merchant.headers).json
    assert drawn["state"] == "drawn" and len(drawn["winners"]) == 2
    housekeeping(database, world.app.config, features.chores())  # a drawn campaign stays drawn
    assert _state(world, ending["id"]) == "drawn"


def _state(world: World, campaign_id: str) -> str:
    return world.client.get(f"/v1/campaigns/{campaign_id}", headers=world.merchant.headers).json["state"]


def test_the_command_line_creates_publishes_closes_and_draws(world: World, tmp_path: Path) -> None:
    """``media-service campaigns create|publish|close|draw`` as an operator runs them (real subprocesses on
    the world's data folder, the render by the command's own worker); the printed draw record verifies."""
    merchant = world.merchant.merchant_id

    def cli(*args: str) -> Any:
        result = subprocess.run([sys.executable, "-m", "media_service", "campaigns", *args, "--merchant", merchant],
                                env=service_env(world.data_dir), capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout)

    created = cli("create", "--video", world.video_id, "--logo-asset", world.logo_id, "--title", "CLI hunt",
                  "--fragments", "3", "--rule", "2", "--prize", "Mug:2", "--prize", "Poster", "--rules", RULES,
                  "--odds", ODDS, "--alternative-entry", FREE_ROUTE, "--seed", "29")
    campaign_id = created["id"]
    assert campaign_id.startswith("cmp_") and created["state"] == "draft" and created["render"] == "ready", created
    assert cli("publish", campaign_id)["state"] == "published"
    for shopper in ("cli-1", "cli-2", "cli-3", "cli-4"):
        assert world.client.post(f"/v1/campaigns/{campaign_id}/entries", headers=world.merchant.headers,
                                 json={"shopper_id": shopper}).status_code == 201
    closed = cli("close", campaign_id)
    assert closed["state"] == "closed"
    record = cli("draw", campaign_id)
    assert record["state"] == "drawn" and len(record["entries"]) == 4 and len(record["winners"]) == 3
    assert [w["prize"] for w in record["winners"]] == ["Mug", "Mug", "Poster"]
    path = tmp_path / "draw.json"
    path.write_text(json.dumps(record))
    verified = subprocess.run([sys.executable, "-I", str(VERIFY), str(path)], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    again = subprocess.run([sys.executable, "-m", "media_service", "campaigns", "draw", campaign_id, "--merchant",
                            merchant], env=service_env(world.data_dir), capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "campaign_state" in again.stderr  # drawn once
