"""Reading input photos: small upright copies for registration, full-resolution ones for compositing.

Registration only needs about 0.6 MP, so JPEGs are decoded straight at a reduced size (libjpeg's DCT
scaling through Pillow's ``draft``), which is several times faster than decoding 8-12 MP and resizing.
Both paths keep the service's defences: the sniffed format is the only Pillow plugin allowed, the pixel
cap is checked from the header, decompression-bomb warnings are errors, and EXIF rotation is applied.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps

from media_service.errors import InvalidMedia, UnsupportedMediaType
from media_service.media.ingest.facts import IngestLimits
from media_service.media.ingest.images import open_image_safely
from media_service.media.ingest.sniff import sniff_file

_SWAPPED_ORIENTATIONS = {5, 6, 7, 8}
#: Diagonal of a 35 mm film frame (36 x 24 mm): what "35 mm-equivalent" focal lengths are relative to.
FILM_DIAGONAL_MM = 43.267
#: Millimetres per FocalPlaneResolutionUnit (EXIF: 2 inch, 3 cm, 4 mm, 5 micrometre).
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}


def _rational(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


def exif_focal_pixels(exif: Image.Exif, stored_size: tuple[int, int]) -> float | None:
    """The focal length in pixels of the stored image, from EXIF, or None when EXIF does not say enough.

    The 35 mm-equivalent focal length (relative to the 43.3 mm film diagonal) is used when present;
    otherwise the focal length in mm with the focal plane's resolution (pixels per unit on the sensor,
    for an image of PixelXDimension pixels: scaled when the file was resized since).
    """
    try:
        details = exif.get_ifd(0x8769)
    except Exception:  # a broken EXIF block is ignored, as browsers do
        return None
    width, height = stored_size
    equivalent = _rational(details.get(0xA405))
    if equivalent:
        return equivalent * math.hypot(width, height) / FILM_DIAGONAL_MM
    focal_mm = _rational(details.get(0x920A))
    resolution = _rational(details.get(0xA20E))
    if focal_mm and resolution:
        unit = _UNIT_MM.get(int(_rational(details.get(0xA210)) or 2), 25.4)
        exif_width = _rational(details.get(0xA002))
        resized = width / exif_width if exif_width else 1.0
        return focal_mm * resolution / unit * resized
    return None


@dataclass(frozen=True)
class WorkingImage:
    """An upright RGB copy at registration resolution and the size of the upright original."""

    rgb: np.ndarray
    full_size: tuple[int, int]  # (width, height) after EXIF rotation
    exif_focal: float | None = None  # focal length in full-resolution pixels from EXIF, when it says enough

    @property
    def working_focal(self) -> float | None:
        """The EXIF focal length in working pixels (None when EXIF does not give it)."""
        return None if self.exif_focal is None else self.exif_focal * self.scale

    @property
    def scale(self) -> float:
        """Working pixels per original pixel."""
        return self.rgb.shape[1] / self.full_size[0]


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def load_working_image(path: str | os.PathLike[str], limits: IngestLimits,
                       target_pixels: float) -> WorkingImage:
    """An upright RGB copy of at most ``target_pixels`` pixels (JPEGs decoded at reduced size).

    Raises UnsupportedMediaType/InvalidMedia for anything that is not a safe, readable image.
    """
    sniffed = sniff_file(path)
    if sniffed.kind != "image" or sniffed.pillow_format is None:
        raise UnsupportedMediaType(f"this file is a {sniffed.format.upper()} video, not a photo")
    cap = limits.max_image_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path, formats=[sniffed.pillow_format]) as image:
            width, height = image.size
            if width * height > cap:
                raise InvalidMedia(f"the photo is {width}x{height} pixels; at most {cap:,} pixels are accepted")
            try:
                exif = image.getexif()
                orientation = int(exif.get(0x0112, 1))
                focal = exif_focal_pixels(exif, (width, height))
            except Exception:  # a broken EXIF block is ignored, as browsers do
                orientation, focal = 1, None
            full_size = (height, width) if orientation in _SWAPPED_ORIENTATIONS else (width, height)
            scale = min(1.0, math.sqrt(target_pixels / (width * height)))
            if sniffed.pillow_format == "JPEG" and scale < 1.0:
                # DCT scaling to the smallest power-of-two reduction that keeps half the target area.
                image.draft("RGB", (max(1, int(width * scale * 0.71)), max(1, int(height * scale * 0.71))))
            image.load()
            upright = ImageOps.exif_transpose(image)
            rgb = _to_rgb_array(upright)
    pixels = rgb.shape[0] * rgb.shape[1]
    if pixels > target_pixels:
        factor = math.sqrt(target_pixels / pixels)
        rgb = cv2.resize(rgb, (max(1, round(rgb.shape[1] * factor)), max(1, round(rgb.shape[0] * factor))),
                         interpolation=cv2.INTER_AREA)
    return WorkingImage(np.ascontiguousarray(rgb), full_size, focal)


def load_full_image(path: str | os.PathLike[str], limits: IngestLimits,
                    max_pixels: float | None = None) -> np.ndarray:
    """The upright photo as an RGB uint8 array, through the service's safe image opener.

    With ``max_pixels`` the photo is reduced (JPEG DCT scaling, then area resampling) to at most that
    many pixels, for panoramas whose output is capped below full resolution.
    """
    if max_pixels is not None:
        working = load_working_image(path, limits, max_pixels)
        return working.rgb
    with open_image_safely(path, limits, exif_transpose=True) as image:
        return _to_rgb_array(image)


def gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
