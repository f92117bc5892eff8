"""Spins: revolution detection on turntable videos rendered here, photo-set ordering, framing, outputs."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from media_service.media.panorama.build import build_spin_from_photos, build_spin_from_video, spin_options
from media_service.media.panorama.errors import StitchingError
from media_service.media.spin import (
    SpinFrames,
    SpinOptions,
    SpinPhoto,
    detect_revolution,
    equalize_exposure,
    even_picks,
    frame_on_product,
    natural_key,
    order_photos,
)
from media_service.media.video.ffmpeg import run_ffmpeg
from tests.conftest import SHARED_MEDIA, media
from tests.support.options import spin_limits
from tests.support.panorama.helpers import SPINS, save_artifact
from tests.support.panorama.turntable import write_turntable_video

CIVIC = SHARED_MEDIA / "spin" / "civic_52"


def civic_photos() -> list[SpinPhoto]:
    media("spin/civic_52/1.png")
    return [SpinPhoto(path, path.name) for path in CIVIC.glob("*.png")]


def check_manifest(out: Path, manifest: dict, frames: int) -> None:
    """Everything the manifest names exists, and it agrees with itself."""
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert manifest["frame_count"] == frames == len(manifest["order"])
    assert manifest["degrees_per_frame"] == pytest.approx(360 / frames, abs=1e-3)
    assert [o["index"] for o in manifest["order"]] == list(range(frames))
    assert [o["angle"] for o in manifest["order"]] == pytest.approx([i * 360 / frames for i in range(frames)], abs=1e-2)
    widths = [s["width"] for s in manifest["sizes"]]
    assert widths and widths == sorted(widths)
    for size in manifest["sizes"]:
        for template in size["paths"].values():
            for index in range(frames):
                path = out / template.format(index=index)
                with Image.open(path) as image:
                    assert image.size == (size["width"], size["height"])
                    assert not image.getexif()
    sprite = manifest["sprite"]
    with Image.open(out / sprite["path"]) as image:
        assert image.size == (sprite["columns"] * sprite["frame_width"], sprite["rows"] * sprite["frame_height"])
    assert sprite["columns"] * sprite["rows"] >= frames


@pytest.mark.parametrize(("degrees_per_frame", "frames"), [(3.3, 170), (5.0, 110), (7.2, 75)])
def test_revolution_of_a_rendered_turntable_video_is_found_within_one_frame(
        tmp_path: Path, degrees_per_frame: float, frames: int) -> None:
    video = write_turntable_video(tmp_path / "turntable.mp4", degrees_per_frame=degrees_per_frame, frames=frames,
                                  scratch=tmp_path / "render")
    out = tmp_path / "spin"
    out.mkdir()
    manifest = build_spin_from_video(video, out, SPINS, SpinOptions(frames=36))
    truth = 360.0 / degrees_per_frame
    assert frames / truth >= 1.0  # the video holds more than one turn
    assert abs(manifest["revolution"]["period_frames"] - truth) <= 1.0, manifest["revolution"]
    # 36 views at even angles: each source frame is within one frame of k * 10 degrees
    for entry in manifest["order"]:
        shown_angle = entry["video_frame"] * degrees_per_frame
        assert abs(shown_angle - entry["angle"]) <= degrees_per_frame + 1e-6, entry
    check_manifest(out, manifest, 36)
    with Image.open(out / manifest["sprite"]["path"]) as sprite:
        save_artifact(f"spin_sprite_box_{degrees_per_frame}", cv2.cvtColor(np.asarray(sprite), cv2.COLOR_RGB2BGR),
                      width=None)


def test_civic_frames_rendered_into_a_video_give_a_52_frame_revolution(tmp_path: Path) -> None:
    """The real 52-frame spin set, encoded by ffmpeg over one and a half turns (78 frames)."""
    video = tmp_path / "civic.mp4"
    run_ffmpeg(["-stream_loop", "1", "-framerate", "24", "-f", "image2", "-i", str(CIVIC / "%d.png"),
                "-frames:v", "78", "-vf", "format=rgba,split[a][b];[a]drawbox=c=white:t=fill[w];[w][b]overlay,"
                "scale=1000:448", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-y", str(video)], timeout=120)
    out = tmp_path / "spin"
    out.mkdir()
    manifest = build_spin_from_video(video, out, SPINS, spin_options(24, {}, SPINS))
    assert abs(manifest["revolution"]["period_frames"] - 52) <= 1.0
    check_manifest(out, manifest, 24)


def test_a_video_that_never_turns_is_refused(tmp_path: Path) -> None:
    video = tmp_path / "noise.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "nullsrc=s=320x240:r=25:d=4,geq=random(1)*255:128:128", "-c:v", "libx264",
                "-pix_fmt", "yuv420p", "-y", str(video)], timeout=60)
    out = tmp_path / "spin"
    out.mkdir()
    with pytest.raises(StitchingError) as caught:
        build_spin_from_video(video, out, SPINS, SpinOptions(frames=36))
    assert caught.value.code in {"no_revolution", "video_too_short"} and "turn" in caught.value.detail


def test_detect_revolution_on_a_synthetic_sequence() -> None:
    """Pure numpy: a texture sliding around a cylinder, 1.6 turns, period 45.5 frames."""
    rng = np.random.default_rng(3)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (40, 400)).astype(np.float32), (0, 0), 10)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX)
    period = 45.5
    frames = np.stack([np.roll(texture, round(t / period * 400), axis=1)[:, :120] for t in range(73)])
    found = detect_revolution(frames.astype(np.uint8))
    assert abs(found.period - period) <= 1.0 and found.confidence > 0.5


def test_photo_set_is_ordered_numerically_and_thinned_evenly(tmp_path: Path) -> None:
    out = tmp_path / "spin"
    out.mkdir()
    manifest = build_spin_from_photos(civic_photos(), out, SPINS, spin_options(None, {}, SPINS))
    assert manifest["ordered_by"] == "name"
    assert [o["photo"] for o in manifest["order"]] == [f"{i}.png" for i in range(1, 53)]
    check_manifest(out, manifest, 52)

    thinned_out = tmp_path / "thinned"
    thinned_out.mkdir()
    thinned = build_spin_from_photos(civic_photos(), thinned_out, SPINS,
                                     spin_options(36, {"clean_background": True}, SPINS))
    picked = [int(o["photo"].removesuffix(".png")) for o in thinned["order"]]
    assert picked == [i + 1 for i in even_picks(52, 36)] and picked[0] == 1
    steps = np.diff(picked)
    assert steps.min() >= 1 and steps.max() <= 2  # 52 views spread evenly over 36
    check_manifest(thinned_out, thinned, 36)
    with Image.open(thinned_out / "frames/320/000.jpg") as first:
        corner = np.asarray(first.convert("RGB"))[:5, :5].reshape(-1, 3)
    assert corner.min() >= 245  # a clean white backdrop
    with Image.open(thinned_out / thinned["sprite"]["path"]) as sprite:
        save_artifact("spin_sprite_civic", cv2.cvtColor(np.asarray(sprite), cv2.COLOR_RGB2BGR), width=None)


def test_capture_time_wins_over_names(tmp_path: Path) -> None:
    start = datetime(2026, 5, 1, 12, 0, 0)
    names = ["a-3.jpg", "a-1.jpg", "a-2.jpg"]
    times = [start + timedelta(seconds=s) for s in (0, 2, 1)]
    assert order_photos(names, times) == ([0, 2, 1], "capture_time")
    assert order_photos(names, [None, *times[1:]]) == ([1, 2, 0], "name")
    assert sorted(["10.png", "9.png", "1.png"], key=natural_key) == ["1.png", "9.png", "10.png"]

    photos = []
    for name, moment in zip(names, times, strict=True):
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9003] = moment.strftime("%Y:%m:%d %H:%M:%S")
        path = tmp_path / name
        Image.new("RGB", (64, 48), (200, 30 * len(photos), 40)).save(path, "JPEG", exif=exif.tobytes())
        photos.append(SpinPhoto(path, name))
    photos.append(SpinPhoto(tmp_path / "a-4.jpg", "a-4.jpg"))
    Image.new("RGB", (64, 48)).save(photos[-1].path, "JPEG")
    out = tmp_path / "spin"
    out.mkdir()
    manifest = build_spin_from_photos(photos[:3], out, SPINS, spin_options(None, {}, SPINS))
    assert manifest["ordered_by"] == "capture_time"
    assert [o["photo"] for o in manifest["order"]] == ["a-3.jpg", "a-2.jpg", "a-1.jpg"]


def test_frames_are_centred_and_scaled_on_the_product() -> None:
    """Hand-held photos: the product drifts and changes size; every output frame has it centred, same height."""
    frames = []
    for shift, size in ((0, 60), (40, 80), (-30, 50), (10, 70)):
        image = np.full((240, 320, 3), 250, np.uint8)
        cv2.rectangle(image, (160 + shift - size // 3, 120 - size // 2), (160 + shift + size // 3, 120 + size // 2),
                      (180, 40, 40), -1)
        frames.append(image)
    _framed, masks, summary = frame_on_product(SpinFrames(frames, [{}] * 4, "photos"), SpinOptions())
    assert summary["mode"] == "per_frame"
    heights, centres = [], []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        heights.append(ys.max() - ys.min())
        centres.append(((xs.max() + xs.min()) / 2, (ys.max() + ys.min()) / 2))
    assert max(heights) - min(heights) <= 3
    width, height = summary["width"], summary["height"]
    for x, y in centres:
        assert abs(x - width / 2) <= 2 and abs(y - height / 2) <= 2


def test_exposure_is_equalised() -> None:
    base = np.full((100, 100, 3), 180, np.uint8)
    cv2.circle(base, (50, 50), 20, (60, 90, 200), -1)
    darker = (base * 0.85).astype(np.uint8)
    masks = [np.where(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) < 150, 255, 0).astype(np.uint8) for f in (base, darker)]
    adjusted, gains = equalize_exposure([base, base, darker], [masks[0], masks[0], masks[1]])
    levels = [float(np.median(frame[:10, :10])) for frame in adjusted]
    assert max(levels) - min(levels) <= 2 and gains[2] > 1.1


def test_spin_options_are_validated() -> None:
    with pytest.raises(ValueError, match="frames must be one of"):
        spin_options(30, {}, SPINS)
    with pytest.raises(ValueError, match="unknown option"):
        spin_options(36, {"sparkle": True}, SPINS)
    with pytest.raises(ValueError, match="background_color"):
        spin_options(36, {"background_color": "white"}, SPINS)
    assert spin_options(72, {"widths": [200, 100]}, SPINS).widths == (100, 200)
    assert math.isclose(360 / 72, 5.0)


def test_video_refusals_say_what_to_change(tmp_path: Path) -> None:
    video = write_turntable_video(tmp_path / "fast.mp4", degrees_per_frame=7.2, frames=75, scratch=tmp_path / "r")
    out = tmp_path / "spin"
    out.mkdir()
    with pytest.raises(StitchingError) as too_many:
        build_spin_from_video(video, out, SPINS, SpinOptions(frames=72))
    assert too_many.value.code == "revolution_too_short" and "only 50 video frames" in too_many.value.detail
    with pytest.raises(StitchingError) as too_long:
        build_spin_from_video(video, out, spin_limits(SPIN_MAX_VIDEO_SECONDS=1.0), SpinOptions(frames=24))
    assert too_long.value.code == "video_too_long" and "trim it" in too_long.value.detail
