"""When and where each logo fragment appears in a video, from a seed.

The rules a fair game needs, each checked by :func:`check_plan` too:

* every fragment is visible long enough to be tapped on a phone (``min_seconds``) and big enough
  (``min_share`` of the frame's short side, glow included);
* appearances start at least ``min_gap`` seconds apart;
* a fragment's *slot* (the area it may be drawn in: per-viewer positions move it inside its slot) lies in
  the safe area and never overlaps the slot of a fragment visible at the same time, nor a region to avoid
  (products from the video index, faces) during its window;
* the same seed and inputs give the same plan (``random.Random(seed)``, no global state).

Coordinates are shares (0..1) of the displayed frame's width and height; times are media seconds.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from media_service.errors import InvalidMedia

#: Animation shared by the burned-in render and the widget: fade/scale in, float, fade out.
APPEAR_SECONDS = 0.3
VANISH_SECONDS = 0.3
FLOAT_PERIOD_SECONDS = 1.6
FLOAT_AMPLITUDE = 0.008  # share of the frame's height


class PlanError(InvalidMedia):
    code = "plan_impossible"


@dataclass(frozen=True)
class AvoidRegion:
    """Something the fragments must not cover between ``start`` and ``end``: ``box`` = (x0, y0, x1, y1)."""

    start: float
    end: float
    box: tuple[float, float, float, float]
    kind: str = "product"


@dataclass(frozen=True)
class PlanOptions:
    """See the module. ``fragment_share``: the median fragment's long side as a share of the frame's short
    side (all fragments keep the logo's scale); ``slot_scale``: a slot's size relative to its fragment;
    ``safe``: (x0, y0, x1, y1)."""

    seed: int
    duration: float
    width: int
    height: int
    min_seconds: float = 1.5
    max_seconds: float = 3.0
    min_gap: float = 0.4
    lead_seconds: float = 0.3
    tail_seconds: float = 0.2
    min_share: float = 0.12
    fragment_share: float = 0.2
    slot_scale: float = 1.5
    safe: tuple[float, float, float, float] = (0.05, 0.05, 0.95, 0.84)
    avoid: tuple[AvoidRegion, ...] = ()
    tries: int = 600


@dataclass(frozen=True)
class Placement:
    """Fragment ``index`` is visible from ``start`` to ``end`` inside ``slot`` = (x, y, w, h); its own size
    is ``size`` = (w, h). :meth:`box` gives where it is drawn for an offset (0.5, 0.5: the slot's centre)."""

    index: int
    start: float
    end: float
    slot: tuple[float, float, float, float]
    size: tuple[float, float]

    def box(self, offset: tuple[float, float] = (0.5, 0.5)) -> tuple[float, float, float, float]:
        sx, sy, sw, sh = self.slot
        w, h = self.size
        return (sx + offset[0] * (sw - w), sy + offset[1] * (sh - h), w, h)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "start": round(self.start, 3), "end": round(self.end, 3),
                "slot": [round(v, 5) for v in self.slot], "size": [round(v, 5) for v in self.size]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Placement:
        return cls(int(data["index"]), float(data["start"]), float(data["end"]),
                   tuple(float(v) for v in data["slot"]), tuple(float(v) for v in data["size"]))  # type: ignore[arg-type]


@dataclass
class Plan:
    placements: list[Placement]
    scale: float  # fragment pixels -> frame share of width
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"placements": [p.to_dict() for p in self.placements], "scale": self.scale, "notes": self.notes}


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Boxes as (x, y, w, h)."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _windows(count: int, options: PlanOptions, rng: random.Random) -> list[tuple[float, float]]:
    usable = options.duration - options.lead_seconds - options.tail_seconds
    needed = options.min_seconds + (count - 1) * options.min_gap
    if usable < needed:
        raise PlanError(f"the video is too short for {count} fragments: it needs at least "
                        f"{needed + options.lead_seconds + options.tail_seconds:.1f} s; use fewer fragments or a "
                        "longer video", code="video_too_short")
    length = min(options.max_seconds, max(options.min_seconds, usable * 0.4), usable - (count - 1) * options.min_gap)
    slack = usable - length - (count - 1) * options.min_gap
    offsets = sorted(rng.uniform(0.0, slack) for _ in range(count))
    return [(options.lead_seconds + offsets[i] + i * options.min_gap,
             options.lead_seconds + offsets[i] + i * options.min_gap + length) for i in range(count)]


def plan_placements(fragment_sizes: Sequence[tuple[int, int]], options: PlanOptions) -> Plan:
    """Windows and slots for fragments of the given pixel sizes (in the prepared logo's scale)."""
    count = len(fragment_sizes)
    rng = random.Random(options.seed)
    aspect = options.width / options.height
    short = min(options.width, options.height)
    # fragment px -> share of frame width, keeping the logo's scale, then raised to the tap minimum
    median_long = sorted(max(w, h) for w, h in fragment_sizes)[count // 2]
    scale = options.fragment_share * short / median_long / options.width
    smallest = min(min(w * scale * options.width, h * scale * options.width) for w, h in fragment_sizes)
    if smallest < options.min_share * short:
        scale *= options.min_share * short / smallest
    windows = _windows(count, options, rng)
    order = list(range(count))
    rng.shuffle(order)  # which fragment shows first is part of the seed too
    x0, y0, x1, y1 = options.safe
    for attempt in range(8):
        placed: list[Placement] = []
        for slot_number, index in enumerate(order):
            start, end = windows[slot_number]
            w, h = fragment_sizes[index]
            size = (w * scale, h * scale * aspect)
            slot_size = (size[0] * options.slot_scale, size[1] * options.slot_scale)
            if slot_size[0] > x1 - x0 or slot_size[1] > y1 - y0:
                break
            busy = [p.slot for p in placed if p.start < end and start < p.end]
            busy += [(r.box[0], r.box[1], r.box[2] - r.box[0], r.box[3] - r.box[1])
                     for r in options.avoid if r.start < end and start < r.end]
            for _ in range(options.tries):
                slot = (rng.uniform(x0, x1 - slot_size[0]), rng.uniform(y0, y1 - slot_size[1]), *slot_size)
                if not any(_overlap(slot, other) for other in busy):
                    placed.append(Placement(index, start, end, slot, size))  # type: ignore[arg-type]
                    break
            else:
                break
        if len(placed) == count:
            plan = Plan(sorted(placed, key=lambda p: p.start), scale)
            if attempt:
                plan.notes.append(f"fragments shrunk to {0.9 ** attempt:.2f} of their size to fit")
            return plan
        # no room: smaller pieces (never below the tap minimum)
        smallest_now = min(min(w, h) * scale * options.width for w, h in fragment_sizes)
        if smallest_now * 0.9 < options.min_share * short * 0.999:
            break
        scale *= 0.9
    raise PlanError("the fragments do not fit in the frame without covering each other, the products or faces; "
                    "use fewer fragments or a video with more free space", code="no_room")


def check_plan(plan: Plan, options: PlanOptions) -> list[str]:
    """Every rule of the module checked on a plan; the list of broken ones (empty when fair)."""
    problems = []
    short = min(options.width, options.height)
    x0, y0, x1, y1 = options.safe
    starts = sorted(p.start for p in plan.placements)
    if any(b - a < options.min_gap - 1e-6 for a, b in itertools.pairwise(starts)):
        problems.append("appearances closer than min_gap")
    for p in plan.placements:
        if p.end - p.start < options.min_seconds - 1e-6:
            problems.append(f"fragment {p.index} visible for less than min_seconds")
        if min(p.size[0] * options.width, p.size[1] * options.height) < options.min_share * short - 0.5:
            problems.append(f"fragment {p.index} smaller than the tap minimum")
        sx, sy, sw, sh = p.slot
        if sx < x0 - 1e-6 or sy < y0 - 1e-6 or sx + sw > x1 + 1e-6 or sy + sh > y1 + 1e-6:
            problems.append(f"fragment {p.index} outside the safe area")
        for q in plan.placements:
            if q.index > p.index and p.start < q.end and q.start < p.end and _overlap(p.slot, q.slot):
                problems.append(f"fragments {p.index} and {q.index} overlap")
        for r in options.avoid:
            if r.start < p.end and p.start < r.end and _overlap(p.slot, (r.box[0], r.box[1], r.box[2] - r.box[0],
                                                                         r.box[3] - r.box[1])):
                problems.append(f"fragment {p.index} covers a {r.kind}")
    return problems
