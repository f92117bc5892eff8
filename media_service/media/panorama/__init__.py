"""360-degree panoramas and product spins.

Stitching follows OpenCV's stitching pipeline as small named stages (one module each):
``images`` (safe, upright decoding), ``features``, ``matching``, ``cameras`` (estimation, bundle
adjustment, wave correction), ``warping``, ``exposure``, ``seams``, ``blending``, ``cropping``; then
``stitcher`` runs them with a fallback chain and ``diagnostics`` says what happened to every photo.
``tiles`` writes the published image, preview, tile pyramid and viewer manifest; ``spin`` builds
turntable spins from photo sets or videos; ``build`` is what the job kinds and the CLI call. Every
failure is one :class:`~media_service.media.panorama.errors.StitchingError` that says what to try next.
"""

from media_service.media.panorama.errors import StitchingError

__all__ = ["StitchingError"]
