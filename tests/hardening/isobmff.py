"""Surgery on MP4/MOV box trees for hostile-input tests: external data references, empty sample tables.

Files are made by ffmpeg first (``tests.support.hostile.small_mp4``, media data before the index), then edited
here: the box tree is parsed, one box changed, and every enclosing size rewritten. Because ``mdat`` comes
before ``moov``, growing the index moves no sample offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"dinf", b"stbl", b"edts", b"udta"}


@dataclass
class Box:
    kind: bytes
    payload: bytes = b""
    children: list[Box] = field(default_factory=list)

    def serialise(self) -> bytes:
        body = b"".join(child.serialise() for child in self.children) if self.kind in CONTAINERS else self.payload
        return struct.pack(">I4s", 8 + len(body), self.kind) + body

    def find(self, *path: bytes) -> list[Box]:
        """All descendants along ``path`` (each step a box type)."""
        found = [self]
        for kind in path:
            found = [child for box in found for child in box.children if child.kind == kind]
        return found


def parse(data: bytes) -> list[Box]:
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:
            raise ValueError("64-bit box sizes are not handled by this helper")
        size = size or len(data) - offset
        payload = data[offset + 8:offset + size]
        box = Box(kind, payload)
        if kind in CONTAINERS:
            box.children = parse(payload)
        boxes.append(box)
        offset += size
    return boxes


def _alias_entry(path: str) -> bytes:
    """A Mac alias record ('alis') naming an absolute path, as QuickTime writes for reference movies."""
    record = bytearray(150)
    record[10] = 7
    record[11:18] = b"Macintosh"[:7]
    name = Path(path).name.encode()[:63]
    record[50] = len(name)
    record[51:51 + len(name)] = name
    raw = path.encode()
    padded = raw + (b"\0" if len(raw) % 2 else b"")
    records = struct.pack(">hH", 2, len(raw)) + padded + struct.pack(">hH", -1, 0)
    body = struct.pack(">I", 0) + bytes(record) + records  # version/flags 0: the data is elsewhere
    return struct.pack(">I4s", 8 + len(body), b"alis") + body


def _url_entry(url: str) -> bytes:
    body = struct.pack(">I", 0) + url.encode() + b"\0"  # flags 0: not in this file
    return struct.pack(">I4s", 8 + len(body), b"url ") + body


def external_reference(source: Path, target: Path, elsewhere: str, *, kind: str = "alis") -> Path:
    """A copy of ``source`` whose tracks' data reference points to ``elsewhere`` (another file or a URL)."""
    top = parse(source.read_bytes())
    moov = next(box for box in top if box.kind == b"moov")
    entry = _alias_entry(elsewhere) if kind == "alis" else _url_entry(elsewhere)
    for dref in moov.find(b"trak", b"mdia", b"minf", b"dinf"):
        for child in dref.children:
            if child.kind == b"dref":
                child.payload = struct.pack(">II", 0, 1) + entry
    target.write_bytes(b"".join(box.serialise() for box in top))
    return target


def empty_sample_tables(source: Path, target: Path) -> Path:
    """A copy of ``source`` whose sample size and chunk offset tables list no samples (sizes kept)."""
    top = parse(source.read_bytes())
    moov = next(box for box in top if box.kind == b"moov")
    for stbl in moov.find(b"trak", b"mdia", b"minf", b"stbl"):
        for child in stbl.children:
            if child.kind == b"stsz":  # version/flags, sample_size, sample_count
                child.payload = child.payload[:8] + struct.pack(">I", 0) + child.payload[12:]
            elif child.kind in (b"stco", b"co64", b"stsc"):  # version/flags, entry_count
                child.payload = child.payload[:4] + struct.pack(">I", 0) + child.payload[8:]
    target.write_bytes(b"".join(box.serialise() for box in top))
    return target
