"""Fixtures of the ingest tests: default settings and a session-wide folder of generated hostile files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from media_service.config import SETTINGS
from media_service.media.ingest import configure_image_limits


@pytest.fixture(scope="session")
def settings() -> dict[str, Any]:
    """Every setting at its documented default (no app, no data folder needed)."""
    values = {s.name: s.default for s in SETTINGS}
    configure_image_limits(values)
    return values


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for generated files that are expensive to make and safe to share between tests."""
    return tmp_path_factory.mktemp("hostile")
