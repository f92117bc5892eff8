"""open_image_safely and friends: the one way the service opens an uploaded image."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PIL import Image

from media_service.errors import InvalidMedia, UnsupportedMediaType
from media_service.media.ingest import IngestLimits, inspect_media, open_image_safely
from media_service.media.ingest.images import configure_image_limits, open_image_as_array, scan_gif
from tests.conftest import SHARED_MEDIA
from tests.support import hostile
from tests.support.options import ingest_limits


def _animation(path: Path, frames: int, fmt: str, size: tuple[int, int] = (8, 8)) -> Path:
    images = [Image.new("RGB", size, (i * 20 % 256, 0, 0)) for i in range(frames)]
    images[0].save(path, fmt, save_all=True, append_images=images[1:], duration=40, loop=0)
    return path


def test_returns_a_loaded_image(settings: IngestLimits) -> None:
    with open_image_safely(SHARED_MEDIA / "spin/civic_52/1.png", settings) as image:
        assert image.size == (1000, 447)
        assert image.getpixel((0, 0)) is not None  # decoded, no lazy surprise later


def test_exif_transpose_turns_the_image_upright(tmp_path: Path, settings: IngestLimits) -> None:
    path = hostile.jpeg_with_gps(tmp_path)
    with open_image_safely(path, settings) as raw:
        assert raw.size == (64, 48)
    with open_image_safely(path, settings, exif_transpose=True) as upright:
        assert upright.size == (48, 64)


def test_array_for_opencv_is_bgr(tmp_path: Path, settings: IngestLimits) -> None:
    path = tmp_path / "red.png"
    Image.new("RGB", (4, 3), (255, 0, 0)).save(path)
    array = open_image_as_array(path, settings)
    assert array.shape == (3, 4, 3) and array.dtype.name == "uint8"
    assert tuple(array[0, 0]) == (0, 0, 255)
    logo = open_image_as_array(SHARED_MEDIA / "logos/solidus_logo.png", settings)
    assert logo.shape == (36, 185, 4)


def test_videos_are_not_images(settings: IngestLimits) -> None:
    with pytest.raises(UnsupportedMediaType, match="not an image"):
        open_image_safely(SHARED_MEDIA / "video/flower.mp4", settings)


def test_configure_sets_pillow_and_opencv_limits(settings: IngestLimits) -> None:
    before = Image.MAX_IMAGE_PIXELS
    try:
        configure_image_limits(ingest_limits(MAX_IMAGE_PIXELS=12345))
        assert Image.MAX_IMAGE_PIXELS == 12345
        assert os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] == "12345"
    finally:
        configure_image_limits(settings)
    assert Image.MAX_IMAGE_PIXELS == before == settings.max_image_pixels


def test_pillows_stricter_global_limit_also_refuses_cleanly(tmp_path: Path, settings: IngestLimits) -> None:
    """If something lowered Pillow's own limit, its bomb error still becomes a 422 with our wording."""
    path = tmp_path / "wide.png"
    Image.new("L", (300, 300)).save(path)
    try:
        Image.MAX_IMAGE_PIXELS = 10_000  # 90,000 px is > 2x: DecompressionBombError inside Image.open
        with pytest.raises(InvalidMedia) as caught:
            open_image_safely(path, settings)
        assert caught.value.extra["reason"] == "too_many_pixels" and "90,000" in caught.value.detail
        Image.MAX_IMAGE_PIXELS = 60_000  # between 1x and 2x: only a warning, which we turn into an error
        with pytest.raises(InvalidMedia):
            open_image_safely(path, settings)
    finally:
        configure_image_limits(settings)


def test_pixel_bomb_is_refused_before_decoding(tmp_path: Path, settings: IngestLimits) -> None:
    path = hostile.png_pixel_bomb(tmp_path)
    started = time.monotonic()
    with pytest.raises(InvalidMedia) as caught:
        open_image_safely(path, settings)
    assert time.monotonic() - started < 2, "refused from the header, not after decoding 900 MP (minutes)"
    assert "900,000,000" in caught.value.detail and "resize" in caught.value.detail


def test_gif_frames_are_counted_cheaply_and_stop_at_the_cap(tmp_path: Path) -> None:
    path = hostile.gif_many_frames(tmp_path)
    started = time.monotonic()
    scan = scan_gif(path, 1000)
    assert time.monotonic() - started < 2
    assert scan.frames == 1001  # stopped one past the cap
    full = scan_gif(path, 20000)
    assert (full.frames, full.complete) == (10000, True)
    assert full.duration == pytest.approx(200.0)  # 10,000 x 20 ms


def test_animated_gif_and_webp_are_accepted(tmp_path: Path, settings: IngestLimits) -> None:
    gif = inspect_media(_animation(tmp_path / "a.gif", 12, "GIF"), settings)
    assert (gif.format, gif.frames, gif.details["animated"]) == ("gif", 12, True)
    assert gif.duration == pytest.approx(0.48)
    webp = inspect_media(_animation(tmp_path / "a.webp", 5, "WEBP"), settings)
    assert (webp.kind, webp.format, webp.mime, webp.frames) == ("image", "webp", "image/webp", 5)
    still = tmp_path / "s.webp"
    Image.new("RGBA", (30, 20)).save(still, "WEBP")
    facts = inspect_media(still, settings)
    assert (facts.width, facts.height, facts.frames, facts.details["has_alpha"]) == (30, 20, 1, True)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_frame_cap_applies_to_every_animated_format(tmp_path: Path, settings: IngestLimits,
                                                    fmt: str) -> None:
    path = _animation(tmp_path / f"many.{fmt.lower()}", 8, fmt)
    with pytest.raises(InvalidMedia) as caught:
        inspect_media(path, ingest_limits(MAX_GIF_FRAMES=5))
    assert caught.value.extra["reason"] == "too_many_frames"
    assert inspect_media(path, ingest_limits(MAX_GIF_FRAMES=8)).frames == 8


def test_gif_with_one_oversized_frame_is_refused(tmp_path: Path, settings: IngestLimits) -> None:
    path = _animation(tmp_path / "big.gif", 2, "GIF", size=(200, 200))
    with pytest.raises(InvalidMedia) as caught:
        inspect_media(path, ingest_limits(MAX_IMAGE_PIXELS=10_000))
    assert caught.value.extra["reason"] == "too_many_pixels"


@pytest.mark.parametrize("fmt", ["gif", "png", "webp", "jpeg"])
def test_truncated_images_are_refused(tmp_path: Path, settings: IngestLimits, fmt: str) -> None:
    source = tmp_path / f"whole.{fmt}"
    noise = Image.effect_noise((200, 150), 64).convert("RGB")
    noise.save(source, fmt.upper())
    cut = hostile.truncate_copy(source, tmp_path, 0.6)
    with pytest.raises(InvalidMedia) as caught:
        inspect_media(cut, settings)
    assert caught.value.extra["reason"] == "truncated"
    assert "upload it again" in caught.value.detail
