"""Sniffing: the type comes from the first bytes, never the name; refusals say what the file looks like."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import pytest

from media_service.errors import InvalidMedia, UnsupportedMediaType
from media_service.media.ingest.sniff import sniff_bytes, sniff_file
from tests.conftest import SHARED_MEDIA


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00\x00\x00\x08free"


def _ebml(doc_type: bytes) -> bytes:
    return b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82" + bytes([0x80 | len(doc_type)]) + doc_type


ACCEPTED: list[tuple[str, bytes, str, str]] = [
    ("jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "jpeg", "image/jpeg"),
    ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", "png", "image/png"),
    ("gif87", b"GIF87a\x01\x00\x01\x00", "gif", "image/gif"),
    ("gif89", b"GIF89a\x01\x00\x01\x00", "gif", "image/gif"),
    ("webp", b"RIFF\x24\x00\x00\x00WEBPVP8 ", "webp", "image/webp"),
    ("mp4 isom", _ftyp(b"isom", b"isom", b"avc1"), "mp4", "video/mp4"),
    ("mp4 mp42", _ftyp(b"mp42", b"mp41"), "mp4", "video/mp4"),
    ("mov qt", _ftyp(b"qt  ", b"qt  "), "mov", "video/quicktime"),
    ("3gp", _ftyp(b"3gp4", b"3gp4", b"isom"), "3gp", "video/3gpp"),
    ("legacy mov (wide atom)", b"\x00\x00\x00\x08wide\x00\x01\x00\x00mdat", "mov", "video/quicktime"),
    ("legacy mov (mdat first)", b"\x00\x00\x10\x00mdat\x00\x00", "mov", "video/quicktime"),
    ("webm", _ebml(b"webm"), "webm", "video/webm"),
    ("matroska", _ebml(b"matroska"), "matroska", "video/x-matroska"),
]


@pytest.mark.parametrize(("head", "fmt", "mime"), [a[1:] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_accepted_magic(head: bytes, fmt: str, mime: str) -> None:
    sniffed = sniff_bytes(head)
    assert (sniffed.format, sniffed.mime) == (fmt, mime)
    assert (sniffed.pillow_format is None) == (sniffed.kind == "video")
    assert (sniffed.demuxer in {"mov", "matroska"}) == (sniffed.kind == "video")


HLS = b"#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1/x.ts\n"
REFUSED: list[tuple[str, bytes, str]] = [
    ("hls", HLS, "HLS"),
    ("hls utf-8 bom", b"\xef\xbb\xbf" + HLS, "HLS"),
    ("hls whitespace", b"\r\n \t\n" + HLS, "HLS"),
    ("hls bom + whitespace", b"\xef\xbb\xbf\n\n  " + HLS, "HLS"),
    ("hls utf-16 bom", b"\xff\xfe" + HLS.decode().encode("utf-16-le"), "HLS"),
    ("hls lowercase, no header", b"#EXTINF:10,\nfile:///etc/passwd\n", "HLS"),
    ("ffconcat", b"ffconcat version 1.0\nfile '/etc/passwd'\n", "concat"),
    ("concat without header", b"file '/etc/passwd'\n", "concat"),
    ("dash", b"<?xml version='1.0'?>\n<MPD xmlns='urn:mpeg:dash:schema:mpd:2011'>", "DASH"),
    ("dash with bom", b"\xef\xbb\xbf  <MPD>", "DASH"),
    ("html", b"<!DOCTYPE html><html><body>hi</body></html>", "HTML"),
    ("svg", b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>", "SVG"),
    ("pdf", b"%PDF-1.7\n", "PDF"),
    ("postscript", b"%!PS-Adobe-3.0\n", "PostScript"),
    ("psd", b"8BPS\x00\x01", "PSD"),
    ("fits", b"SIMPLE  =                    T", "FITS"),
    ("zip", b"PK\x03\x04\x14\x00", "ZIP"),
    ("torch zip", b"PK\x03\x04\x00\x00\x08\x08archive/data.pkl", "PyTorch"),
    ("pickle", pickle.dumps({"a": 1}, protocol=2), "pickle"),
    ("pickle protocol 5", pickle.dumps([1, 2], protocol=5), "pickle"),
    ("avi", b"RIFF\x00\x10\x00\x00AVI LIST", "AVI"),
    ("wav", b"RIFF\x00\x10\x00\x00WAVEfmt ", "WAV"),
    ("mpeg-ts", (b"\x47" + b"\x00" * 187) * 3, "MPEG-TS"),
    ("flv", b"FLV\x01\x05", "FLV"),
    ("bmp", b"BM\x36\x00\x00\x00", "BMP"),
    ("tiff", b"II*\x00\x08\x00", "TIFF"),
    ("heic", _ftyp(b"heic", b"mif1", b"heic"), "HEIC"),
    ("avif", _ftyp(b"avif", b"mif1", b"avif"), "AVIF"),
    ("avif via mif1", _ftyp(b"mif1", b"avif", b"miaf"), "AVIF"),
    ("m4a", _ftyp(b"M4A ", b"isom"), "audio"),
    ("matroska-like ebml", _ebml(b"xyz"), "EBML"),
    ("elf", b"\x7fELF\x02\x01", "executable"),
    ("ogg", b"OggS\x00\x02", "Ogg"),
]


@pytest.mark.parametrize(("head", "looks_like"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused_and_named(head: bytes, looks_like: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        sniff_bytes(head)
    error = caught.value
    assert error.status == 415
    assert looks_like.lower() in error.detail.lower()
    assert looks_like.lower() in str(error.extra.get("detected")).lower()
    assert "upload" in error.detail or "export" in error.detail


def test_unknown_bytes_are_refused_with_the_accepted_list() -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        sniff_bytes(b"\x00\x01\x02\x03 random binary \x00" * 10)
    assert "not recognised" in caught.value.detail and "MP4" in caught.value.detail
    assert "detected" not in caught.value.extra


def test_empty_is_invalid_not_unsupported() -> None:
    with pytest.raises(InvalidMedia):
        sniff_bytes(b"")


def test_the_name_is_never_used(tmp_path: Path) -> None:
    real_png = (SHARED_MEDIA / "logos/solidus_logo.png").read_bytes()
    for name in ("logo.mp4", "logo.m3u8", "logo", "logo.jpg"):
        (tmp_path / name).write_bytes(real_png)
        assert sniff_file(tmp_path / name).format == "png"
