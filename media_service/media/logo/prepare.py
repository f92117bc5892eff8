"""Reading a merchant's logo into an RGBA array fit for cutting: real alpha, sensible size.

* PNG and WebP with an alpha channel are used as they are.
* A logo without alpha (or with an alpha channel that is fully opaque) gets its background keyed out when
  the border is one flat colour (the usual "logo on white" export); otherwise it is refused with advice.
* SVG is refused with advice: no rasteriser that can be trusted with hostile SVG (scripts, external
  references, entity expansion) is installed, and a merchant can always export a PNG.
* Tiny logos are upscaled (area-preserving cubic on premultiplied colour, so edges do not grow dark
  fringes) up to :attr:`LogoOptions.work_side`; below :attr:`LogoOptions.min_side` they are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from media_service.errors import InvalidMedia, UnsupportedMediaType


class LogoError(InvalidMedia):
    """The logo cannot be used for a campaign; ``code`` says why and ``detail`` what to do."""

    code = "invalid_logo"


@dataclass(frozen=True)
class LogoOptions:
    """``min_side``: smallest accepted short side (pixels); ``work_side``: long side logos are brought to;
    ``key_tolerance``: colour distance (0-255) still counted as the flat background; ``max_side``: larger
    logos are scaled down to it."""

    min_side: int = 24
    work_side: int = 480
    max_side: int = 1600
    key_tolerance: float = 24.0


@dataclass(frozen=True)
class PreparedLogo:
    """The logo as RGBA (uint8) and what was done to it (``keyed``: background removed; ``scale``)."""

    rgba: np.ndarray
    keyed: bool
    scale: float
    source_size: tuple[int, int]


def _looks_like_svg(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(b"<?xml") or text.startswith(b"<svg") or b"<svg" in text[:1024]


def key_flat_background(bgr: np.ndarray, tolerance: float) -> np.ndarray | None:
    """An alpha mask that removes a flat border colour, or None when the border is not one flat colour.

    The border colour is the median of the outermost pixel ring; when 90 % of that ring lies within
    ``tolerance`` of it, pixels connected to the border and within the tolerance become transparent, with
    a one-pixel soft edge. Colour inside the logo that happens to match (the counter of an "o") stays
    opaque unless it touches the border region.
    """
    ring = np.concatenate([bgr[0], bgr[-1], bgr[:, 0], bgr[:, -1]]).astype(np.float32)
    colour = np.median(ring, axis=0)
    if (np.linalg.norm(ring - colour, axis=1) <= tolerance).mean() < 0.9:
        return None
    distance = np.linalg.norm(bgr.astype(np.float32) - colour, axis=2)
    close = (distance <= tolerance).astype(np.uint8)
    _count, labels = cv2.connectedComponents(close, connectivity=4)
    border_labels = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))) - {0}
    background = np.isin(labels, list(border_labels)) & (close > 0)
    alpha = np.where(background, 0.0, 255.0)
    # anti-aliased logos blend into the background over a pixel or two: those pixels get partial alpha
    edge = (cv2.dilate(background.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~background
    alpha[edge] = np.clip((distance[edge] - tolerance) / (2 * tolerance), 0.0, 1.0) * 255.0
    return alpha.round().astype(np.uint8)


def resize_rgba(rgba: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with premultiplied alpha, so colour from transparent pixels never bleeds into the edges."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    premultiplied = np.concatenate([rgba[..., :3].astype(np.float32) * alpha, alpha * 255.0], axis=2)
    shrinking = width < rgba.shape[1]
    resized = cv2.resize(premultiplied, (width, height),
                         interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    resized = np.clip(resized, 0, 255)
    a = resized[..., 3:4] / 255.0
    colour = np.where(a > 1e-3, resized[..., :3] / np.maximum(a, 1e-3), 0)
    return np.concatenate([np.clip(colour, 0, 255), resized[..., 3:4]], axis=2).round().astype(np.uint8)


def prepare_logo(path: str | Path, options: LogoOptions = LogoOptions()) -> PreparedLogo:
    """The logo at ``path`` as RGBA with a usable alpha channel, at a size fit for cutting (see module)."""
    head = Path(path).read_bytes()[:4096]
    if _looks_like_svg(head):
        raise UnsupportedMediaType("SVG logos are not accepted: this service has no SVG rasteriser it can trust "
                                   "with untrusted files; export the logo as a PNG with transparency "
                                   f"(at least {options.min_side} px) and upload that", code="logo_svg_unsupported")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise LogoError("the logo could not be decoded; upload a PNG or WebP with transparency",
                        code="logo_unreadable")
    if image.dtype != np.uint8:
        image = (image / 257).astype(np.uint8) if image.dtype == np.uint16 else image.astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    height, width = image.shape[:2]
    if min(width, height) < options.min_side:
        raise LogoError(f"the logo is {width}x{height} px; its short side must be at least {options.min_side} px "
                        "(export it larger, ideally 512 px wide or more)", code="logo_too_small",
                        min_side=options.min_side)
    keyed = False
    if image.shape[2] == 4 and int(image[..., 3].min()) < 250:
        rgba = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    else:
        bgr = image[..., :3]
        alpha = key_flat_background(bgr, options.key_tolerance)
        if alpha is None:
            raise LogoError("the logo has no transparency and its background is not one flat colour, so it cannot "
                            "be cut out; export it as a PNG with a transparent background", code="logo_no_alpha")
        rgba = np.dstack([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), alpha])
        keyed = True
    opaque = rgba[..., 3] > 16
    if opaque.mean() < 0.01:
        raise LogoError("the logo is (almost) fully transparent; nothing to cut into fragments",
                        code="logo_empty")
    ys, xs = np.nonzero(opaque)
    rgba = rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1]  # trim transparent margins
    long_side = max(rgba.shape[:2])
    target = min(max(long_side, options.work_side), options.max_side)
    scale = target / long_side
    if abs(scale - 1.0) > 1e-6:
        rgba = resize_rgba(rgba, max(1, round(rgba.shape[1] * scale)), max(1, round(rgba.shape[0] * scale)))
    return PreparedLogo(rgba=np.ascontiguousarray(rgba), keyed=keyed, scale=scale, source_size=(width, height))
