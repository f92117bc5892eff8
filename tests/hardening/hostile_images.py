"""Cheap-to-make, expensive-to-decode images: many-scan progressive JPEGs and big, tiny PNGs."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image


def many_scan_jpeg(folder: Path, *, scans: int, size: tuple[int, int] = (2000, 2000)) -> Path:
    """A progressive JPEG whose last scan is repeated until the file has ``scans`` scans.

    Each repeat is a complete scan the decoder must apply to the whole image again; it adds only the
    bytes of that (small) scan to the file.
    """
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, "JPEG", progressive=True, quality=80)
    data = buffer.getvalue()
    last = data.rfind(b"\xff\xda")
    body, eoi = data[last:-2], data[-2:]
    existing = data.count(b"\xff\xda")
    path = folder / f"scans_{scans}.jpg"
    path.write_bytes(data[:-2] + body * max(0, scans - existing) + eoi)
    return path


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def big_flat_png(folder: Path, width: int, height: int, *, name: str = "big.png") -> Path:
    """An RGB PNG of ``width`` x ``height`` flat pixels: megabytes of pixels from kilobytes of file."""
    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * (3 * width)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path = folder / name
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))
    return path


def damaged_png(source: Path, folder: Path, *, truncate: bool) -> Path:
    """``source`` cut inside its image data, or with its deflate stream damaged (checksums recomputed)."""
    data = bytearray(source.read_bytes())
    start = data.find(b"IDAT") - 4
    length = struct.unpack(">I", data[start:start + 4])[0]
    path = folder / (("cut_" if truncate else "broken_") + source.name)
    if truncate:
        path.write_bytes(bytes(data[:start + 8 + length // 2]))
        return path
    payload = bytearray(data[start + 8:start + 8 + length])
    for offset in range(len(payload) // 2, len(payload) // 2 + 16):
        payload[offset] ^= 0x5A
    fixed = bytes(data[:start]) + _chunk(b"IDAT", bytes(payload)) + bytes(data[start + 12 + length:])
    path.write_bytes(fixed)
    return path
