"""What a file really is, from its first bytes (never its name or the client's Content-Type).

Only the formats the service can process safely are accepted; for everything else the error names what
the file looks like when we can tell (an HLS playlist renamed ``.mp4`` is refused as a playlist, however
it is named and with or without a byte-order mark), so the uploader knows what to do instead.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from media_service.errors import InvalidMedia, UnsupportedMediaType

#: Bytes read from the start of a file to decide what it is.
SNIFF_BYTES = 4096

ACCEPTED_IMAGES = "JPEG, PNG, WebP or GIF"
ACCEPTED_VIDEOS = "MP4 (H.264), MOV or WebM"
ACCEPTED_HINT = f"upload a {ACCEPTED_IMAGES} image, or a video exported as MP4 (H.264) or WebM"


@dataclass(frozen=True)
class SniffedType:
    """An accepted type: its kind, our format name, MIME type and how to open it safely."""

    kind: str  # "image" | "video"
    format: str  # "jpeg" | "png" | "webp" | "gif" | "mp4" | "mov" | "3gp" | "webm" | "matroska"
    mime: str
    pillow_format: str | None = None  # the only Pillow plugin allowed to open it
    demuxer: str | None = None  # the only ffmpeg demuxer allowed to open it


JPEG = SniffedType("image", "jpeg", "image/jpeg", pillow_format="JPEG")
PNG = SniffedType("image", "png", "image/png", pillow_format="PNG")
WEBP = SniffedType("image", "webp", "image/webp", pillow_format="WEBP")
GIF = SniffedType("image", "gif", "image/gif", pillow_format="GIF")
MP4 = SniffedType("video", "mp4", "video/mp4", demuxer="mov")
MOV = SniffedType("video", "mov", "video/quicktime", demuxer="mov")
THREE_GP = SniffedType("video", "3gp", "video/3gpp", demuxer="mov")
WEBM = SniffedType("video", "webm", "video/webm", demuxer="matroska")
MATROSKA = SniffedType("video", "matroska", "video/x-matroska", demuxer="matroska")

# ISO-BMFF brands (major or compatible). Images in HEIF/AVIF containers share the box structure.
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1",
                b"mif2", b"mif3"}
_AVIF_BRANDS = {b"avif", b"avis"}
_QT_BRANDS = {b"qt  "}
_3GP_PREFIXES = (b"3gp", b"3g2", b"3ge", b"3gg", b"3gs")
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_JPEG2000_BRANDS = {b"jp2 ", b"jpx ", b"jpm ", b"mjp2"}
_CANON_RAW_BRANDS = {b"crx "}
# Top-level QuickTime atoms a legacy .mov may start with instead of "ftyp".
_QT_FIRST_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


def _refuse(looks_like: str | None, advice: str = ACCEPTED_HINT) -> UnsupportedMediaType:
    if looks_like:
        detail = f"this file is {looks_like}, which is not accepted; {advice}"
    else:
        detail = f"this file's type is not recognised from its content (its name does not count); {advice}"
    extra = {"detected": looks_like} if looks_like else {}
    return UnsupportedMediaType(detail, **extra)


def _iso_bmff(head: bytes) -> SniffedType:
    size = struct.unpack(">I", head[:4])[0]
    end = min(len(head), size) if size >= 16 else min(len(head), 16)
    major = head[8:12]
    compatible = {head[i:i + 4] for i in range(16, end - 3, 4)}
    brands = {major} | compatible
    if major in _AVIF_BRANDS or (major in {b"mif1", b"msf1"} and brands & _AVIF_BRANDS):
        raise _refuse("an AVIF image",
                      f"AVIF is not supported yet: export it as {ACCEPTED_IMAGES} (for example PNG or JPEG)")
    if major in _HEIF_BRANDS:
        raise _refuse("a HEIC/HEIF image",
                      "HEIC is not supported yet: export it as JPEG (on an iPhone: Settings > Camera > "
                      "Formats > Most Compatible) or PNG")
    if major in _AUDIO_BRANDS:
        raise _refuse("an audio-only MP4 (M4A)", "upload a video with a picture track, as MP4 or WebM")
    if major in _JPEG2000_BRANDS:
        raise _refuse("a JPEG 2000 image", f"export it as {ACCEPTED_IMAGES}")
    if major in _CANON_RAW_BRANDS:
        raise _refuse("a camera RAW file (CR3)", f"export it as {ACCEPTED_IMAGES}")
    if major in _QT_BRANDS:
        return MOV
    if major.startswith(_3GP_PREFIXES):
        return THREE_GP
    return MP4


def _ebml(head: bytes) -> SniffedType:
    """Matroska or WebM, from the EBML header's DocType."""
    marker = head.find(b"\x42\x82")  # DocType element id
    if marker != -1 and marker + 3 < len(head):
        length_byte = head[marker + 2]
        if length_byte & 0x80:  # one-byte size, which every real muxer writes
            doc_type = head[marker + 3: marker + 3 + (length_byte & 0x7F)]
            if doc_type == b"webm":
                return WEBM
            if doc_type == b"matroska":
                return MATROSKA
    raise _refuse("an EBML file that is neither Matroska nor WebM", f"export it as {ACCEPTED_VIDEOS}")


def _text(head: bytes) -> str | None:
    """The start of a text file, BOM and leading whitespace removed; None when it is not text."""
    for bom, encoding in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom):].decode(encoding, errors="ignore").lstrip()
    if b"\x00" in head[:512]:
        return None
    return head.decode("utf-8", errors="ignore").lstrip()


def _describe_text(text: str) -> str | None:
    lowered = text[:SNIFF_BYTES].lower()
    start = lowered[:64]
    if start.startswith("#extm3u") or "#ext-x-" in lowered or "#extinf" in lowered:
        return "an HLS playlist (M3U8)"
    if start.startswith("ffconcat") or lowered.startswith("file '") or lowered.startswith("file /"):
        return "an ffmpeg concat list"
    if "<mpd" in lowered:
        return "a DASH manifest (MPD)"
    if "<smil" in lowered:
        return "a SMIL playlist"
    if start.startswith("[playlist]") or "<asx" in start:
        return "a playlist"
    if "<svg" in lowered:
        return "an SVG image"
    if start.startswith("<!doctype html") or "<html" in lowered or "<script" in lowered:
        return "an HTML document"
    if start.startswith("<?xml") or start.startswith("<"):
        return "an XML document"
    if start.startswith("%pdf"):
        return "a PDF document"
    if start.startswith("%!ps"):
        return "a PostScript document"
    if start.startswith("#!"):
        return "a script"
    if start.startswith("{") or start.startswith("["):
        return "a JSON/text document"
    if start.startswith("webvtt") or (start[:1].isdigit() and "-->" in lowered):
        return "a subtitle file"
    return None


# (prefix, description) checked in order against the raw first bytes.
_REFUSED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"%!PS", "a PostScript document"),
    (b"\xc5\xd0\xd3\xc6", "an EPS (PostScript) document"),
    (b"8BPS", "a Photoshop (PSD) document"),
    (b"SIMPLE  =", "a FITS astronomy image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an XZ archive"),
    (b"\x7fELF", "a Linux executable"),
    (b"MZ", "a Windows executable"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image (or camera RAW)"),
    (b"MM\x00*", "a TIFF image (or camera RAW)"),
    (b"\x00\x00\x01\x00", "an ICO icon"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"\x00\x00\x00\x0cJXL ", "a JPEG XL image"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (b"\x76\x2f\x31\x01", "an OpenEXR image"),
    (b"#?RADIANCE", "a Radiance HDR image"),
    (b"FLV\x01", "a Flash video (FLV)"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "a Windows Media (ASF/WMV) file"),
    (b"\x00\x00\x01\xba", "an MPEG program stream (MPEG-PS/VOB)"),
    (b"\x00\x00\x01\xb3", "an MPEG-1/2 video stream"),
    (b"OggS", "an Ogg file"),
    (b"fLaC", "a FLAC audio file"),
    (b"ID3", "an MP3 audio file"),
    (b".RMF", "a RealMedia file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Office document (OLE)"),
)


def _describe_binary(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"AVI ": "an AVI video", b"WAVE": "a WAV audio file", b"AVIX": "an AVI video",
                b"CDXA": "a Video CD file"}.get(head[8:12], "a RIFF file")
    if len(head) >= 377 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47:
        return "an MPEG transport stream (MPEG-TS)"
    if len(head) >= 193 and head[4] == 0x47 and head[196:197] == b"\x47":
        return "an MPEG transport stream (M2TS)"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle (model weights or serialised objects)"
    if head[:2] == b"\xff\xfb" or head[:2] == b"\xff\xf3" or head[:2] == b"\xff\xf2":
        return "an MP3 audio file"
    for magic, description in _REFUSED_MAGIC:
        if head.startswith(magic):
            if magic.startswith(b"PK"):
                return _describe_zip(head)
            return description
    return None


def _describe_zip(head: bytes) -> str:
    if b"data.pkl" in head or b"/data/" in head or (b"version" in head[:200] and b"archive/" in head):
        return "a ZIP archive holding a PyTorch/pickle model"
    if b"word/" in head or b"xl/" in head or b"ppt/" in head or b"[Content_Types].xml" in head:
        return "an Office document (ZIP)"
    return "a ZIP archive"


def sniff_bytes(head: bytes) -> SniffedType:
    """The accepted type of a file starting with ``head``; raises UnsupportedMediaType otherwise."""
    if not head:
        raise InvalidMedia("the file is empty; upload it again", reason="empty")
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _iso_bmff(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _ebml(head)
    atom_size = struct.unpack(">I", head[:4])[0] if len(head) >= 8 else 0
    if len(head) >= 8 and head[4:8] in _QT_FIRST_ATOMS and atom_size not in range(2, 8):
        return MOV  # legacy QuickTime without an ftyp box
    looks_like = _describe_binary(head)
    if looks_like is None:
        text = _text(head)
        looks_like = _describe_text(text) if text is not None else None
    raise _refuse(looks_like)


def sniff_file(path: str | os.PathLike[str]) -> SniffedType:
    """Read the first bytes of ``path`` and return its accepted type (see :func:`sniff_bytes`)."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    return sniff_bytes(head)
