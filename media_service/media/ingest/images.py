"""Opening untrusted images safely, and the facts we record about them.

:func:`open_image_safely` is the one way the service opens an uploaded image: only the Pillow plugin of
the sniffed format may parse it, the pixel cap is checked from the header before anything is decoded,
Pillow's decompression-bomb warning is an error, animated images have a frame cap counted cheaply, and
the first frame is fully decoded so truncation and corruption are found at upload time, not in a job.
"""

from __future__ import annotations

import os
import re
import struct
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps, UnidentifiedImageError

from media_service.errors import InvalidMedia, UnsupportedMediaType
from media_service.media.ingest.facts import MediaFacts, setting
from media_service.media.ingest.sniff import ACCEPTED_IMAGES, SniffedType, sniff_file

if TYPE_CHECKING:
    import numpy as np

_EXIF_ORIENTATION = 0x0112
_EXIF_GPS_IFD = 0x8825
_SWAPPED_ORIENTATIONS = {5, 6, 7, 8}


def configure_image_limits(settings: Mapping[str, Any]) -> None:
    """Make Pillow's and OpenCV's own pixel limits agree with ``MAX_IMAGE_PIXELS`` (process-wide).

    Call it once at start-up (app factory, worker) before anything decodes an image: OpenCV reads
    ``OPENCV_IO_MAX_IMAGE_PIXELS`` only once, on its first decode.
    """
    cap = int(setting(settings, "MAX_IMAGE_PIXELS"))
    Image.MAX_IMAGE_PIXELS = cap
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(cap)


def _pixel_cap(settings: Mapping[str, Any]) -> int:
    """Our cap, or Pillow's when it is stricter (then Pillow's bomb check is what refuses first)."""
    cap = int(setting(settings, "MAX_IMAGE_PIXELS"))
    pillow_cap = Image.MAX_IMAGE_PIXELS
    return min(cap, int(pillow_cap)) if pillow_cap else cap


def _too_many_pixels(width: int | None, height: int | None, cap: int, *, pixels: int | None = None
                     ) -> InvalidMedia:
    if width and height:
        size = f"is {width}x{height} pixels"
    elif pixels:
        size = f"has {pixels:,} pixels"
    else:
        size = "has too many pixels"
    return InvalidMedia(
        f"the image {size}; at most {cap:,} pixels ({cap / 1e6:.0f} MP) are accepted: "
        f"resize it below {cap:,} pixels (for example {_example_size(cap)}) and upload it again",
        reason="too_many_pixels")


def _example_size(cap: int) -> str:
    side = int(cap ** 0.5)
    return f"{side}x{side}"


def _corrupt(fmt: str, what: str) -> InvalidMedia:
    return InvalidMedia(
        f"the file starts like a {fmt.upper()} image but cannot be decoded ({what}); it is damaged: "
        f"export it again as {ACCEPTED_IMAGES}", reason="corrupt")


def _truncated(fmt: str) -> InvalidMedia:
    return InvalidMedia(
        f"the {fmt.upper()} image ends early: it looks truncated; upload it again", reason="truncated")


@dataclass(frozen=True)
class GifScan:
    """Frame count (stopped at the cap), total delay and largest frame, read without decoding."""

    frames: int
    duration: float | None
    max_frame_pixels: int
    complete: bool  # False when the file ends inside a block


def scan_gif(path: str | os.PathLike[str], max_frames: int) -> GifScan:
    """Walk a GIF's blocks without decoding any pixels, stopping after ``max_frames + 1`` frames."""
    frames = 0
    delay_cs = 0
    max_pixels = 0
    with open(path, "rb") as handle:
        read = handle.read

        def skip_sub_blocks() -> bool:
            while True:
                size = read(1)
                if not size:
                    return False
                if size[0] == 0:
                    return True
                handle.seek(size[0], os.SEEK_CUR)

        header = read(13)
        if len(header) < 13:
            return GifScan(0, None, 0, False)
        packed = header[10]
        if packed & 0x80:
            handle.seek(3 * (2 << (packed & 0x07)), os.SEEK_CUR)
        while frames <= max_frames:
            introducer = read(1)
            if not introducer or introducer == b"\x3b":  # EOF without a trailer is common and harmless
                return GifScan(frames, delay_cs / 100 if frames > 1 else None, max_pixels, True)
            if introducer == b"\x21":
                label = read(1)
                if label == b"\xf9":
                    block = read(6)
                    if len(block) < 6:
                        return GifScan(frames, None, max_pixels, False)
                    delay_cs += struct.unpack("<H", block[2:4])[0]
                    if block[5:6] != b"\x00":
                        handle.seek(-1, os.SEEK_CUR)
                        if not skip_sub_blocks():
                            return GifScan(frames, None, max_pixels, False)
                elif not skip_sub_blocks():
                    return GifScan(frames, None, max_pixels, False)
            elif introducer == b"\x2c":
                descriptor = read(9)
                if len(descriptor) < 9:
                    return GifScan(frames, None, max_pixels, False)
                _, _, width, height, flags = struct.unpack("<HHHHB", descriptor)
                max_pixels = max(max_pixels, width * height)
                if flags & 0x80:
                    handle.seek(3 * (2 << (flags & 0x07)), os.SEEK_CUR)
                if not read(1) or not skip_sub_blocks():  # LZW minimum code size, then the data
                    return GifScan(frames + 1, None, max_pixels, False)
                frames += 1
            else:
                return GifScan(frames, None, max_pixels, False)
    return GifScan(frames, None, max_pixels, True)


def _riff_is_short(path: str | os.PathLike[str]) -> bool:
    """True when a RIFF (WebP) file is shorter than the size its header declares."""
    with open(path, "rb") as handle:
        header = handle.read(8)
        size = os.fstat(handle.fileno()).st_size
    return len(header) == 8 and size < 8 + struct.unpack("<I", header[4:8])[0]


def _expect_image(path: str | os.PathLike[str], sniffed: SniffedType | None) -> SniffedType:
    sniffed = sniffed or sniff_file(path)
    if sniffed.kind != "image" or sniffed.pillow_format is None:
        raise UnsupportedMediaType(
            f"this file is a {sniffed.format.upper()} video, not an image; upload {ACCEPTED_IMAGES}",
            detected=sniffed.format)
    return sniffed


def open_image_safely(path: str | os.PathLike[str], settings: Mapping[str, Any], *,
                      sniffed: SniffedType | None = None, exif_transpose: bool = False) -> Image.Image:
    """Open, check and fully decode the first frame of an untrusted image; return the PIL image.

    Raises UnsupportedMediaType (415) for anything but JPEG/PNG/WebP/GIF and InvalidMedia (422) for
    bombs, too many pixels or frames, truncation and corruption. With ``exif_transpose`` the result is
    turned upright (EXIF orientation applied). Close the image when done (``with`` works).
    """
    return _open_checked(path, settings, _expect_image(path, sniffed), exif_transpose)[0]


def _open_checked(path: str | os.PathLike[str], settings: Mapping[str, Any], sniffed: SniffedType,
                  exif_transpose: bool = False) -> tuple[Image.Image, GifScan | None]:
    """:func:`open_image_safely`, also returning the GIF block scan (so it is read only once)."""
    fmt = sniffed.format
    scan: GifScan | None = None
    cap = _pixel_cap(settings)
    max_frames = int(setting(settings, "MAX_GIF_FRAMES"))
    if fmt == "gif":
        scan = scan_gif(path, max_frames)
        if scan.frames > max_frames:
            raise _too_many_frames(max_frames)
        if scan.max_frame_pixels > cap:
            raise _too_many_pixels(None, None, cap, pixels=scan.max_frame_pixels)
        if not scan.complete:
            raise _truncated(fmt)
    if fmt == "webp" and _riff_is_short(path):
        raise _truncated(fmt)  # libwebp would only say "could not create decoder object"
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image: Image.Image | None = None
        try:
            image = Image.open(path, formats=[sniffed.pillow_format])
            width, height = image.size
            if width <= 0 or height <= 0:
                raise _corrupt(fmt, "zero width or height")
            if width * height > cap:
                raise _too_many_pixels(width, height, cap)
            if getattr(image, "n_frames", 1) > max_frames:  # APNG: acTL header; WebP: demuxer info
                raise _too_many_frames(max_frames)
            image.load()
            if exif_transpose:
                upright = ImageOps.exif_transpose(image)
                if upright is not image:
                    image.close()
                    image = upright
        except InvalidMedia:
            if image is not None:
                image.close()
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            if image is not None:
                image.close()
            found = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow: "Image size (N pixels) exceeds"
            raise _too_many_pixels(None, None, cap, pixels=int(found.group(1)) if found else None) from exc
        except UnidentifiedImageError as exc:
            raise _corrupt(fmt, "not a readable image") from exc
        except ValueError as exc:  # e.g. PNG text chunks that decompress too far ("text chunk bomb")
            if image is not None:
                image.close()
            raise InvalidMedia(
                f"the {fmt.upper()} image carries oversized metadata ({exc}); export it again without "
                "the extra text/metadata", reason="oversized_metadata") from exc
        # Pillow's decoders raise a variety of exception types on hostile input; all mean "damaged".
        except (OSError, SyntaxError, EOFError, struct.error, IndexError, TypeError, KeyError,
                ZeroDivisionError, MemoryError) as exc:
            if image is not None:
                image.close()
            message = str(exc)
            if "truncated" in message or "end of file" in message.lower() or isinstance(exc, EOFError):
                raise _truncated(fmt) from exc
            raise _corrupt(fmt, message[:120] or type(exc).__name__) from exc
    return image, scan


def _too_many_frames(max_frames: int) -> InvalidMedia:
    return InvalidMedia(
        f"the animation has more than {max_frames} frames; shorten it to at most {max_frames} frames "
        "or upload it as a video (MP4 or WebM)", reason="too_many_frames")


def open_image_as_array(path: str | os.PathLike[str], settings: Mapping[str, Any]) -> np.ndarray:
    """An uploaded image, upright, as an OpenCV-style uint8 BGR (or BGRA) array.

    Decoding goes through :func:`open_image_safely` (Pillow with all its checks), never cv2.imread,
    so OpenCV's own decoders never see untrusted bytes.
    """
    import numpy as np

    with open_image_safely(path, settings, exif_transpose=True) as image:
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        converted = image.convert("RGBA" if has_alpha else "RGB")
    array = np.asarray(converted)
    channels = [2, 1, 0, 3] if has_alpha else [2, 1, 0]
    return np.ascontiguousarray(array[:, :, channels])


def _has_gps(image: Image.Image) -> bool:
    try:
        exif = image.getexif()
        if exif.get(_EXIF_GPS_IFD) is not None and len(exif.get_ifd(_EXIF_GPS_IFD)) > 0:
            return True
    except Exception:  # unreadable EXIF means "no usable GPS", not a refusal
        pass
    xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp") or b""
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8", errors="ignore")
    return b"GPSLatitude" in xmp or b"GPSLongitude" in xmp


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # a broken EXIF block is ignored, like browsers do
        return 1


def inspect_image(path: str | os.PathLike[str], sniffed: SniffedType,
                  settings: Mapping[str, Any]) -> MediaFacts:
    """Validate an image upload and describe it (display size after EXIF orientation)."""
    image, scan = _open_checked(path, settings, _expect_image(path, sniffed))
    with image:
        width, height = image.size
        orientation = _orientation(image)
        display = (height, width) if orientation in _SWAPPED_ORIENTATIONS else (width, height)
        duration: float | None = None
        if scan is not None:
            frames, duration = max(scan.frames, 1), scan.duration
        else:
            frames = int(getattr(image, "n_frames", 1))
        details = {
            "codec": sniffed.format,
            "mode": image.mode,
            "coded_width": width,
            "coded_height": height,
            "orientation": orientation,
            "animated": frames > 1,
            "has_alpha": "A" in image.getbands() or "transparency" in image.info,
            "has_icc_profile": bool(image.info.get("icc_profile")),
            "has_location_metadata": _has_gps(image),
        }
    return MediaFacts(kind="image", format=sniffed.format, mime=sniffed.mime, width=display[0],
                      height=display[1], duration=duration, frames=frames, details=details)
