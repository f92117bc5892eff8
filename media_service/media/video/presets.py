"""Video profiles: what each kind of video becomes (rendition ladder, quality, audio, limits).

A profile is data, not code: the ladder builder, the pipeline and the moderation rules read it. Rungs
are named by the short side of the picture ("720" is 1280x720 landscape or 720x1280 portrait), so a
portrait buyer video and a landscape promo share one ladder. The ladder never upscales: rungs above the
source are replaced by one rung at the source's own (even) size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from media_service.errors import BadRequest


@dataclass(frozen=True)
class Rung:
    """One rendition: its short side in pixels and its rate control."""

    short_side: int
    crf: int
    maxrate_kbps: int

    @property
    def bufsize_kbps(self) -> int:
        return self.maxrate_kbps * 2


@dataclass(frozen=True)
class Profile:
    """Everything a profile decides; see :data:`PROFILES`."""

    name: str
    description: str
    rungs: tuple[Rung, ...]
    x264_preset: str
    max_fps: int
    audio: bool  # False: the outputs carry no audio track (home-page loops play muted anyway)
    audio_bitrate_kbps: int
    max_output_seconds: float | None  # longer inputs are cut to this (home-page banners stay short)
    min_seconds: float  # shorter than this is flagged "too_short"
    needs_approval: bool  # buyer shows are published only after approval (or by the merchant's policy)
    fallback_short_side: int  # the MP4 fallback is the highest rung at or below this size
    preview_seconds: float = 3.0
    loop_friendly: bool = False  # home page: a keyframe every second, so the loop restarts cleanly
    keyframe_seconds: float = 2.0
    extra_x264: tuple[str, ...] = field(default_factory=tuple)


PROFILES: dict[str, Profile] = {
    "buyer_show": Profile(
        name="buyer_show",
        description="Buyers' phone videos: small and quick to start, moderated before publishing.",
        rungs=(Rung(1080, 23, 4500), Rung(720, 23, 2500), Rung(480, 24, 1100)),
        x264_preset="veryfast", max_fps=30, audio=True, audio_bitrate_kbps=128, max_output_seconds=None,
        min_seconds=2.0, needs_approval=True, fallback_short_side=720),
    "promo": Profile(
        name="promo",
        description="Merchants' promo videos: higher quality and bit rate, published at once.",
        rungs=(Rung(1080, 20, 7000), Rung(720, 21, 4000), Rung(480, 22, 1800)),
        x264_preset="faster", max_fps=60, audio=True, audio_bitrate_kbps=160, max_output_seconds=None,
        min_seconds=1.0, needs_approval=False, fallback_short_side=1080),
    "homepage": Profile(
        name="homepage",
        description="Shop home-page banner: muted, short, loop-friendly.",
        rungs=(Rung(1080, 23, 4000), Rung(720, 23, 2200), Rung(480, 24, 1000)),
        x264_preset="veryfast", max_fps=30, audio=False, audio_bitrate_kbps=0, max_output_seconds=30.0,
        min_seconds=1.0, needs_approval=False, fallback_short_side=720, loop_friendly=True,
        keyframe_seconds=1.0),
}

#: Options a caller may set per video, with their defaults.
DEFAULT_OPTIONS: dict[str, bool] = {"stabilize": False, "blur_faces": False}

#: A lower rung is dropped when it is this close (short-side ratio) to the one above: it would add
#: bytes to storage without giving a player a useful step down.
MIN_RUNG_STEP = 0.85


def get_profile(name: object) -> Profile:
    """The profile called ``name``; 400 naming the valid ones otherwise."""
    if not isinstance(name, str) or name not in PROFILES:
        raise BadRequest(f"profile must be one of {', '.join(PROFILES)}", code="invalid_profile")
    return PROFILES[name]


def parse_options(options: object) -> dict[str, bool]:
    """Validate the ``options`` object of a request (unknown keys and non-booleans are a 400)."""
    if options is None:
        return dict(DEFAULT_OPTIONS)
    if not isinstance(options, dict):
        raise BadRequest("options must be an object such as {\"stabilize\": true}", code="invalid_options")
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise BadRequest(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(DEFAULT_OPTIONS)}",
                         code="invalid_options")
    parsed = dict(DEFAULT_OPTIONS)
    for key, value in options.items():
        if not isinstance(value, bool):
            raise BadRequest(f"option {key} must be true or false", code="invalid_options")
        parsed[key] = value
    return parsed


def even(value: float) -> int:
    """Nearest even integer, at least 2 (H.264 4:2:0 needs even sizes)."""
    return max(2, round(value / 2.0) * 2)


@dataclass(frozen=True)
class PlannedRendition:
    """A rung resolved for one source: exact output size and rate control."""

    name: str  # the short side as text: "1080", "720" ...
    width: int
    height: int
    crf: int
    maxrate_kbps: int
    bufsize_kbps: int


def plan_ladder(profile: Profile, display_width: int, display_height: int) -> list[PlannedRendition]:
    """The renditions for a source of this display size, largest first; never upscaled, never empty.

    The short side of each rendition is exact and even, the long side keeps the aspect ratio (rounded
    to even). A rung larger than the source becomes one rung at the source's size, its bit rate scaled
    down by pixel count; rungs too close to the one above are dropped.
    """
    if display_width <= 0 or display_height <= 0:
        raise ValueError("the source has no picture size")
    source_short = min(display_width, display_height)
    source_long = max(display_width, display_height)
    portrait = display_height > display_width
    planned: list[PlannedRendition] = []
    for rung in profile.rungs:
        short = rung.short_side if rung.short_side <= source_short else max(2, source_short - source_short % 2)
        if planned:
            above = int(planned[-1].name)
            if short >= above or short > MIN_RUNG_STEP * above:
                continue
        long = even(source_long * short / source_short)
        width, height = (short, long) if portrait else (long, short)
        template_pixels = rung.short_side * rung.short_side * source_long / source_short
        maxrate = max(150, math.ceil(rung.maxrate_kbps * min(1.0, width * height / template_pixels)))
        planned.append(PlannedRendition(name=str(short), width=width, height=height, crf=rung.crf,
                                        maxrate_kbps=maxrate, bufsize_kbps=maxrate * 2))
    return planned


def fallback_rendition(profile: Profile, renditions: list[PlannedRendition]) -> PlannedRendition:
    """The rung the progressive MP4 fallback is made from: the largest at or below the profile's size."""
    for rendition in renditions:
        if int(rendition.name) <= profile.fallback_short_side:
            return rendition
    return renditions[-1]


#: Broadcast rates kept exact (29.97 stays 30000/1001, so durations stay the same to the frame); a rate
#: within :data:`NTSC_TOLERANCE` of one of them is taken as that rate (phone video jitters around it).
NTSC_RATES = (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(48000, 1001), Fraction(60000, 1001),
              Fraction(120000, 1001))
NTSC_TOLERANCE = 0.02
#: Largest denominator of a rate read back from a probed float (ffprobe's rates are n/d: 25/2, 30000/1001).
MAX_RATE_DENOMINATOR = 1001
#: Slowest output rate: slower sources get repeated frames (nothing is dropped).
MIN_FPS = 12
#: A high rate is divided by a whole number when that lands at least this share of the profile's cap
#: (50 -> 25, 59.94 -> 29.97, 120 -> 30): every n-th frame is kept, so motion stays even.
MIN_DIVIDED_SHARE = 0.75


def exact_rate(source_fps: float | Fraction) -> Fraction | None:
    """The rational rate behind a probed frame rate (12.5 -> 25/2, 29.97002997 -> 30000/1001), or None
    when it is no simple fraction (the average of a variable-rate clip, such as 580000/21007)."""
    if isinstance(source_fps, Fraction):
        return source_fps if source_fps.denominator <= MAX_RATE_DENOMINATOR else None
    rate = Fraction(source_fps).limit_denominator(MAX_RATE_DENOMINATOR)
    return rate if abs(float(rate) - source_fps) <= 1e-9 * source_fps else None


def nominal_rate(source_fps: float | Fraction) -> Fraction:
    """The rate a source is meant to have: a broadcast rate it is close to, else its exact rational
    rate, else (variable-rate averages) the nearest whole number, rounded half up."""
    for rate in NTSC_RATES:
        if abs(float(source_fps) - float(rate)) < NTSC_TOLERANCE:
            return rate
    exact = exact_rate(source_fps)
    if exact is not None:
        return exact
    return Fraction(math.floor(float(source_fps) + 0.5))


def capped_rate(rate: Fraction, max_fps: int) -> Fraction:
    """``rate`` when the profile allows it; else the rate divided by the smallest whole number that
    fits under the cap (every n-th frame kept) when that gives a whole or broadcast rate not much slower
    than the cap; else the cap itself."""
    if rate <= max_fps:
        return rate
    divided = rate / math.ceil(rate / max_fps)
    if divided >= MIN_DIVIDED_SHARE * max_fps and divided.denominator in (1, 1001):
        return divided
    return Fraction(max_fps)


def output_fps(profile: Profile, source_fps: float | Fraction | None) -> Fraction:
    """The constant frame rate of the outputs: the source's own rate, kept rational (12.5 stays 25/2,
    29.97 stays 30000/1001, so no frame is dropped and durations match to the frame), capped by the
    profile (see :func:`capped_rate`) and at least :data:`MIN_FPS`.

    Variable-rate phone video becomes constant-rate here (ffmpeg's ``fps`` filter duplicates or
    drops frames), which every player and the HLS segmenter handle well.
    """
    if not source_fps or not math.isfinite(source_fps) or source_fps <= 0:
        return Fraction(min(30, profile.max_fps))
    rate = nominal_rate(source_fps)
    if float(source_fps) > profile.max_fps + 0.01:
        rate = capped_rate(max(rate, Fraction(profile.max_fps)), profile.max_fps)
    return max(Fraction(MIN_FPS), min(rate, Fraction(profile.max_fps)))
