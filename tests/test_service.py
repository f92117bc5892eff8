"""App factory, configuration, authentication, error format, OpenAPI and health."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from media_service import create_app
from media_service.config import load_settings
from media_service.errors import ConfigError
from media_service.models import ApiKey
from tests.conftest import MerchantCredentials


def test_unknown_settings_are_rejected(data_dir: Path) -> None:
    with pytest.raises(ConfigError, match="MAX_UPLOAD_BYTE"):
        create_app({"DATA_DIR": str(data_dir), "MAX_UPLOAD_BYTE": 5})
    with pytest.raises(ConfigError, match="environment"):
        load_settings({"DATA_DIR": str(data_dir)}, environ={"MEDIA_SERVICE_NO_SUCH": "1"})
    (data_dir / "config.toml").write_text("typo_setting = 1\n")
    with pytest.raises(ConfigError, match=r"config\.toml"):
        load_settings({"DATA_DIR": str(data_dir)}, environ={})


def test_settings_precedence(data_dir: Path) -> None:
    (data_dir / "config.toml").write_text("max_upload_bytes = 1000\nworker_concurrency = 3\n")
    settings = load_settings({"DATA_DIR": str(data_dir), "WORKER_CONCURRENCY": 4},
                             environ={"MEDIA_SERVICE_MAX_UPLOAD_BYTES": "2000"})
    assert settings["MAX_UPLOAD_BYTES"] == 2000  # env beats file
    assert settings["WORKER_CONCURRENCY"] == 4  # test_config beats all
    assert settings["DATABASE_URL"] == f"sqlite:///{data_dir.resolve() / 'media-service.db'}"
    with pytest.raises(ConfigError, match="WORKER_CONCURRENCY"):
        load_settings({"DATA_DIR": str(data_dir)}, environ={"MEDIA_SERVICE_WORKER_CONCURRENCY": "many"})


def test_secret_key_is_generated_once_per_data_dir(data_dir: Path) -> None:
    first = load_settings({"DATA_DIR": str(data_dir)}, environ={})["SECRET_KEY"]
    second = load_settings({"DATA_DIR": str(data_dir)}, environ={})["SECRET_KEY"]
    assert first == second and len(first) > 40
    assert (data_dir / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer msk_nope", "Basic abc", "Bearer msk_aa_bb",
                                    "Bearer " + "x" * 5000])
def test_requests_without_a_valid_key_are_401(client: FlaskClient, merchant: MerchantCredentials,
                                              header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get("/v1/assets", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] in {"unauthorized", "invalid_api_key"}


def test_keys_are_stored_hashed(app: Flask, merchant: MerchantCredentials) -> None:
    with app.extensions["database"].session() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.merchant_id == merchant.merchant_id))
        assert merchant.api_key not in (row.key_hash, row.lookup)
        assert len(row.key_hash) == 64
    assert merchant.api_key.startswith("msk_")


def test_revoked_key_is_refused(app: Flask, client: FlaskClient, merchant: MerchantCredentials) -> None:
    from media_service.models import utcnow

    assert client.get("/v1/assets", headers=merchant.headers).status_code == 200
    with app.extensions["database"].session(write=True) as session:
        session.scalar(select(ApiKey).where(ApiKey.merchant_id == merchant.merchant_id)).revoked_at = utcnow()
    assert client.get("/v1/assets", headers=merchant.headers).status_code == 401


def test_unknown_route_and_method_are_problem_json(client: FlaskClient, merchant: MerchantCredentials) -> None:
    missing = client.get("/v1/nothing-here", headers=merchant.headers)
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    wrong = client.put("/v1/assets", headers=merchant.headers)
    assert wrong.status_code == 405 and wrong.json["code"] == "method_not_allowed"


def test_bad_json_is_400(client: FlaskClient, merchant: MerchantCredentials) -> None:
    for kwargs in ({"data": "{not json", "content_type": "application/json"}, {"json": [1, 2]},
                   {"data": "url=x"}, {"json": {"url": 5}}, {"json": {"url": "ftp://x"}}):
        response = client.post("/v1/webhooks", headers=merchant.headers, **kwargs)
        assert response.status_code == 400, kwargs
        assert response.mimetype == "application/problem+json"


def test_webhook_urls_into_private_networks_are_refused(data_dir: Path, merchant: MerchantCredentials) -> None:
    strict = create_app({"DATA_DIR": str(data_dir)})
    for url in ("http://127.0.0.1:9/x", "http://10.0.0.1/x", "http://[::1]/x", "http://169.254.169.254/x"):
        response = strict.test_client().post("/v1/webhooks", json={"url": url}, headers=merchant.headers)
        assert response.status_code == 400 and response.json["code"] == "invalid_webhook_url", url


def test_openapi_matches_the_real_routes(app: Flask, client: FlaskClient) -> None:
    document = client.get("/v1/openapi.json").json
    assert document["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    actual = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/"):
            continue
        path = rule.rule.rstrip("/").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"} | ({"HEAD"} if "HEAD" in rule.methods
                                                          and "GET" not in rule.methods else set()):
            actual.add((path, method))
        if "OPTIONS" in rule.methods and rule.endpoint == "uploads.tus_options":
            actual.add((path, "OPTIONS"))
    documented_without_options = {d for d in documented if d[1] not in {"HEAD", "OPTIONS"}}
    actual_without_options = {a for a in actual if a[1] not in {"HEAD", "OPTIONS"}}
    assert documented_without_options == actual_without_options
    assert ("/v1/uploads/{upload_id}", "HEAD") in documented


def test_landing_page_and_docs(client: FlaskClient) -> None:
    landing = client.get("/")
    assert landing.status_code == 200 and b"/docs" in landing.data
    docs = client.get("/docs")
    assert docs.status_code == 200 and b"/v1/uploads/{upload_id}" in docs.data


def test_health_reports_parts(client: FlaskClient, worker: object) -> None:
    import time

    deadline = time.monotonic() + 20
    while True:
        body = client.get("/v1/health").json
        if body["checks"]["workers"]["alive"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] and body["checks"]["storage"]["ok"]
    assert body["checks"]["ffmpeg"]["version"].startswith(("5.", "6.", "7.", "n"))
    assert body["checks"]["workers"]["alive"] >= 1
    assert client.get("/v1/health?require=workers").status_code == 200


def test_health_without_a_live_worker_is_degraded_and_can_be_required(client: FlaskClient) -> None:
    answer = client.get("/v1/health")  # no worker in this test
    assert answer.status_code == 200 and answer.json["status"] == "degraded"
    assert not answer.json["checks"]["workers"]["ok"]
    required = client.get("/v1/health?require=workers")
    assert required.status_code == 503 and required.json["status"] == "degraded"
    assert client.get("/v1/health?require=nothing").status_code == 400


def test_health_is_503_when_storage_is_not_writable(app: Flask, client: FlaskClient) -> None:
    import shutil

    # A file where storage's scratch folder should be: every write fails, even as root.
    scratch = Path(app.config["STORAGE_ROOT"]) / ".tmp"
    shutil.rmtree(scratch)
    scratch.write_text("in the way")
    response = client.get("/v1/health")
    assert response.status_code == 503
    assert response.json["status"] == "unhealthy" and not response.json["checks"]["storage"]["ok"]
