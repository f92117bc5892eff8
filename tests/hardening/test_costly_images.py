"""Images that are cheap to send and costly to decode are refused or checked within bounds.

Measured with real decoders in child processes (peak RSS from the kernel), not estimated.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from media_service.errors import InvalidMedia
from media_service.media.ingest import inspect_media
from tests.conftest import REPO, MerchantCredentials
from tests.hardening.hostile_images import big_flat_png, damaged_png, many_scan_jpeg
from tests.support.options import ingest_limits

MEASURE = """
import json, os, resource, sys
from media_service.media.ingest import inspect_media
from tests.support.options import ingest_limits
pages = int(open("/proc/self/statm").read().split()[0])
headroom = int(sys.argv[3]) * 1024 * 1024
limit = pages * os.sysconf("SC_PAGE_SIZE") + headroom
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    facts = inspect_media(sys.argv[1], ingest_limits(**json.loads(sys.argv[2])))
    print(json.dumps({"size": [facts.width, facts.height]}))
except Exception as exc:
    print(json.dumps({"error": str(exc)[:200], "reason": getattr(exc, "extra", {}).get("reason")}))
"""


def _within(path: Path, headroom_mb: int, **settings: object) -> dict:  # type: ignore[type-arg]
    """Inspect ``path`` in a child whose address space may grow by at most ``headroom_mb`` MiB."""
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path), json.dumps(settings), str(headroom_mb)],
                         cwd=REPO, capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout)


def test_a_jpeg_with_thousands_of_scans_is_refused_before_decoding(client: FlaskClient,
                                                                  merchant: MerchantCredentials,
                                                                  tmp_path: Path) -> None:
    path = many_scan_jpeg(tmp_path, scans=5000, size=(1000, 1000))
    start = time.monotonic()
    response = client.post("/v1/assets", headers=merchant.headers, content_type="multipart/form-data",
                           data={"file": (BytesIO(path.read_bytes()), "scans.jpg")})
    took = time.monotonic() - start
    assert response.status_code == 422 and response.json["reason"] == "too_many_scans", response.json
    assert took < 3.0, took


def test_a_normal_progressive_jpeg_passes(tmp_path: Path) -> None:
    facts = inspect_media(many_scan_jpeg(tmp_path, scans=10, size=(800, 600)), ingest_limits())
    assert (facts.width, facts.height) == (800, 600)


def test_a_heavy_decode_has_a_deadline(tmp_path: Path) -> None:
    path = many_scan_jpeg(tmp_path, scans=100, size=(4000, 4000))
    start = time.monotonic()
    with pytest.raises(InvalidMedia) as refused:
        inspect_media(path, ingest_limits(IMAGE_HEAVY_PIXELS=1_000_000, IMAGE_DECODE_TIMEOUT_SECONDS=0.5))
    assert refused.value.extra["reason"] == "too_costly"
    assert time.monotonic() - start < 5.0


def test_a_big_png_is_validated_in_bounded_memory(tmp_path: Path) -> None:
    """81 MP RGB is 243 MB of pixels: decoded whole it cannot fit in 100 MiB more; streamed it does."""
    path = big_flat_png(tmp_path, 9000, 9000)
    whole = _within(path, 100, IMAGE_HEAVY_PIXELS=10**12)
    bounded = _within(path, 100)
    assert "size" not in whole, whole  # the whole decode needs more: the limit is real
    assert bounded == {"size": [9000, 9000]}, bounded


@pytest.mark.parametrize("truncate", [True, False])
def test_a_damaged_big_png_is_still_refused(tmp_path: Path, truncate: bool) -> None:
    path = damaged_png(big_flat_png(tmp_path, 5000, 4000), tmp_path, truncate=truncate)
    with pytest.raises(InvalidMedia) as refused:
        inspect_media(path, ingest_limits())
    assert refused.value.extra["reason"] == ("truncated" if truncate else "corrupt")
