"""What one claim costs the service, apart from contention: CPU time, SQL statements and write transactions.

The claims bench (``campaign_claims.py``) measures round trips under load, which on a shared machine mostly
measures the machine. This one runs claims one at a time in-process (the Flask test client on a real
campaign, real SQLite) and reports, per accepted and per rejected (``missed``) claim: the median wall and
CPU time (``time.process_time``: this process's CPU, much less sensitive to other processes' load), the
SQL statements run and how many took SQLite's write lock (``BEGIN IMMEDIATE``) or wrote.

    PYTHONPATH=$PWD .venv/bin/python bench/campaign_claim_cost.py --viewers 30
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.*

from tests.features.campaigns.conftest import make_world
from tests.features.campaigns.test_campaigns_api import Viewer, embed_token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=30, help="Sessions: one rejected and one accepted claim each.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        world = next(make_world(Path(tmp), CAMPAIGN_CLOCK_SLACK_SECONDS=1.0, SHOPPER_RATE_BURST=100000,
                                CAMPAIGN_CLAIM_BURST=100))
        campaign = world.create(fragments=4, seed=11)
        world.client.post(f"/v1/campaigns/{campaign['id']}/publish", headers=world.merchant.headers)
        token = embed_token(world, campaign["id"])
        statements: list[str] = []
        engine = world.app.extensions["database"].engine

        @event.listens_for(engine, "before_cursor_execute")
        def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(" ".join(statement.split()[:2]).upper())

        viewers = [Viewer(world, token) for _ in range(args.viewers)]
        for viewer in viewers:
            viewer.schedule(0.0)
        first = min(viewers[0].items, key=lambda i: viewers[0].items[i]["start"])
        samples: dict[str, list[dict[str, Any]]] = {"rejected": [], "accepted": []}
        for viewer in viewers:
            t, x, y = viewer.centre(first)
            viewer.wait_until(t)
            for kind, (cx, cy) in (("rejected", (min(1.0, x + 0.3), min(1.0, y + 0.3))), ("accepted", (x, y))):
                time.sleep(0.3)  # a person's pace: never too_fast
                statements.clear()
                wall, cpu = time.perf_counter(), time.process_time()
                response = viewer.claim(first, t, cx, cy)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                assert (response.status_code == 200) == (kind == "accepted"), response.json
                samples[kind].append({"wall": wall * 1000, "cpu": cpu * 1000, "sql": len(statements),
                                      "writes": sum(s.split()[0] in ("INSERT", "UPDATE", "DELETE")
                                                    for s in statements if s),
                                      "write_locks": sum(s.startswith("BEGIN IMMEDIATE") for s in statements)})
        rejected = world.app.extensions.get("campaign_rejected_claims")
        if rejected is not None:
            rejected.flush()  # before the folder goes
        world.app.extensions["database"].dispose()

    def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"claims": len(rows), "median_wall_ms": round(statistics.median(r["wall"] for r in rows), 2),
                "median_cpu_ms": round(statistics.median(r["cpu"] for r in rows), 2),
                "sql_statements": statistics.median(r["sql"] for r in rows),
                "writes": statistics.median(r["writes"] for r in rows),
                "write_locks": statistics.median(r["write_locks"] for r in rows)}

    print(json.dumps({kind: summary(rows) for kind, rows in samples.items()} | {
        "load_average": os.getloadavg(), "cpus": os.cpu_count(),
        "note": "in-process (Flask test client), SQLite; shared machine"}, indent=2))


if __name__ == "__main__":
    main()
