"""The tone-mapping choice with the real ffmpeg: zscale is found usable for PQ and HLG (checked on a frame
tagged like the source), a broken or missing ffmpeg falls back to the matrix, engines stay below the
service layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_service.errors import ProcessingError
from media_service.media.video import tonemap
from media_service.media.video.ffmpeg import has_filter
from tests.support.videos import FFMPEG


@pytest.mark.parametrize("transfer", [tonemap.PQ, tonemap.HLG])
def test_zscale_is_chosen_for_pq_and_hlg(transfer: str) -> None:
    method, chain = tonemap.tonemap_chain("auto", FFMPEG, transfer=transfer, primaries="bt2020", matrix="bt2020nc")
    assert method == "zscale"
    assert f"tin={transfer}" in chain and "tonemap=tonemap=hable" in chain


def test_the_capability_check_needs_a_tagged_frame() -> None:
    """zimg cannot convert a frame whose colours are unspecified: the reason the check tags its frame."""
    legacy = "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0"
    assert not has_filter(FFMPEG, "zscale", f"format=yuv420p10le,{legacy},format=yuv420p")
    assert has_filter(FFMPEG, "zscale", tonemap.capability_graph(legacy, tonemap.PQ))


def test_colorspace_mode_and_a_missing_ffmpeg_use_the_matrix_fallback(tmp_path: Path) -> None:
    assert tonemap.tonemap_chain("colorspace", FFMPEG, transfer=tonemap.PQ) == ("colorspace",
                                                                               tonemap.COLORSPACE_CHAIN)
    missing = str(tmp_path / "no-ffmpeg")
    assert tonemap.tonemap_chain("auto", missing, transfer=tonemap.HLG)[0] == "colorspace"


def test_an_unknown_mode_is_a_setting_error() -> None:
    with pytest.raises(ProcessingError) as caught:
        tonemap.tonemap_chain("hable", FFMPEG)
    assert caught.value.code == "bad_setting"


def test_untagged_dolby_vision_is_read_as_pq() -> None:
    assert tonemap.hdr_transfer(None) == tonemap.PQ and tonemap.hdr_transfer("bt709") == tonemap.PQ
    assert "tin=smpte2084:pin=bt2020:min=bt2020nc" in tonemap.zscale_chain(None, "unknown", None)
