"""The one error of the panorama and spin stages: what failed, and what the merchant can try next."""

from __future__ import annotations

from typing import Any

from media_service.errors import ProcessingError


class StitchingError(ProcessingError):
    """A panorama or spin could not be made from the given photos or video.

    ``detail`` always says what to try next (reshoot with more overlap, another option, ...);
    ``diagnostics`` (when known) lists every input with whether it was used and why not, so a failed
    job tells the merchant which photo to retake instead of showing a stack trace.
    """

    code = "stitching_failed"
    title = "Panorama or spin could not be made"

    def __init__(self, detail: str, *, code: str | None = None, diagnostics: dict[str, Any] | None = None,
                 **extra: Any) -> None:
        if diagnostics is not None:
            extra["diagnostics"] = diagnostics
        super().__init__(detail, code=code, **extra)
        self.diagnostics = diagnostics
