"""The validation set: products nobody tuned on, pasted into real clips, and taps on them with known answers.

The photos are the 42 of ``products/validation/`` (plus the tuning catalog's hoodie, whose second view is
in the validation folder). They hold the traps a shop meets: colour variants of one design (the
jerseys, the girly and long shirts), one logo on many products (the RAILS badge on a mug, a stein, a
tote, a bag and shirts; the spree mark likewise), products of one shape with another print (the totes,
mugs and steins of both brands) and back views. Some products are catalogued with their back view too
(several photos of one SKU); for the others only the front is in the catalog, so a pasted back view is
a product whose view the catalog lacks: the right answer there is that SKU or "not sure", never another.

Photos without transparency (JPEGs on white) get the mask the service itself estimates for them
(everything not connected to a plain border); they are pasted with that mask. Products are pasted 120 to
260 px high into 960x540 frames of real clips, moving and changing size, relit, tilted and blurred.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from media_service.media.detection.catalog import estimate_alpha
from media_service.media_options import ingest_limits
from tests.conftest import media
from tests.support.products.semireal import Placement, Truth, render_clip

#: SKU -> photos in the catalog (``products/<folder>/<name>``); the first is the product's front.
VALIDATION_CATALOG: dict[str, tuple[str, ...]] = {
    "JERSEY-RED": ("validation/ror_baseball_jersey_red.png",),
    "JERSEY-BLUE": ("validation/ror_baseball_jersey_blue.png",),
    "JERSEY-GREEN": ("validation/ror_baseball_jersey_green.png",),
    "ROR-BASEBALL": ("validation/ror_baseball.jpeg",),
    "ROR-BAG": ("validation/ror_bag.jpeg",),
    "ROR-SPAGHETTI": ("validation/ror_jr_spaghetti.jpeg",),
    "ROR-MUG": ("validation/ror_mug.jpeg", "validation/ror_mug_back.jpeg"),
    "ROR-RINGER": ("validation/ror_ringer.jpeg",),
    "ROR-STEIN": ("validation/ror_stein.jpeg", "validation/ror_stein_back.jpeg"),
    "ROR-TOTE": ("validation/ror_tote.jpeg", "validation/ror_tote_back.jpeg"),
    "RUBY-POLO": ("validation/ruby_polo.jpg",),
    "GIRLY-BLACK": ("validation/solidus_girly_black.png",),
    "GIRLY-BLUE": ("validation/solidus_girly_blue.png",),
    "GIRLY-WHITE": ("validation/solidus_girly_white.png",),
    "HOODIE-RED": ("catalog/solidus_hoodie_red_1.png",),
    "LONG-BLACK": ("validation/solidus_long_black.png", "validation/solidus_long_back_black.png"),
    "LONG-BLUE": ("validation/solidus_long_blue.png", "validation/solidus_long_back_blue.png"),
    "LONG-WHITE": ("validation/solidus_long_white.png", "validation/solidus_long_back_white.png"),
    "SPREE-BAG": ("validation/spree_bag.jpeg",),
    "SPREE-JERSEY": ("validation/spree_jersey.jpeg",),
    "SPREE-MUG": ("validation/spree_mug.jpeg", "validation/spree_mug_back.jpeg"),
    "SPREE-RINGER": ("validation/spree_ringer_t.jpeg",),
    "SPREE-SPAGHETTI": ("validation/spree_spaghetti.jpeg",),
    "SPREE-STEIN": ("validation/spree_stein.jpeg", "validation/spree_stein_back.jpeg"),
    "SPREE-TOTE": ("validation/spree_tote_front.jpeg", "validation/spree_tote_back.jpeg"),
}

#: Views shown in clips that the catalog does not have (SKU -> photo): "not sure" is a right answer there.
UNCATALOGUED_VIEWS: dict[str, tuple[str, ...]] = {
    "JERSEY-RED": ("validation/ror_baseball_jersey_back_red.png",),
    "JERSEY-BLUE": ("validation/ror_baseball_jersey_back_blue.png",),
    "JERSEY-GREEN": ("validation/ror_baseball_jersey_back_green.png",),
    "ROR-BASEBALL": ("validation/ror_baseball_back.jpeg",),
    "ROR-RINGER": ("validation/ror_ringer_back.jpeg",),
    "RUBY-POLO": ("validation/ruby_polo_back.jpg",),
    "HOODIE-RED": ("validation/solidus_hoodie_red_2.png",),
    "SPREE-JERSEY": ("validation/spree_jersey_back.jpeg",),
    "SPREE-RINGER": ("validation/spree_ringer_t_back.jpeg",),
}

#: Groups of SKUs that differ only in colour: an answer inside the group but not the product is the worst kind.
COLOUR_VARIANTS: tuple[frozenset[str], ...] = (
    frozenset({"JERSEY-RED", "JERSEY-BLUE", "JERSEY-GREEN", "ROR-BASEBALL"}),
    frozenset({"GIRLY-BLACK", "GIRLY-BLUE", "GIRLY-WHITE"}),
    frozenset({"LONG-BLACK", "LONG-BLUE", "LONG-WHITE"}),
)


def variant_group(sku: str) -> frozenset[str]:
    return next((group for group in COLOUR_VARIANTS if sku in group), frozenset())


@cache
def load_product_photo(relative: str) -> np.ndarray:
    """``products/<relative>`` as BGRA uint8 cropped to the product; a photo without transparency gets
    the estimated mask (everything not connected to a plain border)."""
    with Image.open(media(f"products/{relative}")) as image:
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        rgba = np.asarray(image.convert("RGBA")).copy()
    bgra = np.ascontiguousarray(rgba[:, :, [2, 1, 0, 3]])
    if not has_alpha or bgra[:, :, 3].min() >= 250:
        bgra[:, :, 3] = estimate_alpha(np.ascontiguousarray(bgra[:, :, :3]))
    ys, xs = np.nonzero(bgra[:, :, 3] > 0)
    return np.ascontiguousarray(bgra[ys.min():ys.max() + 1, xs.min():xs.max() + 1])


def shown_photos() -> list[tuple[str, str, bool]]:
    """Every (sku, photo, view in catalog) the validation clips show."""
    shown = [(sku, name, True) for sku, names in VALIDATION_CATALOG.items() for name in names
             if not name.startswith("catalog/")]
    return shown + [(sku, name, False) for sku, names in UNCATALOGUED_VIEWS.items() for name in names]


#: Real clips the validation products are pasted into, in turn.
BACKGROUNDS = ("video/bigbuckbunny.mp4", "video/flower.mp4", "video/nasa_13013.mp4", "video/bottle-detection.mp4",
               "video/friday.mp4", "video/iphone_rotated.mov")
FRAME_SIZE = (960, 540)


@dataclass(frozen=True)
class ValidationClip:
    path: Path
    truths: list[Truth]
    in_catalog: dict[str, bool]  # sku -> whether the view shown is catalogued


def random_validation_placements(rng: np.random.Generator, pool: list[tuple[str, str, bool]], count: int,
                                 size: tuple[int, int] = FRAME_SIZE) -> list[Placement]:
    """``count`` products from ``pool`` at non-overlapping places, 120-260 px high, moving and resizing."""
    width, height = size
    placements: list[Placement] = []
    boxes: list[tuple[float, float, float, float]] = []
    for _ in range(200):
        if len(placements) == count or not pool:
            break
        sku, name, _ = pool[int(rng.integers(len(pool)))]
        if any(p.sku == sku for p in placements):
            continue
        photo = load_product_photo(name)
        start_px, end_px = rng.uniform(120, 260, 2)
        big = max(start_px, end_px) / height
        aspect = photo.shape[1] / photo.shape[0]
        half_w, half_h = big * aspect * height / width / 2 + 0.02, big / 2 + 0.02
        if half_w > 0.45:
            continue
        start = (float(rng.uniform(half_w, 1 - half_w)), float(rng.uniform(half_h, 1 - half_h)))
        end = (float(np.clip(start[0] + rng.uniform(-0.1, 0.1), half_w, 1 - half_w)),
               float(np.clip(start[1] + rng.uniform(-0.08, 0.08), half_h, 1 - half_h)))
        box = (min(start[0], end[0]) - half_w, min(start[1], end[1]) - half_h,
               max(start[0], end[0]) + half_w, max(start[1], end[1]) + half_h)
        if any(not (box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3]) for b in boxes):
            continue
        boxes.append(box)
        placements.append(Placement(
            sku, name, start, end, (float(start_px / height), float(end_px / height)),
            tilt=float(rng.uniform(-0.15, 0.15)), roll=float(rng.uniform(-8, 8)), gain=float(rng.uniform(0.75, 1.25)),
            gamma=float(rng.uniform(0.85, 1.2)), tint=tuple(float(v) for v in rng.uniform(0.95, 1.05, 3)),
            blur=float(rng.uniform(0, 0.8))))
    return placements


def render_validation_clips(rng: np.random.Generator, count: int, folder: Path, *, seconds: float = 2.5,
                            fps: float = 12.0) -> list[ValidationClip]:
    """``count`` clips of 2-3 validation products each; every shown photo appears before any repeats."""
    pool = shown_photos()
    order = [pool[i] for i in rng.permutation(len(pool))]
    clips = []
    for number in range(count):
        wanted = int(rng.integers(2, 4))
        chosen = order[:wanted] if len(order) >= wanted else order + [pool[i] for i in
                                                                        rng.permutation(len(pool))[:wanted]]
        order = order[wanted:] or [pool[i] for i in rng.permutation(len(pool))]
        placements = random_validation_placements(rng, chosen, wanted)
        path = folder / f"validation_{number}.mp4"
        truths = render_clip(BACKGROUNDS[number % len(BACKGROUNDS)], path, placements, seconds=seconds, fps=fps,
                             size=FRAME_SIZE, start=float(rng.uniform(0, 1)), photos=load_product_photo)
        in_catalog = {p.sku: any(p.photo == name for name in VALIDATION_CATALOG[p.sku]) for p in placements}
        clips.append(ValidationClip(path, truths, in_catalog))
    return clips


# ------------------------------------------------------------------------------------------- scoring taps


@dataclass
class TapTally:
    """Point taps on validation clips, by what they were answered with."""

    right: int = 0  # the product's SKU, given as certain
    wrong: int = 0  # another SKU given as certain
    variant_wrong: int = 0  # ... and that SKU is a colour variant of the product
    unsure: int = 0  # "not sure" (candidates offered, no SKU claimed) with the right SKU among them
    unsure_without: int = 0  # "not sure" without the right SKU among the candidates
    missed: int = 0  # no answer
    empty_taps: int = 0
    empty_answered: int = 0  # taps beside every product answered with a product (certain or not)
    log: list[str] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.log = []

    @property
    def taps(self) -> int:
        return self.right + self.wrong + self.unsure + self.unsure_without + self.missed

    def add(self, truth_sku: str, sku: str | None, certain: bool, candidates: list[str], where: str) -> None:
        if sku is None and not candidates:
            self.missed += 1
            self.log.append(f"{where} {truth_sku}: missed")
        elif certain and sku == truth_sku:
            self.right += 1
        elif certain:
            self.wrong += 1
            if sku in variant_group(truth_sku):
                self.variant_wrong += 1
            self.log.append(f"{where} {truth_sku}: WRONG {sku}")
        elif truth_sku in candidates:
            self.unsure += 1
            self.log.append(f"{where} {truth_sku}: not sure {candidates[:3]}")
        else:
            self.unsure_without += 1
            self.log.append(f"{where} {truth_sku}: not sure without it {candidates[:3]}")

    def summary(self) -> dict[str, float | int]:
        taps = max(self.taps, 1)
        return {"taps": self.taps, "top1": round(self.right / taps, 3), "right": self.right, "wrong": self.wrong,
                "wrong_rate": round(self.wrong / taps, 4), "variant_wrong": self.variant_wrong,
                "not_sure": self.unsure + self.unsure_without, "not_sure_with_right": self.unsure,
                "missed": self.missed}


@dataclass
class TapRecord:
    """One tap of the contact sheet: where, the truth, and the answer."""

    clip: int
    t: float
    point: tuple[float, float]  # frame pixels
    truth: str | None  # None: a tap beside every product
    sku: str | None
    certain: bool
    box: tuple[float, float, float, float] | None
    source: str | None
    seconds: float = 0.0


def _tap_point(mask: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """A random pixel of the product (where a shopper's finger lands), away from its edge when possible."""
    import cv2

    inner = cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    ys, xs = np.nonzero(inner if inner.any() else mask)
    i = int(rng.integers(len(xs)))
    return float(xs[i]) + 0.5, float(ys[i]) + 0.5


def _empty_point(truths: list[Truth], size: tuple[int, int], rng: np.random.Generator) -> tuple[float, float] | None:
    """A point at least 5 % of the frame away from every product's box."""
    width, height = size
    for _ in range(50):
        x, y = float(rng.uniform(0, width)), float(rng.uniform(0, height))
        margin = 0.05 * width
        if all(not (t.box[0] - margin <= x <= t.box[2] + margin and t.box[1] - margin <= y <= t.box[3] + margin)
               for t in truths):
            return x, y
    return None


def evaluate_validation(detector: Any, clips: list[ValidationClip], settings: Mapping[str, Any], *,
                        seed: int = 0, on_demand: bool = True, fps: float = 12.0) -> dict[str, Any]:
    """Index every clip (detect at the indexing rate, track), then tap every product in every indexed frame.

    A tap is answered as the service answers it: the track under the point (its SKU, certain or not),
    else, when ``on_demand``, detection around the point. Returns tallies for views in the catalog,
    views not in it and taps beside every product, track recall/precision (IoU >= 0.5, right SKU, per
    indexed frame) and every tap (for the contact sheet).
    """
    import time

    from media_service.media.detection.detections import iou_matrix
    from media_service.media.detection.frames import VideoGeometry, stream_frames
    from media_service.media.detection.taps import detect_around, detection_under, is_certain
    from media_service.media.detection.tracking import ProductTracker
    from tests.support.products.semireal import truths_at

    rng = np.random.default_rng(seed)
    seen, unseen, empty = TapTally(), TapTally(), TapTally()
    records: list[TapRecord] = []
    track_truths = track_matched = track_predictions = 0
    detect_seconds: list[float] = []
    demand_seconds: list[float] = []
    for number, clip in enumerate(clips):
        geometry = VideoGeometry.probe(clip.path, "mp4", ingest_limits(settings))
        tracker = ProductTracker()
        frames = []
        for frame in stream_frames(clip.path, demuxer="mp4", geometry=geometry, fps=float(settings["INDEX_FPS"]),
                                   max_side=int(settings["INDEX_FRAME_SIDE"]), limits=ingest_limits(settings)):
            started = time.perf_counter()
            found = detector.detect(frame.image)
            detect_seconds.append(time.perf_counter() - started)
            tracker.update(found, frame.index, frame.t)
            frames.append(frame)
        tracks = tracker.finish()
        for frame in frames:
            truths = truths_at(clip.truths, frame.t, fps)
            height, width = frame.image.shape[:2]
            samples = [(track, s) for track in tracks for s in track.samples if s.frame_index == frame.index]
            if truths:
                track_truths += len(truths)
                track_predictions += len(samples)
                if samples:
                    ious = iou_matrix(np.array([t.box for t in truths], np.float32),
                                      np.stack([s.xyxy for _, s in samples]))
                    for row, truth in enumerate(truths):
                        if any(ious[row, col] >= 0.5 and samples[col][0].sku == truth.sku
                               and getattr(samples[col][0], "certain", True) for col in range(len(samples))):
                            track_matched += 1
            taps = [(truth.sku, _tap_point(truth.mask, rng)) for truth in truths]
            spot = _empty_point(truths, (width, height), rng)
            if spot is not None:
                taps.append((None, spot))
            for truth_sku, point in taps:
                tolerance = 0.015 * width
                hits = [(float((s.xyxy[2] - s.xyxy[0]) * (s.xyxy[3] - s.xyxy[1])), track, s) for track, s in samples
                        if s.xyxy[0] - tolerance <= point[0] <= s.xyxy[2] + tolerance
                        and s.xyxy[1] - tolerance <= point[1] <= s.xyxy[3] + tolerance]
                sku, certain, candidates, box, source = None, False, [], None, None
                started = time.perf_counter()
                if hits:
                    _, track, sample = min(hits, key=lambda h: h[0])
                    sku, certain = track.sku, bool(getattr(track, "certain", True))
                    candidates = [c for c, _ in track.candidates()]
                    box, source = tuple(float(v) for v in sample.xyxy), "track"
                elif on_demand:
                    found = detect_around(detector, frame.image, point)
                    best = detection_under(found, point)
                    if best is not None:
                        sku, certain = found.skus[best], is_certain(found, best)
                        candidates = [str(c) for c, _ in found.data["candidates"][best]] \
                            if "candidates" in found.data else [sku]
                        box, source = tuple(float(v) for v in found.xyxy[best]), "on_demand"
                    demand_seconds.append(time.perf_counter() - started)
                if not certain and sku is not None and sku not in candidates:
                    candidates = [sku, *candidates]
                where = f"{number}@{frame.t:.2f}"
                if truth_sku is None:
                    empty.empty_taps += 1
                    if sku is not None:
                        empty.empty_answered += 1
                        empty.log.append(f"{where} empty tap answered {sku} ({'certain' if certain else 'unsure'})")
                else:
                    offered = candidates if not certain else [sku] if sku else []
                    (seen if clip.in_catalog[truth_sku] else unseen).add(
                        truth_sku, sku if certain else None, certain, offered, where)
                records.append(TapRecord(number, frame.t, point, truth_sku, sku, certain, box, source))

    def quantiles(values: list[float]) -> dict[str, float]:
        if not values:
            return {}
        return {"p50_ms": round(float(np.percentile(values, 50)) * 1000, 1),
                "p99_ms": round(float(np.percentile(values, 99)) * 1000, 1), "count": len(values)}

    return {
        "catalogued_views": seen.summary(), "uncatalogued_views": unseen.summary(),
        "empty_taps": {"taps": empty.empty_taps, "answered": empty.empty_answered},
        "track_recall": round(track_matched / max(track_truths, 1), 3),
        "track_precision": round(track_matched / max(track_predictions, 1), 3),
        "detect": quantiles(detect_seconds), "on_demand": quantiles(demand_seconds),
        "log": seen.log + unseen.log + empty.log, "records": records,
    }


def validation_sheet(clips: list[ValidationClip], records: list[TapRecord], *, limit: int = 48,
                     columns: int = 6) -> np.ndarray:
    """A contact sheet of taps: the tap point (a dot), the answer's box and SKU, green when right, red when
    another SKU was given as certain, yellow for "not sure", grey for no answer; the true SKU below.
    Every wrong answer, then a sample of "not sure", of no answer, of taps beside products and of right ones."""
    import cv2

    from tests.support.products.evaluation import contact_sheet

    def verdict(r: TapRecord) -> tuple[int, tuple[int, int, int], str]:
        if r.sku is None:
            return 3, (160, 160, 160), "no answer" if r.truth else "empty: none"
        if not r.certain:
            return 2, (0, 220, 255), f"not sure: {r.sku}?"
        if r.truth is None:
            return 0, (0, 0, 255), f"EMPTY TAP -> {r.sku}"
        return (1, (0, 200, 0), r.sku) if r.sku == r.truth else (0, (0, 0, 255), f"WRONG {r.sku}")

    def kind(r: TapRecord) -> str:
        rank, _, _ = verdict(r)
        return "empty" if r.truth is None and rank != 0 else str(rank)

    groups: dict[str, list[TapRecord]] = {}
    for record in records:
        groups.setdefault(kind(record), []).append(record)
    quota = {"0": limit, "2": limit // 4, "3": limit // 4, "empty": limit // 8}
    chosen = [r for key in ("0", "2", "3", "empty") for r in groups.get(key, [])[::max(1, len(groups.get(key, []))
                                                                                      // quota[key] + 1)]]
    right = groups.get("1", [])
    chosen += right[::max(1, len(right) // max(limit - len(chosen), 1) + 1)][:max(limit - len(chosen), 0)]
    tiles = []
    for r in sorted(chosen, key=lambda r: (verdict(r)[0], r.clip, r.t)):
        image = _frame_at(clips[r.clip].path, r.t)
        _, colour, label = verdict(r)
        if r.box is not None:
            x0, y0, x1, y1 = (int(v) for v in r.box)
            cv2.rectangle(image, (x0, y0), (x1, y1), colour, 3)
        cv2.circle(image, (int(r.point[0]), int(r.point[1])), 9, (255, 255, 255), -1)
        cv2.circle(image, (int(r.point[0]), int(r.point[1])), 6, colour, -1)
        cv2.rectangle(image, (0, 0), (image.shape[1], 40), (0, 0, 0), -1)
        cv2.putText(image, label, (8, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, colour, 2)
        truth = f"truth: {r.truth or '(nothing)'}  {r.source or ''} {r.clip}@{r.t:.2f}"
        cv2.rectangle(image, (0, image.shape[0] - 36), (image.shape[1], image.shape[0]), (0, 0, 0), -1)
        cv2.putText(image, truth, (8, image.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
        tiles.append(image)
    return contact_sheet(tiles, columns=columns, tile_height=200)


def _frame_at(path: Path, t: float) -> np.ndarray:
    """The frame of a test clip shown at ``t`` (ffmpeg, exact seek), BGR at the clip's size."""
    import subprocess

    width, height = FRAME_SIZE
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ss", f"{t:.3f}", "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"], capture_output=True, check=True,
                         timeout=60).stdout
    return np.frombuffer(raw[:width * height * 3], np.uint8).reshape(height, width, 3).copy()
