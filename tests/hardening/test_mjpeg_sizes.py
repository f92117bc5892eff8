"""Motion JPEG frames each declare their own size: a later frame may not exceed what the pipeline processes.

ffprobe reads the first frame only, so a clip whose first frames are 320x240 and whose later JPEGs declare
65535x65535 (or 7000x7000, or 320x8000) was accepted at upload; the 7000x7000 and 320x8000 ones then made
every processing job fail. The packet check now reads every frame's SOF header and refuses such clips
with a 422 that says which frame and what to do.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from media_service.errors import InvalidMedia
from media_service.media.ingest import inspect_media
from media_service.media.ingest.videos import JpegFrameSizes
from tests.conftest import MerchantCredentials
from tests.support import hostile
from tests.support.options import ingest_limits

SOI, SOF0 = b"\xff\xd8\xff", b"\xff\xc0"


def _mjpeg(folder: Path, container: str = "mov", size: str = "320x240") -> Path:
    """A real 2-second Motion JPEG clip (50 frames) made by ffmpeg."""
    path = folder / f"mjpeg_{size}.{container}"
    hostile._ffmpeg("-f", "lavfi", "-i", f"testsrc=size={size}:rate=25:duration=2", "-c:v", "mjpeg",
                    "-q:v", "5", "-pix_fmt", "yuvj420p", str(path))
    return path


def _frame_starts(data: bytes) -> list[int]:
    starts, at = [], data.find(SOI)
    while at >= 0:
        starts.append(at)
        at = data.find(SOI, at + 3)
    return starts


def _declare_later_frames(source: Path, target: Path, width: int, height: int, *, first: int = 10,
                          count: int | None = None) -> Path:
    """A copy of ``source`` whose JPEG frames from number ``first`` (0-based) declare ``width`` x ``height``
    in their SOF0 header (FFC0, length, precision, height, width); the scan data is left as it is."""
    data = bytearray(source.read_bytes())
    starts = _frame_starts(bytes(data))
    assert len(starts) >= first + 1, "the clip should hold one JPEG per frame"
    for start in starts[first:first + count if count else None]:
        sof = data.find(SOF0, start)
        assert data[sof + 5:sof + 9] == (240).to_bytes(2, "big") + (320).to_bytes(2, "big")
        data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    target.write_bytes(bytes(data))
    return target


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _mjpeg(tmp_path_factory.mktemp("mjpeg"))


@pytest.mark.parametrize(("width", "height", "count", "reason"), [
    (65535, 65535, 1, "unsupported_frame_size"),  # one frame, the size any 16-bit SOF header allows
    (7000, 7000, None, "unsupported_frame_size"),  # 49 Mpx: processing failed on it (ffmpeg exit 69)
    (320, 8000, None, "unsupported_aspect"),  # within the pixel and side limits, 25 times taller than wide
])
def test_a_later_frame_declaring_an_unprocessable_size_is_refused(clip: Path, tmp_path: Path, width: int,
                                                                  height: int, count: int | None,
                                                                  reason: str) -> None:
    path = _declare_later_frames(clip, tmp_path / "patched.mov", width, height, count=count)
    with pytest.raises(InvalidMedia) as refused:
        inspect_media(path, ingest_limits())
    assert refused.value.extra["reason"] == reason
    assert f"{width}x{height}" in refused.value.detail
    assert "frame 11 " in refused.value.detail  # the first patched frame, 1-based


@pytest.mark.parametrize("container", ["mov", "mkv"])
def test_a_normal_motion_jpeg_clip_is_accepted(tmp_path: Path, container: str) -> None:
    facts = inspect_media(_mjpeg(tmp_path, container), ingest_limits())
    assert (facts.width, facts.height, facts.details["codec"]) == (320, 240, "mjpeg")
    assert facts.duration == pytest.approx(2.0, abs=0.1)


def test_a_later_frame_of_another_acceptable_size_is_accepted(clip: Path, tmp_path: Path) -> None:
    """Only what the pipeline cannot process is refused: a size change within the limits passes."""
    path = _declare_later_frames(clip, tmp_path / "resized.mov", 640, 480, count=1)
    assert inspect_media(path, ingest_limits()).width == 320


def test_the_upload_api_refuses_it_with_a_clear_problem(client: FlaskClient, merchant: MerchantCredentials,
                                                         clip: Path, tmp_path: Path) -> None:
    path = _declare_later_frames(clip, tmp_path / "huge_frame.mov", 65535, 65535, count=1)
    response = client.post("/v1/assets", headers=merchant.headers, content_type="multipart/form-data",
                           data={"file": (BytesIO(path.read_bytes()), path.name)})
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["reason"] == "unsupported_frame_size"
    assert "65535x65535" in response.json["detail"] and "one frame size" in response.json["detail"]


def test_the_reader_is_independent_of_chunk_boundaries_and_skips_thumbnails(clip: Path) -> None:
    """Fed one byte at a time or whole, the same sizes; a JPEG thumbnail inside an APP1 segment (with its own
    SOI and SOF) is skipped by the segment's length, not taken for a frame."""
    data = clip.read_bytes()
    frames = [data[start:data.find(b"\xff\xd9", start) + 2] for start in _frame_starts(data)]  # SOI..EOI
    thumbnail = b"\xff\xd8" + SOF0 + b"\x00\x11\x08" + (8).to_bytes(2, "big") + (8).to_bytes(2, "big") + bytes(12)
    app1 = b"\xff\xe1" + (2 + len(thumbnail)).to_bytes(2, "big") + thumbnail
    stream = b"".join(frame[:2] + app1 + frame[2:] for frame in frames)

    seen: list[tuple[int, int, int]] = []
    whole = JpegFrameSizes(accept=lambda w, h, n: seen.append((w, h, n)) is None)
    assert whole.feed(stream) is False
    bytewise = JpegFrameSizes(accept=lambda w, h, n: True)
    for at in range(len(stream)):
        bytewise.feed(stream[at:at + 1])
    assert seen == [(320, 240, 1)]
    assert whole.sizes == bytewise.sizes == {(320, 240): 1}
    assert whole.frames == bytewise.frames == len(frames) == 50
