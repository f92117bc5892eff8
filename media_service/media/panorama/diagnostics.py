"""Per-photo diagnostics: which photos made it into a panorama, which were dropped and why.

Every reason has a merchant-facing message that says what to reshoot, so the result (or the error of a
failed job) can be shown as is in a back office.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Why a photo was left out (stable codes) and the advice shown to the merchant.
REASONS: dict[str, str] = {
    "unreadable": "it could not be read as an image; export it again as JPEG or PNG",
    "duplicate": "it shows the same view as photo {other}; nothing to reshoot, it was simply not needed",
    "no_overlap": "it shares too little with the other photos; retake it so that about a third of it "
                  "overlaps the photo next to it",
    "featureless": "it shows mostly plain surfaces (sky, wall, water) with too little detail to align; "
                   "retake it with more of the scene's detail in the overlap",
    "blurry_no_overlap": "it is blurry and could not be aligned with the others; hold the phone still "
                         "(or lean on something) and retake it",
    "moved": "it was taken from another spot or with another zoom than the others; stand in one place, "
             "keep the zoom, and only turn the phone between shots",
}

#: Warnings about photos that were used anyway.
WARNINGS: dict[str, str] = {
    "blurry": "it looks blurry compared with the others; the panorama may look soft there",
    "cropped": "only {percent} % of it is in the panorama (the photos do not line up, so the edges were cut); "
               "hold the phone level and at the same height for every shot",
}
#: A photo that keeps less than this share of itself in the output is named in a warning.
WARN_KEPT_BELOW = 0.8
#: A photo that keeps less than this share is "mostly cut away": the summary never says it was simply used.
MOSTLY_CUT_BELOW = 0.5


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass
class PhotoDiagnostic:
    """What happened to one input photo."""

    index: int
    name: str
    used: bool = True
    reason: str | None = None
    message: str | None = None
    warnings: list[str] = field(default_factory=list)
    sharpness: float | None = None
    features: int | None = None
    kept_fraction: float | None = None  # share of the photo that is in the output (None: not used)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "used": self.used, "reason": self.reason,
                "message": self.message, "warnings": self.warnings,
                "sharpness": None if self.sharpness is None else round(self.sharpness, 1),
                "features": self.features,
                "kept_fraction": None if self.kept_fraction is None else round(self.kept_fraction, 3)}


@dataclass
class StitchDiagnostics:
    """Diagnostics of a whole set, plus which detector and projection the fallback chain settled on."""

    photos: list[PhotoDiagnostic]
    detector: str | None = None
    projection: str | None = None
    notes: list[str] = field(default_factory=list)
    focal: dict[str, Any] | None = None  # where the focal length came from and the photos' field of view
    filled_fraction: float = 0.0  # share of the output no photo covers (filled in)

    @classmethod
    def for_names(cls, names: list[str]) -> StitchDiagnostics:
        return cls([PhotoDiagnostic(index=i, name=name) for i, name in enumerate(names)])

    def label(self, index: int) -> str:
        """How a photo is named in messages: its position (1-based) and its file name."""
        name = self.photos[index].name
        return f"photo {index + 1}" + (f" ({name})" if name else "")

    def drop(self, index: int, reason: str, **values: Any) -> None:
        """Leave a photo out, recording the reason and the advice for the merchant."""
        photo = self.photos[index]
        if not photo.used:
            return
        advice = REASONS[reason].format(**values)
        photo.used, photo.reason = False, reason
        photo.message = f"{_sentence(self.label(index))} was left out: {advice}."

    def warn(self, index: int, warning: str, **values: Any) -> None:
        self.photos[index].warnings.append(
            f"{_sentence(self.label(index))}: {WARNINGS[warning].format(**values)}.")

    def keep(self, index: int, fraction: float) -> None:
        """Record how much of a used photo the output shows; warn when much of it was cut away."""
        self.photos[index].kept_fraction = fraction
        if fraction < WARN_KEPT_BELOW:
            self.warn(index, "cropped", percent=round(100 * fraction))

    @property
    def used(self) -> list[int]:
        return [p.index for p in self.photos if p.used]

    def summary(self) -> str:
        """One merchant-facing paragraph: what was used and what to reshoot."""
        dropped = [p for p in self.photos if not p.used]
        used = len(self.photos) - len(dropped)
        cut = [p for p in self.photos if p.used and p.kept_fraction is not None and p.kept_fraction < MOSTLY_CUT_BELOW]
        if cut:
            names = ", ".join(self.label(p.index) for p in cut)
            text = (f"{used} of {len(self.photos)} photos were aligned, but most of {names} had to be cut away."
                    + "".join(f" {p.message}" for p in dropped if p.message))
        elif not dropped:
            text = f"All {used} photos were used."
        else:
            text = f"{used} of {len(self.photos)} photos were used. " + " ".join(
                p.message or "" for p in dropped)
        warnings = [w for p in self.photos for w in p.warnings]
        return " ".join([text, *warnings]).strip()

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "detector": self.detector, "projection": self.projection,
                "used": len(self.used), "total": len(self.photos), "notes": self.notes, "focal": self.focal,
                "filled_fraction": round(self.filled_fraction, 4),
                "photos": [p.to_dict() for p in self.photos]}
