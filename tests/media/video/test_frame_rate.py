"""How the output frame rate is chosen from the probed one (rates of the shared media and common cameras)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from media_service.media.video.presets import PROFILES, exact_rate, output_fps

BUYER, PROMO = PROFILES["buyer_show"], PROFILES["promo"]


@pytest.mark.parametrize(("probed", "buyer", "promo"), [
    (25 / 2, Fraction(25, 2), Fraction(25, 2)),  # 12.5 fps: was rounded down to 12
    (30000 / 1001, Fraction(30000, 1001), Fraction(30000, 1001)),
    (24000 / 1001, Fraction(24000, 1001), Fraction(24000, 1001)),
    (179 / 6, Fraction(179, 6), Fraction(179, 6)),  # bottle-detection.mp4: was 30 (7 frames added)
    (2997 / 100, Fraction(30000, 1001), Fraction(30000, 1001)),  # bear-vp9: 29.97 written as 2997/100
    (25.0, Fraction(25), Fraction(25)),
    (60.0, Fraction(30), Fraction(60)),  # capped as before
    (810000 / 13487, Fraction(30), Fraction(60)),  # portrait_4k60.mp4: 60.06 average (VFR)
    (39600 / 1321, Fraction(30000, 1001), Fraction(30000, 1001)),  # iphone_rotated.mov: jittery 29.97
    (580000 / 21007, Fraction(28), Fraction(28)),  # pixel motion photo: VFR average 27.61
    (60000 / 1001, Fraction(30000, 1001), Fraction(60000, 1001)),  # halved: every other frame kept
    (50.0, Fraction(25), Fraction(50)),
    (120.0, Fraction(30), Fraction(60)),
    (40.0, Fraction(30), Fraction(40)),  # halving would give 20: capped instead
    (1000.0, Fraction(30), Fraction(60)),
    (8.0, Fraction(12), Fraction(12)),  # the floor: frames repeated, none dropped
    (None, Fraction(30), Fraction(30)),
    (0.0, Fraction(30), Fraction(30)),
    (float("nan"), Fraction(30), Fraction(30)),
])
def test_output_fps(probed: float | None, buyer: Fraction, promo: Fraction) -> None:
    assert output_fps(BUYER, probed) == buyer
    assert output_fps(PROMO, probed) == promo


def test_exact_rate_reads_back_simple_fractions_only() -> None:
    assert exact_rate(12.5) == Fraction(25, 2) and exact_rate(30000 / 1001) == Fraction(30000, 1001)
    assert exact_rate(580000 / 21007) is None
    assert exact_rate(Fraction(30000, 1001)) == Fraction(30000, 1001)
