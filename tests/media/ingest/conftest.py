"""Fixtures of the ingest tests: default limits and a session-wide folder of generated hostile files."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_service.media.ingest import IngestLimits, configure_image_limits
from tests.support.options import ingest_limits


@pytest.fixture(scope="session")
def settings() -> IngestLimits:
    """The ingest limits at the service's default settings (no app, no data folder needed)."""
    limits = ingest_limits()
    configure_image_limits(limits)
    return limits


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for generated files that are expensive to make and safe to share between tests."""
    return tmp_path_factory.mktemp("hostile")
