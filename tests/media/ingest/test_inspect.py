"""inspect_media on the real shared corpus (all accepted) and on the hostile corpus (all refused or safe).

For each hostile file the canary listener must see no connection and the canary's secret must appear in
no output or error: "no local read, no outbound connection" is checked, not assumed.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest

from media_service.errors import InvalidMedia, MediaServiceError, UnsupportedMediaType
from media_service.media.ingest import IngestLimits, MediaFacts, inspect_media
from tests.conftest import SHARED_MEDIA
from tests.support import hostile
from tests.support.hostile import Canary, canary
from tests.support.options import ingest_limits

IMAGE_SIZES: dict[str, tuple[int, int]] = {
    "panorama/hill": (400, 300),
    "panorama/pier": (501, 375),
    "panorama/berlin": (3264, 2448),
    "spin/civic_52": (1000, 447),
    "spin/buddha_orbit": (1368, 770),
    "products/catalog": (1360, 1190),
    "logos/moviepy_logo.png": (431, 120),
    "logos/python_logo.png": (260, 77),
    "logos/scikit-video_logo.png": (268, 264),
    "logos/solidus_logo.png": (185, 36),
}

# display size, duration (s), has audio, rotation (clockwise), format
VIDEOS: dict[str, tuple[tuple[int, int], float, bool, int, str]] = {
    "logos/transparent_dot_vp9_alpha.webm": ((200, 200), 5.0, True, 0, "webm"),
    "video/bear-vp9-odd-dimensions.webm": ((161, 121), 1.001, False, 0, "webm"),
    "video/bigbuckbunny.mp4": ((1280, 720), 5.312, True, 0, "mp4"),
    "video/bottle-detection.mp4": ((640, 360), 39.855, False, 0, "mp4"),
    "video/dolbyVision-hdr.MOV": ((720, 1280), 0.107, True, 90, "mov"),
    "video/flower.mp4": ((960, 540), 5.055, True, 0, "mp4"),
    "video/friday.mp4": ((640, 480), 6.166, True, 0, "mp4"),
    "video/iphone_rotated.mov": ((320, 568), 2.202, True, 90, "mov"),
    "video/nasa_13013.mp4": ((320, 180), 16.570, True, 0, "mp4"),
    "video/pixel-motion-photo-2-hevc-tracks.mp4": ((768, 1024), 2.101, False, 90, "mp4"),
    "video/portrait_4k60.mp4": ((2160, 3840), 0.313, True, 90, "mp4"),
    "video/sample_android_slow_motion.mp4": ((1280, 720), 0.526, False, 0, "mp4"),
    "video/sample_portrait.mp4": ((720, 1080), 1.089, True, 0, "mp4"),
    "video/sample_rotate_and_reflect.mp4": ((720, 1080), 1.024, True, 90, "mp4"),
}


def _shared_images() -> list[str]:
    return sorted(str(p.relative_to(SHARED_MEDIA)) for p in SHARED_MEDIA.rglob("*")
                  if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".gif", ".webp"})


def _expected_size(relative: str) -> tuple[int, int]:
    for prefix, size in IMAGE_SIZES.items():
        if relative == prefix or relative.startswith(prefix + "/"):
            return size
    if relative.startswith("products/validation/"):  # sizes vary (240-1440 px): OpenCV's decoder is the reference
        height, width = cv2.imread(str(SHARED_MEDIA / relative), cv2.IMREAD_UNCHANGED).shape[:2]
        return width, height
    raise AssertionError(f"add {relative} to IMAGE_SIZES")


@pytest.mark.parametrize("relative", _shared_images())
def test_every_shared_image_is_accepted(relative: str, settings: IngestLimits) -> None:
    facts = inspect_media(SHARED_MEDIA / relative, settings)
    expected_format = "png" if relative.lower().endswith(".png") else "jpeg"
    assert (facts.kind, facts.format, facts.mime) == ("image", expected_format, f"image/{expected_format}")
    assert (facts.width, facts.height) == _expected_size(relative)
    assert facts.frames == 1 and facts.duration is None
    assert facts.details["has_location_metadata"] is relative.startswith("panorama/berlin/")


def test_all_shared_images_are_covered() -> None:
    assert len(_shared_images()) == 3 * 3 + 52 + 13 + 14 + 42 + 4  # panorama, civic, buddha, catalog, validation, logos


@pytest.mark.parametrize("relative", sorted(VIDEOS))
def test_every_shared_video_is_accepted(relative: str, settings: IngestLimits) -> None:
    (width, height), duration, has_audio, rotation, fmt = VIDEOS[relative]
    facts = inspect_media(SHARED_MEDIA / relative, settings)
    assert (facts.kind, facts.format) == ("video", fmt)
    assert facts.mime == {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm"}[fmt]
    assert (facts.width, facts.height) == (width, height)
    assert facts.duration == pytest.approx(duration, abs=0.002)
    assert facts.details["has_audio"] is has_audio
    assert facts.details["rotation"] == rotation
    assert facts.details["packets_end_time"] is not None


def test_every_shared_video_is_covered() -> None:
    videos = {str(p.relative_to(SHARED_MEDIA)) for p in (SHARED_MEDIA / "video").iterdir()}
    assert videos <= set(VIDEOS)


def test_facts_are_json_serialisable(settings: IngestLimits) -> None:
    import json

    for relative in ("video/nasa_13013.mp4", "panorama/berlin/01.jpg"):
        facts = inspect_media(SHARED_MEDIA / relative, settings)
        json.dumps(facts.details)


# ----------------------------------------------------------------------------------- the hostile corpus

Maker = Callable[[Path, Canary], Path]
E415, E422, h = UnsupportedMediaType, InvalidMedia, hostile  # short names keep the table readable

# (case, maker, error class, expected reason / detected text)
REFUSED: list[tuple[str, Maker, type[MediaServiceError], str]] = [
    ("1 avi+hls http", lambda d, c: h.avi_with_embedded_hls(d, c.url), E415, "AVI"),
    ("1 avi+hls file", lambda d, c: h.avi_with_embedded_hls(d, c.file_url), E415, "AVI"),
    ("1 avi+hls concat", lambda d, c: h.avi_with_embedded_hls(d, f"concat:{c.path}|{c.path}"),
     E415, "AVI"),
    ("2 hls.mp4 file", lambda d, c: h.hls_playlist_as_mp4(d, c.file_url), E415, "HLS"),
    ("2 hls.mp4 url", lambda d, c: h.hls_playlist_as_mp4(d, c.url), E415, "HLS"),
    ("2 hls.mp4 bom+ws", lambda d, c: h.hls_playlist_as_mp4(d, c.url, bom=True, leading_whitespace="\n \t"),
     E415, "HLS"),
    ("2 hls.mp4 bare path", lambda d, c: h.hls_playlist_as_mp4(d, str(c.path)), E415, "HLS"),
    ("3 ffconcat.mov", lambda d, c: h.ffconcat_as_mov(d, c.path), E415, "concat"),
    ("4 dash.mp4", lambda d, c: h.dash_manifest_as_mp4(d, c.url.rsplit("/", 1)[0] + "/"),
     E415, "DASH"),
    ("5 truncated moov first", lambda d, c: h.truncated_mp4(d, moov_first=True), E422, "truncated"),
    ("5 truncated moov last", lambda d, c: h.truncated_mp4(d, moov_first=False), E422, "truncated"),
    ("6 8192x8192", lambda d, c: h.huge_frame_video(d), E422, "too_many_pixels"),
    ("6 ten hours", lambda d, c: h.ten_hour_video(d), E422, "too_long"),
    ("7 100 streams", lambda d, c: h.many_streams_video(d), E422, "too_many_streams"),
    ("7 timestamps jump 11 h", lambda d, c: h.jumping_timestamps_video(d, 40000), E422, "too_long"),
    ("9 png pixel bomb", lambda d, c: h.png_pixel_bomb(d), E422, "too_many_pixels"),
    ("9 png text bomb", lambda d, c: h.png_text_chunk_bomb(d), E422, "oversized_metadata"),
    ("9 gif 10000 frames", lambda d, c: h.gif_many_frames(d), E422, "too_many_frames"),
    ("10 jpeg cut 60%", lambda d, c: h.jpeg_cut(d), E422, "truncated"),
    ("11 html named .jpg", lambda d, c: h.html_named_jpg(d), E415, "HTML"),
    ("11 fits.png", lambda d, c: h.disguised_documents(d)["fits"], E415, "FITS"),
    ("11 postscript.jpg", lambda d, c: h.disguised_documents(d)["postscript"], E415,
     "PostScript"),
    ("11 psd.png", lambda d, c: h.disguised_documents(d)["psd"], E415, "PSD"),
    ("11 zip.jpg", lambda d, c: h.disguised_documents(d)["zip"], E415, "ZIP"),
    ("14 pickle model.pt", lambda d, c: h.pickle_model(d, d / "unpickled-marker"), E415,
     "pickle"),
]


@pytest.mark.parametrize(("case", "make", "error", "expected"), REFUSED, ids=[r[0] for r in REFUSED])
def test_hostile_file_is_refused(tmp_path: Path, settings: IngestLimits, case: str, make: Maker,
                                 error: type[MediaServiceError], expected: str) -> None:
    with canary() as trap:
        path = make(tmp_path, trap)
        started = time.monotonic()
        with pytest.raises(error) as caught:
            inspect_media(path, settings)
        elapsed = time.monotonic() - started
        time.sleep(0.05)  # a late connection attempt would still reach the listener
        trap.assert_untouched(caught.value, caught.value.to_problem())
    refusal = caught.value
    assert 400 <= refusal.status < 500
    assert elapsed < 10, f"{case} took {elapsed:.1f} s to refuse"
    label = refusal.extra.get("reason") or refusal.extra.get("detected")
    assert expected.lower() in str(label).lower(), refusal.to_problem()
    # Every detail says what to do about it.
    assert any(word in refusal.detail for word in ("upload", "export", "resize", "trim", "shorten")), \
        refusal.detail
    assert not (tmp_path / "unpickled-marker").exists(), "the pickle was loaded"


def test_gps_jpeg_is_accepted_with_its_facts(tmp_path: Path, settings: IngestLimits) -> None:
    """8. A JPEG with GPS EXIF and orientation 6: accepted; GPS flagged so outputs strip it."""
    facts = inspect_media(hostile.jpeg_with_gps(tmp_path), settings)
    assert (facts.kind, facts.format) == ("image", "jpeg")
    assert (facts.width, facts.height) == (48, 64), "display size is after EXIF orientation"
    assert facts.details["orientation"] == 6
    assert facts.details["has_location_metadata"] is True


def test_phone_videos_with_gps_are_flagged(settings: IngestLimits) -> None:
    """8. Phone videos with location tags and a rotation flag are accepted and flagged."""
    facts = inspect_media(SHARED_MEDIA / "video/iphone_rotated.mov", settings)
    assert facts.details["has_location_metadata"] is True and facts.details["rotation"] == 90
    flower = inspect_media(SHARED_MEDIA / "video/flower.mp4", settings)
    assert flower.details["has_location_metadata"] is False


def test_negative_timestamps_are_processed_safely(tmp_path: Path, settings: IngestLimits) -> None:
    """7. Negative timestamps: accepted; the duration is what the packets really span."""
    facts = inspect_media(hostile.negative_timestamps_video(tmp_path), settings)
    assert facts.kind == "video" and facts.duration is not None and 0 < facts.duration <= 1.1


def test_jumping_timestamps_within_the_limit_are_processed_safely(tmp_path: Path,
                                                                 settings: IngestLimits) -> None:
    """7. A 100 s jump: accepted with the real span (so a transcode knows it is ~101 s long)."""
    facts = inspect_media(hostile.jumping_timestamps_video(tmp_path, 100), settings)
    assert facts.duration == pytest.approx(101.0, abs=0.5)
    assert facts.details["packets_end_time"] == pytest.approx(101.0, abs=0.5)


def test_jpeg_html_polyglot_is_accepted_as_a_jpeg(tmp_path: Path, settings: IngestLimits) -> None:
    """11. A real JPEG with HTML in a comment: accepted as image/jpeg; safe because we never serve the
    original bytes as HTML and re-encode what we publish."""
    facts = inspect_media(hostile.jpeg_html_polyglot(tmp_path), settings)
    assert (facts.kind, facts.mime, facts.width, facts.height) == ("image", "image/jpeg", 64, 48)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_bit_flipped_files_are_refused_or_processed_safely(tmp_path: Path, settings: IngestLimits,
                                                          seed: int) -> None:
    """10. Random bit flips: either a clean 4xx or accepted with sane facts; never another exception."""
    for path, kind in ((hostile.bit_flipped_jpeg(tmp_path, seed), "image"),
                       (hostile.bit_flipped_mp4(tmp_path, seed), "video")):
        try:
            facts: MediaFacts | None = inspect_media(path, settings)
        except (InvalidMedia, UnsupportedMediaType) as refused:
            assert 400 <= refused.status < 500
            facts = None
        if facts is not None:
            assert facts.kind == kind and facts.width and facts.height
            assert facts.width * facts.height <= settings.max_image_pixels
            if kind == "video":
                assert facts.duration is not None and 0 < facts.duration <= settings.max_video_seconds


@pytest.mark.parametrize("name", [n for n in hostile.HOSTILE_FILENAMES if "/" not in n and "\x00" not in n])
def test_hostile_names_change_nothing(tmp_path: Path, settings: IngestLimits, corpus_dir: Path,
                                      name: str) -> None:
    """13. The name is never interpreted: an MP4 called "-rf.mp4" or "concat:a|b" is just that MP4."""
    clean = corpus_dir / "named_source.mp4"
    if not clean.exists():
        hostile.small_mp4(corpus_dir, clean.name, seconds=0.5, size="32x24")
    target = tmp_path / name[:200]
    shutil.copyfile(clean, target)
    facts = inspect_media(target, settings)
    assert (facts.kind, facts.format, facts.width, facts.height) == ("video", "mp4", 32, 24)


def test_frame_size_limit_is_exact(settings: IngestLimits) -> None:
    """161x121 = 19,481 pixels: accepted at exactly that cap, refused one pixel below (our own check on
    the probed size; the decoders' -max_pixels guard only stops frames far above the cap)."""
    bear = SHARED_MEDIA / "video/bear-vp9-odd-dimensions.webm"
    assert inspect_media(bear, ingest_limits(MAX_VIDEO_PIXELS=19481)).width == 161
    with pytest.raises(InvalidMedia) as caught:
        inspect_media(bear, ingest_limits(MAX_VIDEO_PIXELS=19480))
    assert caught.value.extra["reason"] == "too_many_pixels" and "161x121" in caught.value.detail


def test_tighter_limits_come_from_settings(tmp_path: Path, settings: IngestLimits) -> None:
    small = ingest_limits(MAX_VIDEO_SECONDS=1.0, MAX_VIDEO_PIXELS=100 * 100, MAX_VIDEO_STREAMS=1)
    with pytest.raises(InvalidMedia) as caught:
        inspect_media(SHARED_MEDIA / "video/flower.mp4", ingest_limits(MAX_VIDEO_SECONDS=1.0))
    assert caught.value.extra["reason"] == "too_long"
    with pytest.raises(InvalidMedia) as caught:
        inspect_media(SHARED_MEDIA / "video/bear-vp9-odd-dimensions.webm", small)
    assert caught.value.extra["reason"] == "too_many_pixels"
    with pytest.raises(InvalidMedia) as caught:
        inspect_media(SHARED_MEDIA / "video/flower.mp4", ingest_limits(MAX_VIDEO_STREAMS=1))
    assert caught.value.extra["reason"] == "too_many_streams"
    with pytest.raises(InvalidMedia) as caught:
        inspect_media(SHARED_MEDIA / "panorama/hill/1.JPG", ingest_limits(MAX_IMAGE_PIXELS=1000))
    assert caught.value.extra["reason"] == "too_many_pixels" and "400x300" in caught.value.detail


def test_empty_file_is_refused(tmp_path: Path, settings: IngestLimits) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InvalidMedia, match="empty"):
        inspect_media(empty, settings)


def test_audio_only_mp4_is_refused(tmp_path: Path, settings: IngestLimits) -> None:
    path = tmp_path / "voice.mp4"
    hostile._ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(path))
    with pytest.raises(InvalidMedia) as caught:
        inspect_media(path, settings)
    assert caught.value.extra["reason"] == "no_video_stream"


@pytest.mark.slow
def test_packet_check_stays_fast_on_a_1_gib_file(tmp_path: Path, settings: IngestLimits) -> None:
    """The packet check copies packets without decoding: a 1 GiB MP4 is inspected in seconds."""
    big = tmp_path / "big.mp4"
    source = SHARED_MEDIA / "video/flower.mp4"
    hostile._ffmpeg("-stream_loop", "950", "-i", str(source), "-c", "copy", str(big))
    assert big.stat().st_size > 1_000_000_000
    started = time.monotonic()
    facts = inspect_media(big, ingest_limits(MAX_VIDEO_SECONDS=10_000.0))
    assert time.monotonic() - started < 15
    assert facts.duration == pytest.approx(951 * 5.04, rel=0.01)
    with pytest.raises(InvalidMedia) as caught:
        inspect_media(hostile.truncate_copy(big, tmp_path, 0.5), ingest_limits(MAX_VIDEO_SECONDS=10_000.0))
    assert caught.value.extra["reason"] == "truncated"
