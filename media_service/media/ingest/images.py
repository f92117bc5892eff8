"""Opening untrusted images safely, and the facts we record about them.

:func:`open_image_safely` is the one way the service opens an uploaded image: only the Pillow plugin of
the sniffed format may parse it, the pixel cap is checked from the header before anything is decoded,
Pillow's decompression-bomb warning is an error, animated images have a frame cap counted cheaply, and
the first frame is fully decoded so truncation and corruption are found at upload time, not in a job.


Over 500 lines on purpose: the whole policy for decoding untrusted images (caps, scan counting, bounded
validation of huge images and the child-process decode entry point) is kept in one reviewable module."""

from __future__ import annotations

import json
import math
import mmap
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import threading
import warnings
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from PIL import Image, ImageOps, UnidentifiedImageError

from media_service.errors import InvalidMedia, TooManyRequests, UnsupportedMediaType
from media_service.media.ingest.facts import IngestLimits, MediaFacts
from media_service.media.ingest.sniff import ACCEPTED_IMAGES, SniffedType, sniff_file
from media_service.media.video.ffmpeg import FFmpegTools

if TYPE_CHECKING:
    import numpy as np

_EXIF_ORIENTATION = 0x0112
_EXIF_GPS_IFD = 0x8825
_SWAPPED_ORIENTATIONS = {5, 6, 7, 8}


def configure_image_limits(limits: IngestLimits) -> None:
    """Make Pillow's and OpenCV's own pixel limits agree with ``MAX_IMAGE_PIXELS`` (process-wide).

    Call it once at start-up (app factory, worker) before anything decodes an image: OpenCV reads
    ``OPENCV_IO_MAX_IMAGE_PIXELS`` only once, on its first decode.
    """
    cap = limits.max_image_pixels
    Image.MAX_IMAGE_PIXELS = cap
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(cap)


def _pixel_cap(limits: IngestLimits) -> int:
    """Our cap, or Pillow's when it is stricter (then Pillow's bomb check is what refuses first)."""
    cap = limits.max_image_pixels
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


def count_jpeg_scans(path: str | os.PathLike[str]) -> int:
    """Start-of-scan markers in a JPEG, counted without decoding.

    Entropy-coded data stuffs every 0xFF with 0x00, so ``FF DA`` only occurs as a marker (an embedded EXIF
    thumbnail adds its own one or two). A progressive file has about ten scans; thousands of (empty)
    scans make the decoder redo the whole image each time: minutes of CPU for a file of under 1 MB.
    """
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return 0
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            count, position = 0, data.find(b"\xff\xda")
            while position != -1:
                count += 1
                position = data.find(b"\xff\xda", position + 2)
            return count


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _png_raw_size(width: int, height: int, bit_depth: int, color_type: int, interlaced: bool) -> tuple[int, int]:
    """Bytes of filtered scanlines the IDAT stream must inflate to, and the row length (non-interlaced)."""
    bits = _PNG_CHANNELS.get(color_type, 4) * bit_depth

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if not interlaced:
        return rows(width, height), 1 + (width * bits + 7) // 8
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    total = sum(rows((width - x + dx - 1) // dx, (height - y + dy - 1) // dy) for x, y, dx, dy in passes)
    return total, 0


def check_png_stream(path: str | os.PathLike[str], block: int = 1 << 20) -> None:
    """Validate a PNG's image data without holding the image: chunk CRCs, the zlib stream inflated in
    blocks of ``block`` bytes, every row's filter type, and the exact inflated size. Memory stays about
    ``block`` bytes whatever the pixel count; raises InvalidMedia (truncated or corrupt)."""
    with open(path, "rb") as handle:
        if handle.read(8) != b"\x89PNG\r\n\x1a\n":
            raise _corrupt("png", "no PNG signature")
        inflater = zlib.decompressobj()
        expected = row = produced = 0
        seen_idat = ended = False
        while True:
            header = handle.read(8)
            if len(header) < 8:
                raise _truncated("png")
            length, kind = struct.unpack(">I4s", header)
            if length > 1 << 31:
                raise _corrupt("png", "a chunk length is invalid")
            crc = zlib.crc32(kind)
            remaining = length
            while remaining:
                data = handle.read(min(remaining, block))
                if not data:
                    raise _truncated("png")
                remaining -= len(data)
                crc = zlib.crc32(data, crc)
                if kind == b"IHDR" and expected == 0 and len(data) >= 13:
                    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data[:13])
                    expected, row = _png_raw_size(width, height, depth, color, interlace == 1)
                elif kind == b"IDAT":
                    seen_idat = True
                    try:
                        pending = data
                        while pending and not ended:
                            out = inflater.decompress(pending, block)
                            if row:
                                first = (-produced) % row  # where the next row starts inside ``out``
                                if out[first::row] and max(out[first::row]) > 4:
                                    raise _corrupt("png", "a row has an unknown filter type")
                            produced += len(out)
                            if produced > expected:
                                raise _corrupt("png", "more image data than its size")
                            pending = inflater.unconsumed_tail
                            ended = inflater.eof
                    except zlib.error as exc:
                        raise _corrupt("png", f"the image data is damaged ({exc})") from exc
            stored = handle.read(4)
            if len(stored) < 4:
                raise _truncated("png")
            if struct.unpack(">I", stored)[0] != crc & 0xFFFFFFFF:
                raise _corrupt("png", f"the {kind.decode('latin-1')} chunk fails its checksum")
            if kind == b"IEND" or (seen_idat and kind not in (b"IDAT",) and ended):
                break
        if not seen_idat or produced < expected:
            raise _truncated("png")


class _HeavyValidations:
    """Bounds how many big images this process validates at once (their decoders' memory adds up)."""

    def __init__(self) -> None:
        self._semaphore: threading.BoundedSemaphore | None = None
        self._lock = threading.Lock()

    def slot(self, limits: IngestLimits) -> threading.BoundedSemaphore:
        with self._lock:
            if self._semaphore is None:
                self._semaphore = threading.BoundedSemaphore(max(1, limits.image_heavy_validations))
            return self._semaphore


_HEAVY = _HeavyValidations()
HEAVY_WAIT_SECONDS = 30.0


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


def open_image_safely(path: str | os.PathLike[str], limits: IngestLimits, *,
                      sniffed: SniffedType | None = None, exif_transpose: bool = False,
                      draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Open, check and fully decode the first frame of an untrusted image; return the PIL image.

    Raises UnsupportedMediaType (415) for anything but JPEG/PNG/WebP/GIF and InvalidMedia (422) for
    bombs, too many pixels, frames or JPEG scans, truncation and corruption. With ``exif_transpose`` the
    result is turned upright (EXIF orientation applied). ``draft_size``: a JPEG may be decoded at 1/2,
    1/4 or 1/8 scale while staying at least this large (a thumbnail's time and memory, not the photo's).
    Close the image when done (``with`` works).
    """
    return _open_checked(path, limits, _expect_image(path, sniffed), exif_transpose, draft_size=draft_size)[0]


def _open_checked(path: str | os.PathLike[str], limits: IngestLimits, sniffed: SniffedType,
                  exif_transpose: bool = False, *, draft_size: tuple[int, int] | None = None,
                  load: bool = True) -> tuple[Image.Image, GifScan | None]:
    """:func:`open_image_safely`, also returning the GIF block scan (so it is read only once).

    ``load=False`` checks everything read from headers and leaves decoding to the caller.
    """
    fmt = sniffed.format
    scan: GifScan | None = None
    cap = _pixel_cap(limits)
    max_frames = limits.max_gif_frames
    if fmt == "jpeg":
        max_scans = limits.max_jpeg_scans
        scans = count_jpeg_scans(path)
        if scans > max_scans:
            raise InvalidMedia(
                f"the JPEG has {scans:,} scans; at most {max_scans} are accepted (a progressive JPEG has about "
                "10): save it again as a baseline or standard progressive JPEG", reason="too_many_scans")
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
            if draft_size is not None and fmt == "jpeg":
                image.draft(image.mode, draft_size)  # DCT scaling: decodes every scan, at a fraction of the cost
            if load:
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


def open_image_as_array(path: str | os.PathLike[str], limits: IngestLimits) -> np.ndarray:
    """An uploaded image, upright, as an OpenCV-style uint8 BGR (or BGRA) array.

    Decoding goes through :func:`open_image_safely` (Pillow with all its checks), never cv2.imread,
    so OpenCV's own decoders never see untrusted bytes.
    """
    import numpy as np

    with open_image_safely(path, limits, exif_transpose=True) as image:
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        converted = image.convert("RGBA" if has_alpha else "RGB")
    array = np.asarray(converted)
    channels = [2, 1, 0, 3] if has_alpha else [2, 1, 0]
    return np.ascontiguousarray(array[:, :, channels])


def _exif(image: Image.Image, *, may_decode: bool) -> Image.Exif:
    """The image's EXIF; a PNG's comes from decoding when it follows the data, which ``may_decode`` forbids."""
    if not may_decode and image.format == "PNG" and "exif" not in image.info:
        return Image.Exif()
    try:
        return image.getexif()
    except Exception:  # unreadable EXIF is ignored, like browsers do
        return Image.Exif()


def _has_gps(image: Image.Image, exif: Image.Exif) -> bool:
    try:
        if exif.get(_EXIF_GPS_IFD) is not None and len(exif.get_ifd(_EXIF_GPS_IFD)) > 0:
            return True
    except Exception:  # unreadable EXIF means "no usable GPS", not a refusal
        pass
    xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp") or b""
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8", errors="ignore")
    return b"GPSLatitude" in xmp or b"GPSLongitude" in xmp


def _orientation(exif: Image.Exif) -> int:
    try:
        value = exif.get(_EXIF_ORIENTATION, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # a broken EXIF block is ignored, like browsers do
        return 1


def _validate_heavy(image: Image.Image, path: str | os.PathLike[str], sniffed: SniffedType,
                    limits: IngestLimits) -> None:
    """Decode a big image the cheap way, holding one of the process's heavy-validation slots."""
    slot = _HEAVY.slot(limits)
    if not slot.acquire(timeout=HEAVY_WAIT_SECONDS):
        raise TooManyRequests("many large images are being checked right now; send this one again shortly",
                              retry_after=10, code="validation_busy")
    try:
        if sniffed.format == "png":
            check_png_stream(path)
        else:
            width, height = image.size
            _decode_in_child(path, limits, (max(1, width // 8), max(1, height // 8)))
    finally:
        slot.release()


def _child_limits(memory_bytes: int, cpu_seconds: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    return apply


def _decode_in_child(path: str | os.PathLike[str], limits: IngestLimits, draft: tuple[int, int]) -> None:
    """Decode an image in a child process with a deadline and a memory limit; its refusal becomes ours.

    A decoder stuck in C code cannot be interrupted inside a request thread; a child can be killed, and
    its memory is returned when it exits.
    """
    timeout = limits.image_decode_timeout_seconds
    memory = limits.image_decode_memory_mb * 1024 * 1024
    command = [sys.executable, "-m", "media_service.media.ingest.images", os.fspath(path), json.dumps(asdict(limits)),
               f"{draft[0]}x{draft[1]}"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              preexec_fn=_child_limits(memory, max(1, math.ceil(timeout))))
    except subprocess.TimeoutExpired as exc:
        raise _too_costly(f"it did not decode within {timeout:g} s") from exc
    if done.returncode == 0:
        return
    try:
        problem = json.loads(done.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        problem = None
    if isinstance(problem, dict) and problem.get("detail"):
        raise InvalidMedia(str(problem["detail"]), reason=str(problem.get("reason", "corrupt")))
    if done.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise _too_costly(f"it did not decode within {timeout:g} s of CPU")
    raise _too_costly("its decoder ran out of the memory an upload check may use")


def _too_costly(why: str) -> InvalidMedia:
    return InvalidMedia(f"the image is too costly to decode ({why}); save it again as a standard JPEG, PNG or "
                        "WebP, or smaller", reason="too_costly")


def _limits_from_json(text: str) -> IngestLimits:
    values = json.loads(text)
    return IngestLimits(**{**values, "tools": FFmpegTools(**values["tools"])})


def _child_main(argv: list[str]) -> int:
    """``python -m media_service.media.ingest.images <path> <limits json> <W>x<H>``: decode once, report as JSON."""
    path, limits, draft_text = argv[0], _limits_from_json(argv[1]), argv[2]
    width, _, height = draft_text.partition("x")
    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
    try:
        image, _ = _open_checked(path, limits, _expect_image(path, None), draft_size=(int(width), int(height)))
        image.close()
    except InvalidMedia as exc:
        print(json.dumps({"detail": exc.detail, **exc.extra}))
        return 3
    except MemoryError:
        print(json.dumps({"detail": "the image needs more memory to decode than an upload check may use",
                          "reason": "too_costly"}))
        return 4
    return 0


def inspect_image(path: str | os.PathLike[str], sniffed: SniffedType,
                  limits: IngestLimits) -> MediaFacts:
    """Validate an image upload and describe it (display size after EXIF orientation).

    Big images are validated with bounded memory, a few at a time per process: a JPEG is decoded at 1/8
    scale (every scan is still read, so damage is found), a PNG's data is inflated and checked row by
    row without holding the image; other formats are decoded whole.
    """
    sniffed = _expect_image(path, sniffed)
    image, scan = _open_checked(path, limits, sniffed, load=False)
    width, height = image.size
    heavy = width * height > limits.image_heavy_pixels
    try:
        if heavy:
            _validate_heavy(image, path, sniffed, limits)
        else:
            image.close()
            image, scan = _open_checked(path, limits, sniffed)
    except BaseException:
        image.close()
        raise
    with image:
        exif = _exif(image, may_decode=not heavy)
        orientation = _orientation(exif)
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
            "has_location_metadata": _has_gps(image, exif),
        }
    return MediaFacts(kind="image", format=sniffed.format, mime=sniffed.mime, width=display[0],
                      height=display[1], duration=duration, frames=frames, details=details)


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
