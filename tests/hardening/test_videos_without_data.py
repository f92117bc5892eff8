"""Videos whose index promises frames that cannot be read are refused at upload (422 no_media_data).

Before, the packet check's "0 seconds of packets" was read as "unknown" and skipped, so these files were
accepted as "2.0 s, 50 frames" and every job on them failed. External data references are never
followed: the alias points at a valid video, so following it would make the upload pass.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.conftest import MerchantCredentials
from tests.hardening.isobmff import empty_sample_tables, external_reference
from tests.support import hostile


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hostile.small_mp4(tmp_path_factory.mktemp("videos"))


@pytest.fixture
def trap() -> Iterator[hostile.Canary]:
    with hostile.canary() as canary:
        yield canary


def _upload(client: FlaskClient, merchant: MerchantCredentials, path: Path):  # type: ignore[no-untyped-def]
    return client.post("/v1/assets", headers=merchant.headers, content_type="multipart/form-data",
                       data={"file": (BytesIO(path.read_bytes()), path.name)})


@pytest.mark.parametrize("container", ["mp4", "mov"])
def test_a_reference_movie_is_refused_and_not_followed(client: FlaskClient, merchant: MerchantCredentials,
                                                       source: Path, tmp_path: Path, trap: hostile.Canary,
                                                       container: str) -> None:
    original = tmp_path / f"original.{container}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c", "copy", str(original)], check=True)
    elsewhere = tmp_path / f"elsewhere.{container}"
    shutil.copy(original, elsewhere)  # a perfectly valid target: following the reference would pass
    path = external_reference(original, tmp_path / f"reference.{container}", str(elsewhere))
    response = _upload(client, merchant, path)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["reason"] == "no_media_data"
    trap.assert_untouched(response.data)


def test_a_url_data_reference_reads_only_this_file(client: FlaskClient, merchant: MerchantCredentials,
                                                   source: Path, tmp_path: Path, trap: hostile.Canary) -> None:
    """ffmpeg ignores 'url ' entries and reads the samples from the upload itself: valid, and nothing fetched."""
    path = external_reference(source, tmp_path / "url_reference.mp4", trap.url, kind="url")
    response = _upload(client, merchant, path)
    assert response.status_code == 201, response.json
    assert response.json["duration"] == pytest.approx(2.0, abs=0.1)
    trap.assert_untouched(response.data)


def test_empty_sample_tables_are_refused(client: FlaskClient, merchant: MerchantCredentials, source: Path,
                                         tmp_path: Path) -> None:
    response = _upload(client, merchant, empty_sample_tables(source, tmp_path / "empty.mp4"))
    assert response.status_code == 422, response.json
    assert response.json["reason"] == "no_media_data"


def test_the_intact_source_is_still_accepted(client: FlaskClient, merchant: MerchantCredentials,
                                             source: Path) -> None:
    response = _upload(client, merchant, source)
    assert response.status_code == 201, response.json
