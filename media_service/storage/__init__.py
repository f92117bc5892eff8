"""Storage backends; the config names the implementation (``STORAGE_BACKEND``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from media_service.storage.base import Storage, StoredObject, check_key, sha256_file
from media_service.storage.filesystem import FileSystemStorage

__all__ = ["FileSystemStorage", "Storage", "StoredObject", "check_key", "make_storage", "sha256_file", "uploads_dir"]


def make_storage(settings: Mapping[str, Any]) -> Storage:
    """The storage backend the settings name."""
    backend = settings["STORAGE_BACKEND"]
    if backend == "filesystem":
        return FileSystemStorage(settings["STORAGE_ROOT"])
    raise ValueError(f"unknown storage backend {backend!r}")


def uploads_dir(settings: Mapping[str, Any]) -> Path:
    """Where partial uploads (tus parts, multipart spools) live: in the data folder, on the same filesystem as
    local storage, so finishing an upload is a rename."""
    path = Path(settings["DATA_DIR"]) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path
