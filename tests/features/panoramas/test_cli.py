"""``media-service panoramas stitch`` and ``media-service spins build``, run as an operator would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.conftest import media, service_env
from tests.support.panorama.turntable import write_turntable_video


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "media_service", *args], env=service_env(data_dir),
                          capture_output=True, text=True, timeout=300)


def test_panoramas_stitch(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pano"
    done = cli(data_dir, "panoramas", "stitch", *(str(media(f"panorama/pier/{i}.JPG")) for i in (2, 3, 1)),
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "All 3 photos were used." in done.stdout and "spherical" in done.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    with Image.open(out / "panorama.jpg") as image:
        assert image.size == (manifest["image"]["width"], manifest["image"]["height"])
    assert (out / "preview.jpg").exists() and (out / "tiles" / "0" / "0_0.jpg").exists()


def test_panoramas_stitch_explains_a_bad_set(data_dir: Path, tmp_path: Path) -> None:
    done = cli(data_dir, "panoramas", "stitch", str(media("panorama/hill/1.JPG")), str(media("panorama/pier/1.JPG")),
               "--out", str(tmp_path / "pano"))
    assert done.returncode == 1
    assert "no_overlap" in done.stderr and "was left out" in done.stderr and "Traceback" not in done.stderr


def test_spins_build_from_video_and_photos(data_dir: Path, tmp_path: Path) -> None:
    video = write_turntable_video(tmp_path / "t.mp4", degrees_per_frame=6.0, frames=90, scratch=tmp_path / "r")
    done = cli(data_dir, "spins", "build", "--video", str(video), "--frames", "24", "--out", str(tmp_path / "v"))
    assert done.returncode == 0, done.stderr
    assert "24 frames; one turn = 60.0 video frames" in done.stdout
    photos = [str(media(f"spin/civic_52/{i}.png")) for i in (3, 1, 2, 4, 5, 6)]
    done = cli(data_dir, "spins", "build", *photos, "--out", str(tmp_path / "p"))
    assert done.returncode == 0, done.stderr
    assert "6 frames; ordered by name" in done.stdout
    usage = cli(data_dir, "spins", "build", "--out", str(tmp_path / "x"))
    assert usage.returncode == 2 and "either photo FILES or --video" in usage.stderr
