"""Model weights on disk: ``models/manifest.json`` lists each file with its sha256 and source.

Nothing is downloaded here, ever: a missing file is reported with where to get it. Loading verifies the
sha256 first and uses ``torch.load(weights_only=True)``, so a pickle payload named ``.pt`` is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media_service.errors import MediaServiceError

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


class ModelFileError(MediaServiceError):
    code = "model_file_error"
    title = "Model weights unusable"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    file: str
    sha256: str
    source: str


def read_manifest(models_dir: Path = MODELS_DIR) -> list[ModelEntry]:
    path = models_dir / "manifest.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return [ModelEntry(name=m["name"], file=m["file"], sha256=m["sha256"], source=m.get("source", ""))
            for m in data.get("models", [])]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_manifest(models_dir: Path = MODELS_DIR) -> Iterator[tuple[str, bool]]:
    """One line per manifest entry: present and intact, or what is wrong."""
    entries = read_manifest(models_dir)
    if not entries:
        yield f"no weights listed in {models_dir / 'manifest.json'} (the catalog detector needs none)", True
    for entry in entries:
        path = models_dir / entry.file
        if not path.exists():
            yield f"{entry.name}: {entry.file} missing; get it from {entry.source or 'its source'}", False
        elif _sha256(path) != entry.sha256:
            yield f"{entry.name}: {entry.file} has the wrong sha256; download it again", False
        else:
            yield f"{entry.name}: {entry.file} ok", True


def load_weights(name: str, models_dir: Path = MODELS_DIR) -> dict[str, Any]:
    """The state dict of manifest entry ``name``, after checking its sha256; never unpickles code."""
    entry = next((e for e in read_manifest(models_dir) if e.name == name), None)
    if entry is None:
        raise ModelFileError(f"no model {name!r} in {models_dir / 'manifest.json'}; add it with its sha256")
    path = models_dir / entry.file
    if not path.exists():
        raise ModelFileError(f"weights file {path} is missing; get it from {entry.source or 'its source'}")
    if _sha256(path) != entry.sha256:
        raise ModelFileError(f"weights file {path} does not match the manifest's sha256; download it again")
    return load_state_dict(path)


def load_state_dict(path: Path) -> dict[str, Any]:
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise ModelFileError(f"{path.name} is not a plain weights file (refused to unpickle it): {exc}") from exc
    if not isinstance(state, dict):
        raise ModelFileError(f"{path.name} does not hold a state dict")
    return state
