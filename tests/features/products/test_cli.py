"""``media-service products import``, ``videos index`` and ``models train-detector``, run as an operator would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import service_env
from tests.support.products.semireal import photo_path
from tests.support.products.shop import Clip

pytestmark = pytest.mark.slow


def cli(data_dir: Path, *args: str, **settings: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "media_service", *args], env=service_env(data_dir, **settings),
                          capture_output=True, text=True, timeout=600)


def test_import_index_train_and_index_with_the_trained_model(data_dir: Path, tmp_path: Path, shop_clip: Clip) -> None:
    assert cli(data_dir, "db", "upgrade").returncode == 0
    merchant = json.loads(cli(data_dir, "merchants", "create", "Shop", "--json").stdout)["merchant_id"]

    sheet = tmp_path / "products.csv"
    sheet.write_text("sku,title,price,currency,url,images\n"
                     f"TOTE-RED,Canvas tote,12.50,EUR,https://shop.example/tote,{photo_path('solidus_canvas_tote.png')}\n"
                     f"CAP-BLACK,Black cap,19,EUR,,{photo_path('solidus_cap_black_1.png')}|"
                     f"{photo_path('solidus_cap_black_2.png')}\n"
                     "BROKEN,No photo file,1,EUR,,missing.png\n")
    imported = cli(data_dir, "products", "import", str(sheet), "--merchant", merchant)
    assert imported.returncode == 1, imported.stderr  # one row failed, the others were imported
    assert "TOTE-RED: added, 1 photo(s)" in imported.stdout and "CAP-BLACK: added, 2 photo(s)" in imported.stdout
    assert "BROKEN" in imported.stderr and "Traceback" not in imported.stderr

    folder = tmp_path / "catalog"
    (folder / "MUG-SET").mkdir(parents=True)
    shutil.copy(photo_path("solidus_mug_set.png"), folder / "MUG-SET" / "front.png")
    shutil.copy(photo_path("solidus_canvas_tote.png"), folder / "TOTE-RED.png")
    again = cli(data_dir, "products", "import", str(folder), "--merchant", merchant, "--skip-existing")
    assert again.returncode == 0, again.stderr
    assert "MUG-SET: added" in again.stdout and "TOTE-RED: exists, skipped" in again.stdout

    out = tmp_path / "index"
    indexed = cli(data_dir, "videos", "index", str(shop_clip.path), "--merchant", merchant, "--out", str(out))
    assert indexed.returncode == 0, indexed.stderr
    assert "2 product track(s)" in indexed.stdout
    assert "TOTE-RED" in indexed.stdout and "CAP-BLACK" in indexed.stdout
    assert (out / "contact_sheet.jpg").stat().st_size > 10_000
    assert {t["sku"] for t in json.loads((out / "tracks.json").read_text())["tracks"]} == {"TOTE-RED", "CAP-BLACK"}

    models = tmp_path / "models"
    trained = cli(data_dir, "models", "train-detector", "--merchant", merchant, "--architecture", "tiny_fasterrcnn",
                  "--steps", "4", "--batch-size", "2", "--image-size", "128", "--device", "cpu",
                  MODELS_DIR=str(models))
    assert trained.returncode == 0, trained.stderr
    manifest = json.loads((models / "manifest.json").read_text())
    assert [m["name"] for m in manifest["models"]] == [f"detector-{merchant}"]
    assert "loss" in trained.stdout and "index with it" in trained.stdout
    doctor = cli(data_dir, "doctor", MODELS_DIR=str(models))
    assert f"detector-{merchant}: detector-{merchant}.pt ok" in doctor.stdout or "ok" in doctor.stdout

    with_model = cli(data_dir, "videos", "index", str(shop_clip.path), "--merchant", merchant, "--detector",
                     "torchvision", MODELS_DIR=str(models), TORCHVISION_MIN_SCORE="0.99")
    assert with_model.returncode == 0, with_model.stderr  # an untrained model finds little; the path works
    assert "product track(s)" in with_model.stdout

    unknown = cli(data_dir, "videos", "index", str(shop_clip.path), "--merchant", "mer_nobody")
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
