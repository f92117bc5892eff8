"""Fixtures of the video tests: a folder of generated clips, a storage on a temp folder, and a runner of the
real pipeline (the clip makers and ffprobe helpers are in ``tests/support/videos.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from media_service.config import load_settings
from media_service.features.videos.job import process_video
from media_service.storage import FileSystemStorage


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide folder for generated clips (each helper makes its clip once)."""
    return tmp_path_factory.mktemp("clips")


# --------------------------------------------------------------------------------------- running the pipeline


@pytest.fixture(scope="session")
def pipeline_settings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("pipeline-data")
    return load_settings({"DATA_DIR": str(data)}, environ={})


@pytest.fixture(scope="session")
def storage(pipeline_settings: dict[str, Any]) -> FileSystemStorage:
    return FileSystemStorage(pipeline_settings["STORAGE_ROOT"])


@pytest.fixture(scope="session")
def run_pipeline(storage: FileSystemStorage, pipeline_settings: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """``run_pipeline(path, profile="buyer_show", options=None, prefix=None, **settings)`` -> result dict
    (with ``out``: the folder of the published outputs)."""
    counter = iter(range(10_000))

    def run(path: Path, profile: str = "buyer_show", options: dict[str, bool] | None = None,
            prefix: str | None = None, **overrides: Any) -> dict[str, Any]:
        number = next(counter)
        key = f"assets/test/{number}/original{path.suffix.lower()}"
        storage.put_file(key, path)
        prefix = prefix or f"jobs/test/{number}"
        progress: list[float] = []
        result = process_video(storage, {**pipeline_settings, **overrides}, source_key=key, profile_name=profile,
                               options=options or {}, output_prefix=prefix, report=progress.append)
        result["out"] = storage.root / prefix
        result["progress_reported"] = progress
        return result

    return run
