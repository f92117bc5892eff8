"""The ``media-service`` command line, run as a real subprocess like an operator would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import media, service_env


def cli(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "media_service", *args], env=service_env(data_dir),
                            capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_merchant_import_and_jobs(data_dir: Path) -> None:
    cli(data_dir, "db", "upgrade")
    created = json.loads(cli(data_dir, "merchants", "create", "Corner shop", "--json").stdout)
    assert created["api_key"].startswith("msk_") and created["merchant_id"].startswith("mer_")
    assert "Corner shop" in cli(data_dir, "merchants", "list").stdout
    text = cli(data_dir, "merchants", "create", "Second shop").stdout
    assert "shown once" in text

    imported = cli(data_dir, "assets", "import", str(media("panorama/hill/1.JPG")), "--merchant",
                   created["merchant_id"])
    assert "ast_" in imported.stdout
    refused = cli(data_dir, "assets", "import", str(media("SOURCES.md")), "--merchant", created["merchant_id"],
                  check=False)
    assert refused.returncode == 1 and "unsupported_media_type" in refused.stderr

    jobs = cli(data_dir, "jobs", "list").stdout
    assert "assets.thumbnail" in jobs and "queued" in jobs
    job_id = jobs.split()[0]
    assert json.loads(cli(data_dir, "jobs", "show", job_id).stdout)["state"] == "queued"
    assert "cancelled" in cli(data_dir, "jobs", "cancel", job_id).stdout
    waited = cli(data_dir, "jobs", "wait", job_id, check=False)
    assert waited.returncode == 1 and "cancelled" in waited.stdout
    assert "queued" in cli(data_dir, "jobs", "retry", job_id).stdout


def test_jobs_wait_shows_progress_until_done(data_dir: Path) -> None:
    from tests.conftest import start_worker, stop_process

    cli(data_dir, "db", "upgrade")
    merchant = json.loads(cli(data_dir, "merchants", "create", "Shop", "--json").stdout)
    cli(data_dir, "assets", "import", str(media("video/flower.mp4")), "--merchant", merchant["merchant_id"])
    job_id = cli(data_dir, "jobs", "list").stdout.split()[0]
    worker = start_worker(data_dir)
    try:
        waited = cli(data_dir, "jobs", "wait", job_id, "--timeout", "60")
    finally:
        stop_process(worker)
    assert "succeeded" in waited.stdout and "100%" in waited.stdout


def test_doctor_and_config(data_dir: Path) -> None:
    doctor = cli(data_dir, "doctor")
    assert "[ok  ] ffmpeg" in doctor.stdout and "libx264=yes" in doctor.stdout
    assert "storage" in doctor.stdout and "database" in doctor.stdout
    listing = cli(data_dir, "config").stdout
    assert "MEDIA_SERVICE_DATA_DIR" in listing and "MEDIA_SERVICE_MAX_UPLOAD_BYTES" in listing


def test_unknown_env_setting_stops_the_cli(data_dir: Path) -> None:
    env = service_env(data_dir)
    env["MEDIA_SERVICE_MAX_UPLOADS"] = "1"
    result = subprocess.run([sys.executable, "-m", "media_service", "doctor"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0 and "MAX_UPLOADS" in result.stderr
