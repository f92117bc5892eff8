"""Cutting a logo into fragments with a seeded Voronoi partition of its opaque pixels.

Cell centres are drawn from the opaque pixels with a seeded generator (farthest-point sampling from a random
first pixel, then two Lloyd steps so the pieces have similar areas); every opaque pixel belongs to its
nearest centre. Each fragment keeps its own alpha mask (the logo's alpha inside its cell), a hit polygon
(the convex hull of its pixels, so a tap on a gap between letters of one piece still counts) and a soft
glow baked around it, so the piece reads on any background. The same seed and count always give the same
pieces.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from media_service.errors import BadRequest

MIN_FRAGMENTS = 3
MAX_FRAGMENTS = 12


@dataclass(frozen=True)
class FragmentOptions:
    """``count`` pieces (3-12), cut with ``seed``; ``glow``: width of the baked halo as a share of the
    piece's long side (0 for none); ``lloyd_steps``: balancing iterations."""

    count: int
    seed: int
    glow: float = 0.08
    lloyd_steps: int = 2


@dataclass(frozen=True)
class Fragment:
    """One piece: ``rgba`` (its image with halo), ``polygon`` (hit area, pixel coordinates of ``rgba``),
    ``logo_box`` (x, y, w, h of the piece in the prepared logo) and ``area`` (opaque pixels)."""

    index: int
    rgba: np.ndarray
    polygon: np.ndarray
    logo_box: tuple[int, int, int, int]
    area: int

    @property
    def size(self) -> tuple[int, int]:
        return self.rgba.shape[1], self.rgba.shape[0]

    def normalised_polygon(self) -> list[list[float]]:
        """The hit polygon as shares (0..1) of the fragment image's width and height."""
        w, h = self.size
        return [[round(float(x) / w, 4), round(float(y) / h, 4)] for x, y in self.polygon]


def check_count(count: object) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not MIN_FRAGMENTS <= count <= MAX_FRAGMENTS:
        raise BadRequest(f"fragments must be a whole number from {MIN_FRAGMENTS} to {MAX_FRAGMENTS}",
                         code="invalid_fragment_count")
    return count


def _centres(points: np.ndarray, count: int, rng: np.random.Generator, steps: int) -> np.ndarray:
    sample = points if len(points) <= 20000 else points[rng.choice(len(points), 20000, replace=False)]
    centres = [sample[rng.integers(len(sample))]]
    nearest = np.linalg.norm(sample - centres[0], axis=1)
    for _ in range(1, count):
        # farthest point, jittered among the 5 farthest so different seeds give different cuts
        candidates = np.argsort(nearest)[-5:]
        pick = sample[candidates[rng.integers(len(candidates))]]
        centres.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(sample - pick, axis=1))
    c = np.array(centres, np.float32)
    for _ in range(steps):
        owner = np.argmin(((sample[:, None, :] - c[None]) ** 2).sum(axis=2), axis=1)
        for k in range(count):
            members = sample[owner == k]
            if len(members):
                c[k] = members.mean(axis=0)
    return c


def cut_fragments(rgba: np.ndarray, options: FragmentOptions) -> list[Fragment]:
    """The logo cut into ``options.count`` pieces (see module); raises BadRequest for a bad count."""
    count = check_count(options.count)
    alpha = rgba[..., 3]
    ys, xs = np.nonzero(alpha > 16)
    if len(xs) < count * 16:
        raise BadRequest("the logo has too few visible pixels for that many fragments", code="logo_too_sparse")
    points = np.stack([xs, ys], axis=1).astype(np.float32)
    rng = np.random.default_rng(options.seed)
    centres = _centres(points, count, rng, options.lloyd_steps)
    owner = np.empty(len(points), np.int32)
    for start in range(0, len(points), 65536):  # bounded memory for big logos
        chunk = points[start:start + 65536]
        owner[start:start + 65536] = np.argmin(((chunk[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    order = np.argsort(centres[:, 0] + 0.3 * centres[:, 1])  # number pieces roughly left to right
    fragments = []
    for index, k in enumerate(order):
        px, py = xs[owner == k], ys[owner == k]
        if len(px) == 0:
            continue
        x0, y0, x1, y1 = int(px.min()), int(py.min()), int(px.max()) + 1, int(py.max()) + 1
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        mask[py - y0, px - x0] = 255
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))  # keep the anti-aliased rim of the cell
        piece = rgba[y0:y1, x0:x1].copy()
        piece[..., 3] = np.minimum(piece[..., 3], mask)
        image, offset = _with_glow(piece, options.glow)
        hull = cv2.convexHull(np.stack([px - x0, py - y0], axis=1).astype(np.int32)).reshape(-1, 2)
        polygon = (hull + offset).astype(np.float32)
        fragments.append(Fragment(index=index, rgba=image, polygon=polygon, logo_box=(x0, y0, x1 - x0, y1 - y0),
                                  area=len(px)))
    return fragments


def _with_glow(piece: np.ndarray, glow: float) -> tuple[np.ndarray, int]:
    """The piece on a padded canvas with a soft warm halo behind it; returns it and the padding."""
    pad = max(2, round(glow * max(piece.shape[:2]))) if glow > 0 else 0
    h, w = piece.shape[:2]
    canvas = np.zeros((h + 2 * pad, w + 2 * pad, 4), np.float32)
    canvas[pad:pad + h, pad:pad + w] = piece
    if pad == 0:
        return canvas.astype(np.uint8), 0
    halo = cv2.GaussianBlur(canvas[..., 3], (0, 0), sigmaX=pad / 2.0)
    halo = np.clip(halo * 1.6, 0, 255) * 0.75
    a = canvas[..., 3:4] / 255.0
    warm = np.array([255.0, 236.0, 170.0], np.float32)
    colour = canvas[..., :3] * a + warm * (1 - a)
    out_alpha = np.maximum(canvas[..., 3], halo)
    return np.dstack([colour, out_alpha]).round().clip(0, 255).astype(np.uint8), pad


def encode_png(rgba: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    if not ok:
        raise ValueError("PNG encoding failed")
    return data.tobytes()
