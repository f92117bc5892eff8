"""Weights files are checked against the manifest's sha256 before anything reads them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from media_service.media.detection.model_files import ModelFileError, check_manifest, load_weights
from tests.support import hostile


def _manifest(folder: Path, sha256: str) -> None:
    (folder / "manifest.json").write_text(json.dumps({"models": [
        {"name": "detector", "file": "model.pt", "sha256": sha256, "source": "trained by the merchant"}]}))


def test_missing_and_tampered_weights_are_refused_before_loading(tmp_path: Path) -> None:
    _manifest(tmp_path, "0" * 64)
    with pytest.raises(ModelFileError, match="missing"):
        load_weights("detector", tmp_path)
    # a pickle payload named model.pt whose hash is not the manifest's: refused without being opened
    hostile.pickle_model(tmp_path, tmp_path / "PLANTED")
    with pytest.raises(ModelFileError, match="sha256"):
        load_weights("detector", tmp_path)
    assert not (tmp_path / "PLANTED").exists()
    assert [ok for _line, ok in check_manifest(tmp_path)] == [False]
    with pytest.raises(ModelFileError, match="no model"):
        load_weights("other", tmp_path)


def test_manifest_check_reports_intact_files(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(b"weights")
    _manifest(tmp_path, hashlib.sha256(b"weights").hexdigest())
    assert [ok for _line, ok in check_manifest(tmp_path)] == [True]
    assert next(iter(check_manifest(tmp_path / "empty")))[1] is True
