"""Property-based requests generated from our own OpenAPI document (schemathesis): never a 5xx.

Bounded: a few examples per operation, against the real app on a temporary SQLite file and disk. The
operations are driven with hypothesis directly (schemathesis' pytest plugin does not load under this
pytest version).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from media_service import create_app
from media_service.db import upgrade
from tests.conftest import add_merchant, make_test_config

# tus PATCH bodies are plain bytes, like application/octet-stream
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


def test_no_generated_request_gets_a_server_error(tmp_path: Path) -> None:
    app = create_app(make_test_config(tmp_path))
    upgrade(app.config["DATABASE_URL"])
    auth = add_merchant(app, "Fuzz shop").headers
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    calls = 0

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            nonlocal calls
            for headers in (auth, {}):
                response = case.call(headers={**(case.headers or {}), **headers})
                calls += 1
                if case.path == "/v1/health" and response.status_code == 503:
                    # ?require=workers with no worker running here: health's documented answer, not a crash
                    assert response.json()["status"] == "degraded"
                    continue
                case.validate_response(response, checks=(not_a_server_error,))
                if response.status_code >= 400 and case.method.upper() != "HEAD":
                    content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", "")
                    content_type = content_type[0] if isinstance(content_type, list) else content_type
                    assert content_type.startswith("application/problem+json"), \
                        (case.method, case.path, response.status_code, response.text[:200])

        try:
            check()
        except Exception as exc:  # name the operation that failed
            pytest.fail(f"{operation.method.upper()} {operation.path}: {exc}")
    assert calls > 100
    app.extensions["database"].dispose()
