"""Load on 127.0.0.1: concurrent reads and uploads while one merchant's webhook receiver drips.

Starts the real service (gunicorn) and a real worker on a fresh data folder, with four merchants: one
registers a webhook receiver that sends its headers and then 1 byte every 3 s (the stall scenario), the
others prompt receivers. Then, at the same time:

* ``--readers`` threads each make ``--reads`` GETs (an asset, the asset list, a job), all merchants mixed;
* ``--uploads`` threads each upload one distinct JPEG (multipart), spread over the four merchants, so
  every merchant's thumbnail jobs finish during the load and their webhooks go out.

Prints p50/p99 latency of reads and uploads, the count of errors (any non-2xx or exception; goal 0),
and the delivery lag (delivered_at - created_at of the outbox row) of the prompt merchants' webhooks,
next to the stalled merchant's deliveries. Everything stays on 127.0.0.1 and is bounded in count and time.

    PYTHONPATH=$PWD .venv/bin/python bench/load.py --readers 200 --reads 5 --uploads 50
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import requests
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media_service import create_app
from media_service.db import upgrade
from media_service.models import Job, Webhook, WebhookDelivery
from tests.conftest import add_merchant, free_port, make_test_config, service_env
from tests.hardening.receivers import Receiver

SETTINGS = {"JOB_LEASE_SECONDS": 30.0, "DATABASE_STRICT_WRITES": False, "WEBHOOK_TIMEOUT_SECONDS": 10.0}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = cv2.resize(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), (640, 480), interpolation=cv2.INTER_CUBIC)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return data.tobytes()


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/v1/openapi.json", timeout=2).ok:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
        if process.poll() is not None:
            raise RuntimeError("the server died at start")
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--reads", type=int, default=5, help="GETs per reader thread")
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--processes", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn process")
    parser.add_argument("--concurrency", type=int, default=2, help="worker job processes")
    parser.add_argument("--drain-seconds", type=float, default=60.0, help="most time to wait for webhooks after")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="media-load-") as tmp:
        data_dir = Path(tmp) / "data"
        app = create_app(make_test_config(data_dir, **SETTINGS))
        upgrade(app.config["DATABASE_URL"])
        stall, *prompt_receivers = Receiver(mode="drip", drip_seconds=3.0), Receiver(), Receiver(), Receiver()
        merchants = [add_merchant(app, f"Shop {i}") for i in range(4)]  # merchant 0 has the dripping receiver
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = service_env(data_dir, **SETTINGS)
        server = subprocess.Popen([sys.executable, "-m", "media_service", "serve", "--port", str(port), "--no-worker",
                                   "--processes", str(args.processes), "--threads", str(args.threads)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        worker = subprocess.Popen([sys.executable, "-m", "media_service", "worker", "--concurrency",
                                   str(args.concurrency)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            _wait_ready(url, server)
            for merchant, receiver in zip(merchants, [stall, *prompt_receivers], strict=True):
                requests.post(f"{url}/v1/webhooks", headers=merchant.headers, json={"url": receiver.url},
                              timeout=10).raise_for_status()
            seeded = []  # one asset per merchant to read
            for i, merchant in enumerate(merchants):
                answer = requests.post(f"{url}/v1/assets", headers=merchant.headers,
                                       files={"file": (f"seed{i}.jpg", _jpeg(10_000 + i), "image/jpeg")}, timeout=30)
                answer.raise_for_status()
                seeded.append(answer.json())
            time.sleep(2)  # the seeds' thumbnail jobs (and the drip's first delivery) are under way

            reads: list[float] = []
            uploads: list[float] = []
            errors: list[str] = []
            lock = threading.Lock()
            start = threading.Barrier(args.readers + args.uploads)

            def reader(index: int) -> None:
                merchant, asset = merchants[index % 4], seeded[index % 4]
                paths = [f"/v1/assets/{asset['id']}", "/v1/assets?limit=20", f"/v1/jobs/{asset['job']['id']}"
                         if asset.get("job") else f"/v1/assets/{asset['id']}"]
                session = requests.Session()
                start.wait()
                for n in range(args.reads):
                    began = time.monotonic()
                    try:
                        answer = session.get(url + paths[n % len(paths)], headers=merchant.headers, timeout=60)
                        problem = None if answer.ok else f"GET {answer.status_code}"
                    except requests.RequestException as exc:
                        problem = f"GET {type(exc).__name__}"
                    with lock:
                        reads.append(time.monotonic() - began)
                        if problem:
                            errors.append(problem)

            def uploader(index: int) -> None:
                merchant = merchants[index % 4]
                body = _jpeg(index)
                start.wait()
                began = time.monotonic()
                try:
                    answer = requests.post(f"{url}/v1/assets", headers=merchant.headers,
                                           files={"file": (f"u{index}.jpg", body, "image/jpeg")}, timeout=120)
                    problem = None if answer.status_code == 201 else f"POST {answer.status_code}"
                except requests.RequestException as exc:
                    problem = f"POST {type(exc).__name__}"
                with lock:
                    uploads.append(time.monotonic() - began)
                    if problem:
                        errors.append(problem)

            threads = [threading.Thread(target=reader, args=(i,)) for i in range(args.readers)]
            threads += [threading.Thread(target=uploader, args=(i,)) for i in range(args.uploads)]
            began = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=300)
            load_seconds = time.monotonic() - began

            # wait (bounded) until the prompt merchants' deliveries are all delivered
            prompt_ids = {m.merchant_id for m in merchants[1:]}
            deadline = time.monotonic() + args.drain_seconds
            while True:
                with app.extensions["database"].session() as session:
                    rows = session.execute(select(Webhook.merchant_id, WebhookDelivery.state,
                                                  WebhookDelivery.created_at, WebhookDelivery.delivered_at)
                                           .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)).all()
                    unfinished = session.scalar(select(func.count()).select_from(Job).where(
                        Job.state.in_(("queued", "running")))) or 0
                pending = [r for r in rows if r[0] in prompt_ids and r[1] != "delivered"]
                if (not pending and not unfinished) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        finally:
            server.terminate()
            worker.terminate()
            for process in (server, worker):
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
            stall.close()
            for receiver in prompt_receivers:
                receiver.close()
            app.extensions["database"].dispose()

    lags = [(r[3] - r[2]).total_seconds() for r in rows if r[0] in prompt_ids and r[3] is not None]
    stalled = [r for r in rows if r[0] == merchants[0].merchant_id]
    report: dict[str, Any] = {
        "load_seconds": round(load_seconds, 1),
        "reads": {"n": len(reads), "p50_ms": round(1000 * _percentile(reads, 0.5), 1),
                  "p99_ms": round(1000 * _percentile(reads, 0.99), 1)},
        "uploads": {"n": len(uploads), "p50_ms": round(1000 * _percentile(uploads, 0.5), 1),
                    "p99_ms": round(1000 * _percentile(uploads, 0.99), 1)},
        "errors": len(errors), "error_kinds": sorted(set(errors)), "jobs_unfinished_at_end": unfinished,
        "prompt_merchants_webhooks": {"deliveries": sum(1 for r in rows if r[0] in prompt_ids),
                                      "delivered": len(lags), "pending": len(pending),
                                      "lag_p50_s": round(_percentile(lags, 0.5), 2),
                                      "lag_p99_s": round(_percentile(lags, 0.99), 2),
                                      "lag_max_s": round(max(lags), 2) if lags else None,
                                      "lag_mean_s": round(statistics.fmean(lags), 2) if lags else None},
        "stalled_merchant_webhooks": {"deliveries": len(stalled),
                                      "delivered": sum(1 for r in stalled if r[1] == "delivered"),
                                      "receiver_connections": stall.connections},
    }
    print(report)


if __name__ == "__main__":
    main()
