"""HDR (PQ or HLG, BT.2020) to SDR BT.709: the filter chain the ladder runs, checked against this ffmpeg.

``zscale`` (zimg) linearises the picture from the source's own transfer (PQ: SMPTE ST 2084, HLG: ARIB
STD-B67) with SDR white at :data:`NOMINAL_PEAK_NITS`, converts the primaries to BT.709 in linear light,
ffmpeg's ``tonemap`` compresses the highlights with Hable's filmic curve (``desat=0``: colours keep their
saturation instead of fading towards grey), and zscale applies the BT.709 transfer and matrix. This is
ffmpeg's usual zscale+tonemap=hable recipe; the input's transfer, primaries and matrix are written into
the chain rather than read from the frames' tags, so frames whose tags were lost on the way are still
converted from the right curve.

Without a usable zscale (an ffmpeg built without zimg, or a zimg that lacks the transfer) the fallback
is ``colorspace``: a matrix and gamut conversion only, no tone curve. It keeps BT.2020 colours from being
shown as BT.709, but a PQ picture comes out flat and grey.

Whether zscale is usable is found by running the very chain on one frame tagged like the source
(10-bit, BT.2020, PQ or HLG). zimg refuses an untagged frame ("no path between colorspaces"), so a test
on a plain generated frame would always fail and silently select the fallback.
"""

from __future__ import annotations

import logging

from media_service.errors import ProcessingError
from media_service.media.video.ffmpeg import has_filter

log = logging.getLogger(__name__)

#: Values of the ``VIDEO_TONEMAP`` setting: zimg tone mapping, the matrix-only fallback, or zscale when usable.
MODES = ("auto", "zscale", "colorspace")
#: HDR transfer characteristics (ffprobe/ffmpeg names).
PQ = "smpte2084"
HLG = "arib-std-b67"
#: Luminance (cd/m²) that becomes SDR white (linear 1.0) before the tone curve.
NOMINAL_PEAK_NITS = 100
#: Tags passed on to zscale as they are; anything else is read as BT.2020 (what HDR video uses).
_PRIMARIES = frozenset({"bt2020", "bt709"})
_MATRICES = frozenset({"bt2020nc", "bt2020c", "bt709"})

#: The fallback without zimg: gamut/matrix conversion only (no tone curve).
COLORSPACE_CHAIN = "format=yuv420p10le,colorspace=all=bt709:iall=bt2020:itrc=bt2020-10:fast=1"


def hdr_transfer(transfer: str | None) -> str:
    """PQ or HLG for a source's transfer tag; PQ when the tag is missing or not an HDR one (Dolby Vision
    without a compatible base layer tag is PQ-based)."""
    return transfer if transfer in {PQ, HLG} else PQ


def zscale_chain(transfer: str | None, primaries: str | None = None, matrix: str | None = None) -> str:
    """zscale + tonemap=hable from the given HDR signal to SDR BT.709 (limited range)."""
    transfer = hdr_transfer(transfer)
    primaries = primaries if primaries in _PRIMARIES else "bt2020"
    matrix = matrix if matrix in _MATRICES else "bt2020nc"
    return (f"zscale=tin={transfer}:pin={primaries}:min={matrix}:t=linear:npl={NOMINAL_PEAK_NITS},"
            "format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv")


def capability_graph(chain: str, transfer: str | None, primaries: str | None = None,
                     matrix: str | None = None) -> str:
    """The graph that tests ``chain`` on a frame tagged like an HDR source (10-bit, BT.2020, PQ/HLG)."""
    primaries = primaries if primaries in _PRIMARIES else "bt2020"
    matrix = matrix if matrix in _MATRICES else "bt2020nc"
    return (f"format=yuv420p10le,setparams=color_primaries={primaries}:color_trc={hdr_transfer(transfer)}"
            f":colorspace={matrix}:range=tv,{chain},format=yuv420p")


def tonemap_chain(mode: str, binary: str, *, transfer: str | None = None, primaries: str | None = None,
                  matrix: str | None = None) -> tuple[str, str]:
    """(method, filter chain) that turns this HDR source into SDR BT.709.

    ``mode`` is the ``VIDEO_TONEMAP`` setting; ``binary`` the ffmpeg that will run the chain;
    ``transfer``/``primaries``/``matrix`` the source's tags as ffprobe names them. ``auto`` and ``zscale``
    give ``("zscale", chain)`` when that chain runs on this ffmpeg, else ``("colorspace", fallback)``.
    """
    if mode not in MODES:
        raise ProcessingError(f"setting VIDEO_TONEMAP must be one of {', '.join(MODES)}", code="bad_setting")
    if mode in {"auto", "zscale"}:
        chain = zscale_chain(transfer, primaries, matrix)
        if has_filter(binary, "zscale", capability_graph(chain, transfer, primaries, matrix)):
            return "zscale", chain
        log.warning("zscale cannot tone-map %s on %s; falling back to a matrix-only conversion",
                    hdr_transfer(transfer), binary)
    return "colorspace", COLORSPACE_CHAIN
