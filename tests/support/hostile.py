"""Generators for the hostile-input corpus of SECURITY.md, plus a canary to detect reads and fetches.

Every case is made here from its public description with ffmpeg, Pillow or a few lines of Python (no
third-party exploit code) and written into a folder the caller gives; each function returns the path.
Both the ingest tests and the API tests reuse them.

Usage::

    with canary() as trap:
        path = hls_playlist_as_mp4(tmp_path, trap.path.as_uri())
        ... upload / inspect path ...
        trap.assert_untouched(response.text)
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import random
import secrets
import socket
import struct
import subprocess
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

FFMPEG = os.environ.get("MEDIA_SERVICE_FFMPEG_BINARY", "ffmpeg")


def _ffmpeg(*args: str) -> None:
    """Run ffmpeg on trusted, generated input (test fixtures only; the service uses video.ffmpeg)."""
    subprocess.run([FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-y", *args], check=True,
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=120)


# --------------------------------------------------------------------------------------------- canary


@dataclass
class Canary:
    """A planted secret file and a 127.0.0.1 listener that records every connection made to it."""

    path: Path
    token: str
    host: str
    port: int
    connections: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """An http URL on the listener (what a playlist would make ffmpeg fetch)."""
        return f"http://{self.host}:{self.port}/canary.ts"

    @property
    def file_url(self) -> str:
        return self.path.as_uri()

    def assert_untouched(self, *outputs: Any) -> None:
        """No connection reached the listener and the secret appears in none of ``outputs``.

        ``outputs`` may be strings, bytes, exceptions (their str, detail and stderr tail are checked),
        paths (their content is read) or anything with a useful ``str``.
        """
        assert not self.connections, f"outbound connection to the canary listener: {self.connections}"
        for output in outputs:
            for text in _texts(output):
                assert self.token not in text, "the canary file's content leaked into an output"


def _texts(output: Any) -> Iterator[str]:
    if output is None:
        return
    if isinstance(output, bytes):
        yield output.decode("latin-1")
    elif isinstance(output, Path):
        if output.is_file():
            yield output.read_bytes().decode("latin-1")
    elif isinstance(output, BaseException):
        seen: set[int] = set()
        error: BaseException | None = output
        while error is not None and id(error) not in seen:  # the whole chain: causes keep stderr tails
            seen.add(id(error))
            yield str(error)
            for name in ("detail", "stderr_tail", "command", "extra"):
                yield str(getattr(error, name, ""))
            error = error.__cause__ or error.__context__
    else:
        yield str(output)


@contextlib.contextmanager
def canary() -> Iterator[Canary]:
    """Plant a canary file (random secret) in a temp folder and listen on an ephemeral 127.0.0.1 port.

    Content-based checks are preferred over atime (filesystems are often mounted noatime).
    """
    token = "CANARY-" + secrets.token_hex(12)
    with tempfile.TemporaryDirectory(prefix="canary-") as folder:
        path = Path(folder) / "secret.txt"
        path.write_text(token + "\n")
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        server.settimeout(0.1)
        trap = Canary(path=path, token=token, host="127.0.0.1", port=server.getsockname()[1])
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, peer = server.accept()
                except (TimeoutError, OSError):
                    continue
                with conn:
                    conn.settimeout(0.5)
                    try:
                        first = conn.recv(1024)
                    except OSError:
                        first = b""
                    trap.connections.append({"peer": peer, "request": first[:200]})

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield trap
        finally:
            stop.set()
            thread.join(timeout=2)
            server.close()


# ------------------------------------------------------------------------------ 1. AVI with embedded HLS


def _riff_chunk(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")


def _riff_list(kind: bytes, body: bytes) -> bytes:
    return _riff_chunk(b"LIST", kind + body)


def hls_text(target: str, *, segments: int = 3) -> str:
    """An HLS media playlist whose segments all point at ``target`` (a file:// or http:// URL)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:10", "#EXT-X-MEDIA-SEQUENCE:0"]
    for _ in range(segments):
        lines += ["#EXTINF:10.0,", target]
    return "\n".join([*lines, "#EXT-X-ENDLIST", ""])


def avi_with_embedded_hls(folder: Path, target: str, name: str = "clip.avi") -> Path:
    """An AVI whose text stream carries a GAB2 subtitle block holding an HLS playlist that points at
    ``target`` (the 2017 "AVI-embedded HLS" local-file-read/SSRF trick, written from its description).

    Layout: RIFF AVI / hdrl (avih + one ``txts`` stream) / movi with one ``00tx`` chunk / idx1.
    The GAB2 payload is ``"GAB2\\0"``, u16 version 2, u32 name length, UTF-16 name, u16 4, u32 size, data.
    """
    playlist = hls_text(target).encode()
    title = "English".encode("utf-16-le") + b"\x00\x00"
    gab2 = (b"GAB2\x00" + struct.pack("<H", 2) + struct.pack("<I", len(title)) + title
            + struct.pack("<H", 4) + struct.pack("<I", len(playlist)) + playlist)
    avih = struct.pack("<IIIIIIIIII4I", 40000, 0, 0, 0x10, 1, 0, 1, len(gab2), 16, 16, 0, 0, 0, 0)
    strh = (b"txts" + b"\x00\x00\x00\x00" + struct.pack("<IHHIIIIIIII4h", 0, 0, 0, 0, 1, 25, 0, 1,
                                                         len(gab2), 0, 0, 0, 0, 0, 0))
    strl = _riff_list(b"strl", _riff_chunk(b"strh", strh) + _riff_chunk(b"strf", b"\x00" * 4))
    hdrl = _riff_list(b"hdrl", _riff_chunk(b"avih", avih) + strl)
    movi = _riff_list(b"movi", _riff_chunk(b"00tx", gab2))
    idx1 = _riff_chunk(b"idx1", b"00tx" + struct.pack("<III", 0x10, 4, len(gab2)))
    body = b"AVI " + hdrl + movi + idx1
    path = folder / name
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


# ----------------------------------------------------------------------- 2-4. playlists and manifests


def hls_playlist_as_mp4(folder: Path, target: str, name: str = "video.mp4", *, bom: bool = False,
                        leading_whitespace: str = "") -> Path:
    """An HLS playlist named like an MP4 (``target``: the canary's file:// URL or its http URL)."""
    text = leading_whitespace + hls_text(target)
    path = folder / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def ffconcat_as_mov(folder: Path, target_path: Path, name: str = "video.mov") -> Path:
    """An ffconcat list named like a MOV, listing the canary file."""
    path = folder / name
    path.write_text(f"ffconcat version 1.0\nfile '{target_path}'\nfile 'file:{target_path}'\n")
    return path


def dash_manifest_as_mp4(folder: Path, base_url: str, name: str = "video.mp4") -> Path:
    """A DASH MPD manifest named like an MP4, whose segments live at ``base_url``."""
    path = folder / name
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT10S"
     minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
  <BaseURL>{base_url}</BaseURL>
  <Period>
    <AdaptationSet mimeType="video/mp4">
      <Representation id="1" bandwidth="100000" width="16" height="16" codecs="avc1.42c00a">
        <SegmentTemplate initialization="init.mp4" media="seg$Number$.m4s" startNumber="1"
                         duration="10" timescale="1"/>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
""")
    return path


# ----------------------------------------------------------------------------------------- 5. truncated


def small_mp4(folder: Path, name: str = "small.mp4", *, seconds: float = 2.0, size: str = "64x48",
              faststart: bool = False, audio: bool = True) -> Path:
    """A small, valid H.264(+AAC) MP4 made with ffmpeg's test sources."""
    path = folder / name
    args = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate=25:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if faststart:
        args += ["-movflags", "+faststart"]
    _ffmpeg(*args, str(path))
    return path


def truncate_copy(source: Path, folder: Path, fraction: float, name: str | None = None) -> Path:
    """A copy of ``source`` cut to ``fraction`` of its bytes."""
    path = folder / (name or f"cut_{int(fraction * 100)}_{source.name}")
    remaining = int(source.stat().st_size * fraction)
    with source.open("rb") as reader, path.open("wb") as writer:  # streamed: sources may be 1 GiB
        while remaining > 0:
            chunk = reader.read(min(remaining, 1 << 20))
            if not chunk:
                break
            writer.write(chunk)
            remaining -= len(chunk)
    return path


def truncated_mp4(folder: Path, *, moov_first: bool, fraction: float = 0.5) -> Path:
    """An MP4 cut at ``fraction`` of its size, with the moov index at the start (faststart) or the end."""
    kind = "moov_first" if moov_first else "moov_last"
    source = small_mp4(folder, f"whole_{kind}.mp4", seconds=4.0, size="160x120", faststart=moov_first)
    return truncate_copy(source, folder, fraction, f"truncated_{kind}.mp4")


# ------------------------------------------------------------------------------- 6. sizes and durations


def huge_frame_video(folder: Path, side: int = 8192) -> Path:
    """A one-frame ``side`` x ``side`` H.264 MP4 (a plain grey frame: small file, huge decode)."""
    path = folder / f"huge_{side}.mp4"
    _ffmpeg("-f", "lavfi", "-i", f"color=c=gray:s={side}x{side}:r=1", "-frames:v", "1", "-c:v", "libx264",
            "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


def ten_hour_video(folder: Path, seconds: int = 36000) -> Path:
    """A 16x16 H.264 MP4 lasting ``seconds`` (10 h) in ~1.5 KB: two frames, one every 5 hours."""
    path = folder / "ten_hours.mp4"
    _ffmpeg("-f", "lavfi", "-i", f"color=c=gray:s=16x16:r=2/{seconds}", "-t", str(seconds),
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


# ------------------------------------------------------------------------------ 7. streams, timestamps


def many_streams_video(folder: Path, streams: int = 100) -> Path:
    """An MP4 with ``streams`` copies of the same tiny video track."""
    source = small_mp4(folder, "one_stream.mp4", seconds=0.5, size="16x16", audio=False)
    path = folder / f"streams_{streams}.mp4"
    maps = [arg for _ in range(streams) for arg in ("-map", "0:v")]
    _ffmpeg("-i", str(source), *maps, "-c", "copy", str(path))
    return path


def negative_timestamps_video(folder: Path) -> Path:
    """A Matroska file whose first frames have negative timestamps (-0.5 s .. -0.1 s)."""
    path = folder / "negative_ts.mkv"
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=16x16:r=10", "-frames:v", "10", "-c:v", "libx264",
            "-preset", "ultrafast", "-bf", "0", "-vf", "setpts=PTS-0.5/TB", "-fps_mode", "passthrough",
            "-avoid_negative_ts", "disabled", str(path))
    return path


def jumping_timestamps_video(folder: Path, jump_seconds: float = 100.0) -> Path:
    """A Matroska file whose timestamps jump forward by ``jump_seconds`` after the fifth frame."""
    path = folder / f"jump_{int(jump_seconds)}.mkv"
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=16x16:r=10", "-frames:v", "10", "-c:v", "libx264",
            "-preset", "ultrafast", "-bf", "0", "-vf", f"setpts=PTS+gte(N\\,5)*{jump_seconds}/TB",
            "-fps_mode", "passthrough", str(path))
    return path


# --------------------------------------------------------------------------------------- 8. metadata


def jpeg_with_gps(folder: Path, name: str = "gps.jpg") -> Path:
    """A 64x48 JPEG with GPS EXIF (latitude/longitude of Berlin) and orientation 6 (rotate 90)."""
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW for display
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (52.0, 31.0, 12.0)
    gps[3] = "E"
    gps[4] = (13.0, 24.0, 36.0)
    path = folder / name
    image.save(path, "JPEG", exif=exif)
    return path


# ------------------------------------------------------------------------------------------ 9. bombs


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_pixel_bomb(folder: Path, side: int = 30000) -> Path:
    """A valid ``side`` x ``side`` 1-bit PNG of zeros (~110 KB on disk, 900 MP when decoded)."""
    row = b"\x00" * (1 + (side + 7) // 8)
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row * 1000) for _ in range(side // 1000)]
    parts.append(compressor.compress(row * (side % 1000)))
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path = folder / f"bomb_{side}.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"".join(parts))
                     + _png_chunk(b"IEND", b""))
    return path


def png_text_chunk_bomb(folder: Path, megabytes: int = 64) -> Path:
    """A 16x16 PNG with a zTXt chunk that inflates to ``megabytes`` MB (tens of KB on disk)."""
    image = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 128, 0)).save(image, "PNG")
    data = image.getvalue()
    text = zlib.compress(b"A" * (megabytes * 1024 * 1024), 9)
    ztxt = _png_chunk(b"zTXt", b"Comment\x00\x00" + text)
    idat_at = data.index(b"IDAT") - 4  # before the first IDAT, so Pillow meets it in open()
    path = folder / "text_bomb.png"
    path.write_bytes(data[:idat_at] + ztxt + data[idat_at:])
    return path


def gif_many_frames(folder: Path, frames: int = 10000) -> Path:
    """A 1x1 animated GIF with ``frames`` frames (~25 bytes each), written block by block."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff")
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    frame = (b"\x21\xf9\x04\x00\x02\x00\x00\x00"  # graphic control: 20 ms delay
             + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)  # image descriptor 1x1
             + b"\x02\x02\x44\x01\x00")  # LZW min code size 2, one 2-byte block, terminator
    out += frame * frames
    out += b"\x3b"
    path = folder / f"frames_{frames}.gif"
    path.write_bytes(bytes(out))
    return path


# --------------------------------------------------------------------------- 10. corruption, truncation


def small_jpeg(folder: Path, name: str = "photo.jpg", size: tuple[int, int] = (320, 240)) -> Path:
    """A noisy (so not trivially compressible) baseline JPEG."""
    rng = random.Random(1234)
    image = Image.frombytes("RGB", size, bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3)))
    path = folder / name
    image.save(path, "JPEG", quality=90)
    return path


def bit_flipped(source: Path, folder: Path, *, flips: int = 40, seed: int = 7, skip: int = 64,
                name: str | None = None) -> Path:
    """A copy of ``source`` with ``flips`` random bits flipped after the first ``skip`` bytes.

    Keeping the first bytes intact keeps the magic number, so the decoder (not the sniffer) meets
    the damage.
    """
    data = bytearray(source.read_bytes())
    rng = random.Random(seed)
    for _ in range(flips):
        position = rng.randrange(skip, len(data))
        data[position] ^= 1 << rng.randrange(8)
    path = folder / (name or f"flipped_{seed}_{source.name}")
    path.write_bytes(bytes(data))
    return path


def bit_flipped_jpeg(folder: Path, seed: int = 7) -> Path:
    return bit_flipped(small_jpeg(folder, f"clean_{seed}.jpg"), folder, seed=seed)


def bit_flipped_mp4(folder: Path, seed: int = 7) -> Path:
    source = small_mp4(folder, f"clean_{seed}.mp4", seconds=2.0, size="160x120", faststart=True)
    return bit_flipped(source, folder, seed=seed, flips=60)


def jpeg_cut(folder: Path, fraction: float = 0.6) -> Path:
    """A JPEG cut at ``fraction`` of its bytes."""
    return truncate_copy(small_jpeg(folder, "whole.jpg"), folder, fraction, "cut.jpg")


# ------------------------------------------------------------------------- 11. polyglots and disguises


HTML_PAYLOAD = b"<html><body><script>alert(document.domain)</script></body></html>"


def jpeg_html_polyglot(folder: Path, name: str = "polyglot.jpg") -> Path:
    """A valid JPEG whose comment (COM) segment holds an HTML document with a script.

    Processing it safely is the right answer: it is a real JPEG, and we re-encode what we publish.
    """
    jpeg = small_jpeg(folder, "base.jpg", size=(64, 48)).read_bytes()
    comment = b"\xff\xfe" + struct.pack(">H", len(HTML_PAYLOAD) + 2) + HTML_PAYLOAD
    path = folder / name
    path.write_bytes(jpeg[:2] + comment + jpeg[2:])
    return path


def html_named_jpg(folder: Path, name: str = "page.jpg") -> Path:
    """An HTML page (with a JPEG appended) named ``.jpg``: it starts as HTML, so it is HTML."""
    path = folder / name
    path.write_bytes(b"\xef\xbb\xbf" + HTML_PAYLOAD + small_jpeg(folder, "tail.jpg", (16, 16)).read_bytes())
    return path


def disguised_documents(folder: Path) -> dict[str, Path]:
    """FITS, PostScript, PSD and ZIP files named as images: ``{"fits": .../x.png, ...}``."""
    fits_header = b"".join(card.ljust(80).encode() for card in [
        "SIMPLE  =                    T", "BITPIX  =                    8", "NAXIS   =                    2",
        "NAXIS1  =                   16", "NAXIS2  =                   16", "END"])
    fits = fits_header.ljust(2880, b" ") + bytes(16 * 16).ljust(2880, b"\x00")
    postscript = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n"
                  b"newpath 0 0 moveto 16 16 lineto stroke showpage\n%%EOF\n")
    psd = (b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 16, 16, 8, 3) + struct.pack(">I", 0) * 3
           + struct.pack(">H", 0) + bytes(16 * 16 * 3))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("image.png", b"not really")
    files = {"fits": ("space.png", fits), "postscript": ("drawing.jpg", postscript),
             "psd": ("layers.png", psd), "zip": ("photos.jpg", archive.getvalue())}
    paths = {}
    for kind, (name, data) in files.items():
        paths[kind] = folder / name
        paths[kind].write_bytes(data)
    return paths


# ------------------------------------------------------------------------------------ 13. file names


HOSTILE_FILENAMES: list[str] = [
    "../../x",
    "..\\..\\x.jpg",
    "/etc/passwd",
    "a.jpg\x00.php",
    "photo\u202egpj.exe",  # right-to-left override: shows as "photoexe.jpg"
    "line\r\nX-Injected: 1.jpg",
    "a" * 300 + ".jpg",
    "-rf.mp4",
    "http:%2F%2F127.0.0.1%2Fx.mp4",
    "file:secret.mp4",
    "concat:a.mp4|b.mp4",
    "<script>alert(1)</script>.png",
    "CON.jpg",
    " .jpg",
    "\u0000",
    "emoji_\U0001F4A5.png",
]


# ------------------------------------------------------------------------------------------ 14. pickle


class _PlantMarker:
    """Unpickling this calls ``open(marker, "w")``: harmless, but proves code ran on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def pickle_model(folder: Path, marker: Path, name: str = "model.pt") -> Path:
    """A raw pickle named ``model.pt`` that would create ``marker`` if anything unpickled it."""
    path = folder / name
    path.write_bytes(pickle.dumps({"state_dict": _PlantMarker(marker)}, protocol=2))
    return path
