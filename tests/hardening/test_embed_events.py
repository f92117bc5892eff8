"""Widget events with a public embed token: bounded per viewer and per token, counted instead of stored.

An embed token sits in a merchant's page, so a script can post events with it as fast as it likes. Each
viewer (token + address) and each token (all its viewers together) has an event budget; past it the
answer is 429 with Retry-After, and what is accepted is added to per-item, per-day, per-type counts, so
the table grows with items x days x types, never with traffic.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import timedelta
from io import BytesIO
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from media_service import create_app
from media_service.db import upgrade
from media_service.features.embed.service import count_events, read_token
from media_service.models import EmbedEventCount, utcnow
from tests.conftest import MerchantCredentials, add_merchant, make_test_config, media

SHOP = "https://shop.example"
BATCH = {"session": "s", "events": [{"type": "view", "data": {"n": i}} for i in range(50)]}


def _image_and_token(client: FlaskClient, merchant: MerchantCredentials) -> tuple[str, str]:
    image = client.post("/v1/assets", headers=merchant.headers, content_type="multipart/form-data",
                        data={"file": (BytesIO(media("panorama/hill/1.JPG").read_bytes()), "p.jpg")}).json["id"]
    token = client.post("/v1/embed-tokens", headers=merchant.headers,
                        json={"target_id": image, "origins": [SHOP]}).json["token"]
    return image, token


def _stored(app: Flask) -> tuple[int, int]:
    """(rows, events) in the counts table."""
    with app.extensions["database"].session() as session:
        rows = session.scalar(select(func.count()).select_from(EmbedEventCount)) or 0
        events = session.scalar(select(func.sum(EmbedEventCount.count))) or 0
    return rows, int(events)


def test_a_burst_of_2000_events_from_one_viewer_stores_a_bounded_aggregate(
        app: Flask, client: FlaskClient, merchant: MerchantCredentials) -> None:
    """2,000 events (40 batches of 50) with a public token and no Origin header, as a script sends them."""
    image, token = _image_and_token(client, merchant)
    answers = [client.post(f"/v1/embed/{token}/events", json=BATCH) for _ in range(40)]
    accepted = sum(a.json["accepted"] for a in answers if a.status_code == 202)
    refused = [a for a in answers if a.status_code != 202]
    assert accepted <= app.config["EMBED_EVENTS_BURST"] + 50  # the viewer's budget (and a refill at most)
    assert refused and all(a.status_code == 429 for a in refused)
    assert all(int(a.headers["Retry-After"]) >= 1 and a.json["code"] == "rate_limited" for a in refused)
    rows, stored = _stored(app)
    assert rows == 1 and stored == accepted  # one row per (item, day, type), whatever the traffic
    stats = client.get(f"/v1/embed-stats/{image}", headers=merchant.headers).json
    assert stats == {"target_id": image, "counts": {"view": accepted}, "total": accepted}


def test_many_viewers_of_one_token_share_its_budget(tmp_path: Path) -> None:
    """40 addresses with 50 events each: the token's budget stops the burst, whoever sends it."""
    app = create_app(make_test_config(tmp_path, EMBED_TOKEN_EVENTS_BURST=1000))
    upgrade(app.config["DATABASE_URL"])
    client = app.test_client()
    merchant = add_merchant(app, "Popular shop")
    image, token = _image_and_token(client, merchant)
    answers = [client.post(f"/v1/embed/{token}/events", json=BATCH, headers={"Origin": SHOP},
                           environ_base={"REMOTE_ADDR": f"192.0.2.{i + 1}"}) for i in range(40)]
    codes = Counter(a.status_code for a in answers)
    assert codes[202] * 50 <= 1000 + 50 and codes[429] >= 19 and set(codes) == {202, 429}
    limited = next(a for a in answers if a.status_code == 429)
    assert "this embed" in limited.json["detail"] and int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["Access-Control-Allow-Origin"] == SHOP  # the page can read the refusal
    assert _stored(app) == (1, codes[202] * 50)
    # another token (another page) of the same item is not held back by this one
    other = client.post("/v1/embed-tokens", headers=merchant.headers,
                        json={"target_id": image, "origins": [SHOP]}).json["token"]
    assert client.post(f"/v1/embed/{other}/events", json=BATCH, headers={"Origin": SHOP}).status_code == 202
    app.extensions["database"].dispose()


def test_normal_use_is_counted_exactly_by_type_over_days(
        app: Flask, client: FlaskClient, merchant: MerchantCredentials, other_merchant: MerchantCredentials) -> None:
    image, token = _image_and_token(client, merchant)
    other_image, other_token = _image_and_token(client, other_merchant)
    sent: Counter[str] = Counter()
    for viewer, types in enumerate([["view", "drag", "drag", "zoom"], ["view", "spin"], ["view", "add_to_cart"]]):
        batch = {"session": f"s{viewer}", "events": [{"type": t} for t in types]}
        answer = client.post(f"/v1/embed/{token}/events", json=batch, headers={"Origin": SHOP},
                             environ_base={"REMOTE_ADDR": f"198.51.100.{viewer + 1}"})
        assert answer.status_code == 202 and answer.json["accepted"] == len(types)
        sent.update(types)
    assert client.post(f"/v1/embed/{other_token}/events", json={"events": [{"type": "view"}]}).status_code == 202
    with app.app_context(), app.extensions["database"].session() as session:  # yesterday's views add up too
        count_events(session, read_token(app.config["SECRET_KEY"], token), Counter(view=7),
                     day=utcnow().date() - timedelta(days=1))
        session.commit()
    sent["view"] += 7
    stats = client.get(f"/v1/embed-stats/{image}", headers=merchant.headers).json
    assert stats["counts"] == dict(sent) and stats["total"] == sum(sent.values())
    assert client.get(f"/v1/embed-stats/{other_image}", headers=other_merchant.headers).json["counts"] == {"view": 1}
    assert client.get(f"/v1/embed-stats/{other_image}", headers=merchant.headers).json["total"] == 0
    assert _stored(app)[0] == len(sent) + 1 + 1  # one row per type today, yesterday's views, the other item


def test_the_migration_folds_stored_events_into_counts(tmp_path: Path) -> None:
    """Events stored one row each before the counts existed are summed into them, then their table goes."""
    app = create_app(make_test_config(tmp_path))
    url = app.config["DATABASE_URL"]
    upgrade(url, "0005_embeds")
    merchant = add_merchant(app, "Old shop")
    database = sqlite3.connect(url.removeprefix("sqlite:///"))
    rows = [(f"evt_{i}", merchant.merchant_id, "asset", "ast_1", kind, "", "", "{}", f"2026-01-0{day} 10:00:00")
            for i, (kind, day) in enumerate([("view", 1), ("view", 1), ("view", 2), ("spin", 2)])]
    database.executemany("INSERT INTO embed_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    database.commit()
    upgrade(url)
    counts = sorted(database.execute("SELECT day, type, count FROM embed_event_counts").fetchall())
    assert counts == [("2026-01-01", "view", 2), ("2026-01-02", "spin", 1), ("2026-01-02", "view", 1)]
    assert not database.execute("SELECT name FROM sqlite_master WHERE name = 'embed_events'").fetchall()
    database.close()
    app.extensions["database"].dispose()
