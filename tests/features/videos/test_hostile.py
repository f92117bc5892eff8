"""SECURITY.md's hostile inputs 1-8 and 10 against video processing.

Through the API each file gets a clear 4xx at upload, or it is accepted and then processed safely (the
job succeeds with clean outputs or fails with a clear error code, never ``internal_error``). The
pipeline itself is also fed the playlist tricks directly, as if validation had been bypassed: the
demuxer is forced from the content and only the file protocol is allowed, so nothing is fetched or read.
A canary file and a 127.0.0.1 listener detect any local read or outbound connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from media_service.errors import MediaServiceError
from tests.conftest import MerchantCredentials, media, wait_for_job
from tests.support import hostile
from tests.support.videos import ffprobe

Maker = Callable[[Path, hostile.Canary], Path]

CASES: dict[str, Maker] = {
    "1_avi_embedded_hls": lambda d, c: hostile.avi_with_embedded_hls(d, c.file_url),
    "2_hls_as_mp4_file": lambda d, c: hostile.hls_playlist_as_mp4(d, c.file_url, "file.mp4"),
    "2_hls_as_mp4_http": lambda d, c: hostile.hls_playlist_as_mp4(d, c.url, "http.mp4", bom=True),
    "3_ffconcat_as_mov": lambda d, c: hostile.ffconcat_as_mov(d, c.path),
    "4_dash_as_mp4": lambda d, c: hostile.dash_manifest_as_mp4(d, f"http://{c.host}:{c.port}/"),
    "5_truncated_moov_first": lambda d, c: hostile.truncated_mp4(d, moov_first=True),
    "5_truncated_moov_last": lambda d, c: hostile.truncated_mp4(d, moov_first=False),
    "6_huge_frame": lambda d, c: hostile.huge_frame_video(d),
    "6_ten_hours": lambda d, c: hostile.ten_hour_video(d),
    "7_many_streams": lambda d, c: hostile.many_streams_video(d),
    "7_negative_timestamps": lambda d, c: hostile.negative_timestamps_video(d),
    "7_jumping_timestamps": lambda d, c: hostile.jumping_timestamps_video(d),
    "8_phone_gps_rotation": lambda d, c: media("video/iphone_rotated.mov"),
    "10_bit_flipped_mp4": lambda d, c: hostile.bit_flipped_mp4(d),
    "10_bit_flipped_mp4_b": lambda d, c: hostile.bit_flipped_mp4(d, seed=11),
}


@pytest.fixture
def trap() -> Iterator[hostile.Canary]:
    with hostile.canary() as canary:
        yield canary


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_upload_then_processing(app: Flask, client: FlaskClient, merchant: MerchantCredentials,
                                        worker: object, tmp_path: Path, trap: hostile.Canary, case: str) -> None:
    path = CASES[case](tmp_path, trap)
    uploaded = client.post("/v1/assets", headers=merchant.headers, content_type="multipart/form-data",
                           data={"file": (BytesIO(path.read_bytes()), path.name)})
    outputs: list[Any] = [uploaded.data]
    if uploaded.status_code >= 400:
        assert 400 <= uploaded.status_code < 500 and uploaded.mimetype == "application/problem+json"
        assert uploaded.json["detail"]
    else:
        started = client.post("/v1/videos", headers=merchant.headers,
                              json={"asset_id": uploaded.json["id"], "profile": "buyer_show"})
        assert started.status_code == 202, started.json
        job = wait_for_job(app, started.json["job"]["id"], timeout=120)
        video = client.get(f"/v1/videos/{started.json['id']}", headers=merchant.headers).json
        outputs.append(str(video))
        if job.state == "failed":
            assert job.error["code"] not in ("internal_error", "worker_lost"), job.error
            assert job.error["detail"]
        else:
            assert video["state"] == "ready"
            out = Path(app.config["STORAGE_ROOT"]) / job.result["output_prefix"]
            probe = ffprobe(out / "video.mp4")
            tags = {k.lower() for s in probe["streams"] for k in (s.get("tags") or {})}
            tags |= {k.lower() for k in probe["format"].get("tags") or {}}
            assert not {t for t in tags if "location" in t or "gps" in t or "xyz" in t or "model" in t}, tags
            outputs += [out / "hls" / "master.m3u8", out / "storyboard.vtt"]
    trap.assert_untouched(*outputs)


@pytest.mark.parametrize("case", ["1_avi_embedded_hls", "2_hls_as_mp4_file", "2_hls_as_mp4_http", "3_ffconcat_as_mov",
                                  "4_dash_as_mp4"])
def test_pipeline_refuses_playlists_even_without_validation(run_pipeline: Callable[..., dict[str, Any]],
                                                            tmp_path: Path, trap: hostile.Canary, case: str) -> None:
    path = CASES[case](tmp_path, trap)
    with pytest.raises(MediaServiceError) as caught:
        run_pipeline(path)
    assert 400 <= caught.value.status < 500 and caught.value.code != "internal_error"
    trap.assert_untouched(caught.value)


def test_pipeline_fails_cleanly_on_a_renamed_playlist_inside_a_valid_header(
        run_pipeline: Callable[..., dict[str, Any]], tmp_path: Path, trap: hostile.Canary) -> None:
    """An MP4 header followed by a playlist: the forced mov demuxer finds no playable stream."""
    mp4 = hostile.small_mp4(tmp_path, seconds=1.0)
    path = tmp_path / "mixed.mp4"
    path.write_bytes(mp4.read_bytes()[:64] + hostile.hls_text(trap.file_url).encode())
    with pytest.raises(MediaServiceError) as caught:
        run_pipeline(path)
    assert caught.value.code != "internal_error"
    trap.assert_untouched(caught.value)
