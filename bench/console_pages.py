"""Console page latency with a large library: p50/p95 of every console page (goal: p95 <= 200 ms).

Builds a fresh data folder whose merchant has ``--assets`` assets (default 10,000; a thumbnail each),
``--videos`` buyer shows waiting for review, ``--jobs`` finished jobs (some failed) and ``--events`` widget
events over 30 days, starts the real service (gunicorn, 2 processes, no worker) on 127.0.0.1, signs in
through the real form and requests each page ``--rounds`` times, one request at a time. Bounded: every
request has a timeout and the run makes ``pages x rounds`` requests.

    PYTHONPATH=$PWD .venv/bin/python bench/console_pages.py --assets 10000 --rounds 40
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media_service import create_app
from media_service.db import upgrade
from media_service.features.console.service import create_user
from media_service.models import Asset, EmbedEventCount, Job, Video, new_id, utcnow
from media_service.security.api_keys import create_merchant

PASSWORD = "bench passphrase, long enough"
PAGES = ("/console/library", "/console/library?kind=image", "/console/library?q=photo-1234",
         "/console/library?cursor=PAGE2", "/console/reviews", "/console/studio", "/console/catalog",
         "/console/embed", "/console/insights", "/console/jobs")
GOAL_MS = 200.0


def populate(data_dir: Path, assets: int, videos: int, jobs: int, events: int) -> str:
    """Rows straight into the database (the pages read rows; files are not needed to render them)."""
    app = create_app({"DATA_DIR": str(data_dir)})
    upgrade(app.config["DATABASE_URL"])
    rng = random.Random(7)
    now = utcnow()
    with app.extensions["database"].session() as session:
        merchant, _key = create_merchant(session, "Bench shop")
        merchant_id = merchant.id
    with app.extensions["database"].session() as session:
        create_user(session, merchant_id, "bench@shop.example", "owner", password=PASSWORD)
    asset_rows: list[dict[str, Any]] = []
    for n in range(assets):
        kind = "image" if n % 5 else "video"
        asset_id = new_id("ast")
        asset_rows.append({
            "id": asset_id, "merchant_id": merchant_id, "kind": kind, "format": "jpeg" if kind == "image" else "mp4",
            "mime": "image/jpeg" if kind == "image" else "video/mp4", "size": rng.randint(50_000, 9_000_000),
            "sha256": hashlib.sha256(asset_id.encode()).hexdigest(),
            "storage_key": f"assets/{merchant_id}/{asset_id}/original.jpg", "filename": f"photo-{n}.jpg",
            "width": 1200, "height": 900, "details": {}, "source": "tus",
            "thumbnail_key": f"assets/{merchant_id}/{asset_id}/thumbnail.webp",
            "created_at": now - timedelta(seconds=assets - n)})
    job_rows: list[dict[str, Any]] = []
    for n in range(jobs):
        failed = n % 10 == 0
        finished = now - timedelta(minutes=rng.randint(1, 30 * 24 * 60))
        job_rows.append({"id": new_id("job"), "merchant_id": merchant_id, "kind": "assets.thumbnail", "params": {},
                         "state": "failed" if failed else "succeeded", "progress": 100.0, "attempts": 1,
                         "max_attempts": 3, "cancel_requested": False,
                         "error": {"code": "invalid_media", "detail": "the file is truncated"} if failed else None,
                         "created_at": finished, "finished_at": finished})
    video_rows = [{"id": new_id("vid"), "merchant_id": merchant_id, "asset_id": asset_rows[n * 5]["id"],
                   "profile": "buyer_show", "options": {}, "options_key": "{}", "state": "ready", "outputs": {},
                   "flags": [{"code": "too_dark", "detail": "the picture is dark"}] if n % 3 == 0 else [],
                   "signature": [], "analysis": {}, "moderation_status": "pending", "order_id": f"ORD-{n}",
                   "sku": "SKU-1", "duration": 12.5, "created_at": now, "ready_at": now}
                  for n in range(min(videos, assets // 5))]
    tally: Counter[tuple[str, Any, str]] = Counter()
    for _ in range(events):  # the widget's events as the service keeps them: counts per item, day and type
        tally[(asset_rows[rng.randrange(0, min(assets, 50))]["id"],
               (now - timedelta(minutes=rng.randint(0, 30 * 24 * 60))).date(),
               rng.choice(("view", "view", "view", "spin", "tap", "add_to_cart")))] += 1
    event_rows = [{"merchant_id": merchant_id, "target_kind": "asset", "target_id": target, "day": day, "type": kind,
                   "count": count} for (target, day, kind), count in tally.items()]
    with app.extensions["database"].session(write=True) as session:
        for model, rows in ((Asset, asset_rows), (Job, job_rows), (Video, video_rows), (EmbedEventCount, event_rows)):
            for start in range(0, len(rows), 2000):
                session.execute(insert(model), rows[start:start + 2000])
    app.extensions["database"].dispose()
    return merchant_id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sign_in(base: str) -> dict[str, str]:
    """The session cookie, from the real sign-in form (sent by hand: requests keeps Secure cookies for https)."""
    form = requests.get(f"{base}/console/sign-in", timeout=10)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf
    pre = form.cookies.get("__Host-console-signin") or form.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    answer = requests.post(f"{base}/console/sign-in", timeout=10, allow_redirects=False,
                           data={"csrf_token": csrf.group(1), "email": "bench@shop.example", "password": PASSWORD},
                           headers={"Cookie": f"__Host-console-signin={pre}"})
    assert answer.status_code == 303, answer.text[:500]
    token = re.search(r"__Host-console=([^;]+)", answer.headers["Set-Cookie"])
    assert token
    return {"Cookie": f"__Host-console={token.group(1)}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        populate(data_dir, args.assets, args.videos, args.jobs, args.events)
        print(f"populated in {time.perf_counter() - started:.1f} s: {args.assets} assets, {args.videos} pending "
              f"buyer shows, {args.jobs} jobs, {args.events} widget events", flush=True)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_SERVICE_")}
        env.update(MEDIA_SERVICE_DATA_DIR=str(data_dir), MEDIA_SERVICE_LOG_LEVEL="WARNING",
                   PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        server = subprocess.Popen([sys.executable, "-m", "media_service", "serve", "--port", str(port), "--no-worker",
                                   "--processes", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    requests.get(f"{base}/v1/health", timeout=1)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the service did not start") from None
                    time.sleep(0.2)
            cookie = sign_in(base)
            first = requests.get(f"{base}/console/library", headers=cookie, timeout=10).text
            cursor = re.search(r'cursor=([^"&]+)"', first)
            results = {}
            for path in PAGES:
                url = base + path.replace("PAGE2", cursor.group(1) if cursor else "")
                requests.get(url, headers=cookie, timeout=10)  # warm (templates, connections)
                times = []
                for _ in range(args.rounds):
                    start = time.perf_counter()
                    answer = requests.get(url, headers=cookie, timeout=10)
                    times.append((time.perf_counter() - start) * 1000)
                    if answer.status_code != 200:
                        raise SystemExit(f"{path}: {answer.status_code} {answer.text[:300]}")
                times.sort()
                results[path] = {"p50_ms": round(statistics.median(times), 1),
                                 "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
                                 "max_ms": round(times[-1], 1), "bytes": len(answer.content)}
        finally:
            server.terminate()
            server.wait(timeout=15)
    worst = max(r["p95_ms"] for r in results.values())
    print(f"{'page':42} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'KB':>6}")
    for path, r in results.items():
        print(f"{path:42} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['max_ms']:8.1f} {r['bytes'] / 1024:6.1f}")
    print(json.dumps({"assets": args.assets, "rounds": args.rounds, "worst_p95_ms": worst, "goal_ms": GOAL_MS,
                      "met": worst <= GOAL_MS, "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
