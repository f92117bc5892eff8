"""Every JSON endpoint of the OpenAPI document, fed hypothesis-made hostile bodies and headers: never a 5xx.

Bodies: nesting far past any real body (up to 20,000 levels), big strings, every JSON type where an
object is expected, non-ASCII keys and values, bytes that are not UTF-8. Headers: odd Idempotency-Key,
Origin, Content-Type and Accept values. Each answer must be below 500, and every error problem+json.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media_service import create_app
from media_service.db import upgrade
from tests.conftest import add_merchant, make_test_config

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30)


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["deep_list", "deep_object", "big_string", "any_json", "non_ascii", "bytes",
                                 "wrong_types"]))
    if kind == "deep_list":
        depth = draw(st.integers(33, 20_000))
        return b"[" * depth + b"]" * depth
    if kind == "deep_object":
        depth = draw(st.integers(33, 20_000))
        return b'{"a":' * depth + b"0" + b"}" * depth
    if kind == "big_string":
        size = draw(st.sampled_from([10_000, 500_000, 1_100_000]))
        return json.dumps({"url": "é" * (size // 2), "events": ["x" * size]}).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "non_ascii":
        keys = draw(st.lists(st.text(alphabet=st.characters(min_codepoint=0x80), min_size=1, max_size=8), max_size=4))
        return json.dumps({k: draw(st.text(max_size=20)) for k in keys}, ensure_ascii=False).encode()
    if kind == "wrong_types":
        fields = ["url", "events", "allowed_origins", "origins", "target_id", "asset_id", "asset_ids", "profile",
                  "sku", "title", "price", "ttl_seconds", "cart_token", "quantity", "t", "x", "y", "state"]
        return json.dumps({f: draw(JSON_VALUES) for f in draw(st.lists(st.sampled_from(fields), max_size=6))}).encode()
    return json.dumps(draw(JSON_VALUES)).encode()


LATIN = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                max_size=60)
HEADERS = st.fixed_dictionaries({}, optional={
    "Idempotency-Key": LATIN, "Origin": LATIN, "Accept": LATIN,
    "Content-Type": st.sampled_from(["application/json", "application/json; charset=latin-1", "text/plain",
                                     "application/json; charset=utf-16", "application/merge-patch+json"])})


def _json_operations(app: Any) -> list[tuple[str, str]]:
    document = app.test_client().get("/v1/openapi.json").json
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = (operation.get("requestBody") or {}).get("content", {}) if isinstance(operation, dict) else {}
            if "application/json" in content:
                found.append((method, re.sub(r"\{[^}]+\}", "x_1", path)))
    return found


def test_hostile_bodies_and_headers_never_get_a_server_error(tmp_path: Path) -> None:
    app = create_app(make_test_config(tmp_path))
    upgrade(app.config["DATABASE_URL"])
    auth = add_merchant(app, "Hostile shop").headers
    client = app.test_client()
    operations = _json_operations(app)
    assert len(operations) >= 12, operations
    tried: list[int] = []

    @given(operation=st.sampled_from(operations), body=hostile_bodies(), headers=HEADERS, signed=st.booleans())
    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(operation: tuple[str, str], body: bytes, headers: dict[str, str], signed: bool) -> None:
        method, path = operation
        sent = {"Content-Type": "application/json", **headers, **(auth if signed else {})}
        response = client.open(path, method=method.upper(), data=body, headers=sent)
        tried.append(response.status_code)
        assert response.status_code < 500, (method, path, response.status_code, response.data[:300])
        if response.status_code >= 400:
            assert response.mimetype == "application/problem+json", (method, path, response.status_code)
            assert response.json["code"]

    check()
    print(f"hostile JSON cases tried: {len(tried)}, 5xx: {sum(s >= 500 for s in tried)}")
    app.extensions["database"].dispose()
