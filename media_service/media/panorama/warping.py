"""Stage 4: projections between photos and the panorama surface, and the warp maps.

Spherical output is equirectangular: ``u = scale * longitude``, ``v = scale * latitude`` with the same
number of pixels per radian on both axes, so a crop of it has a well-defined horizontal and vertical
field of view. Cylindrical (``v = scale * tan(latitude)``) is the fallback, and ``plane`` maps flat
subjects with an affine transform.

Warp maps are exact at the corners of a coarse grid (every 16 output pixels) and bilinearly
interpolated in between; the mapping is smooth, so the error is far below a hundredth of a pixel,
while the trigonometry runs on 1/256 of the pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

PROJECTIONS = ("spherical", "cylindrical", "plane")
GRID_STEP = 16
_INVALID = -1.0e5


@dataclass(frozen=True)
class Rect:
    """An axis-aligned rectangle in output pixels."""

    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    def intersect(self, other: Rect) -> Rect | None:
        x, y = max(self.x, other.x), max(self.y, other.y)
        right, bottom = min(self.right, other.right), min(self.bottom, other.bottom)
        if right <= x or bottom <= y:
            return None
        return Rect(x, y, right - x, bottom - y)

    @staticmethod
    def union(rects: list[Rect]) -> Rect:
        x, y = min(r.x for r in rects), min(r.y for r in rects)
        return Rect(x, y, max(r.right for r in rects) - x, max(r.bottom for r in rects) - y)

    def scaled(self, factor: float) -> Rect:
        """The same region at another resolution (rounded outwards)."""
        x, y = math.floor(self.x * factor), math.floor(self.y * factor)
        return Rect(x, y, math.ceil(self.right * factor) - x, math.ceil(self.bottom * factor) - y)


@dataclass(frozen=True)
class Camera:
    """One photo's camera at one resolution: intrinsics ``K`` and rotation or affine map ``R``."""

    K: np.ndarray
    R: np.ndarray
    size: tuple[int, int]  # (width, height) of the photo at this resolution

    def scaled(self, factor: float, size: tuple[int, int]) -> Camera:
        K = self.K.copy()
        K[0, :] *= factor
        K[1, :] *= factor
        return Camera(K, self.R, size)


@dataclass(frozen=True)
class Projection:
    """A projection kind with its scale (output pixels per radian, or per plane unit)."""

    kind: str
    scale: float

    def rescaled(self, factor: float) -> Projection:
        return Projection(self.kind, self.scale * factor)

    # -- photo -> panorama ------------------------------------------------------------------------

    def forward(self, camera: Camera, points: np.ndarray) -> np.ndarray:
        """Output (u, v) of photo pixels ``points`` (N, 2)."""
        homogeneous = np.column_stack([points, np.ones(len(points))]).T
        if self.kind == "plane":
            plane = camera.R @ np.linalg.inv(camera.K) @ homogeneous
            return (self.scale * plane[:2] / plane[2]).T
        rays = camera.R @ np.linalg.inv(camera.K) @ homogeneous
        x, y, z = rays
        centre = self._centre_longitude(camera)
        longitude = centre + _wrap(np.arctan2(x, z) - centre)
        if self.kind == "spherical":
            latitude = np.arcsin(np.clip(y / np.linalg.norm(rays, axis=0), -1.0, 1.0))
            return np.column_stack([self.scale * longitude, self.scale * latitude])
        height = y / np.maximum(np.hypot(x, z), 1e-9)
        return np.column_stack([self.scale * longitude, self.scale * height])

    @staticmethod
    def _centre_longitude(camera: Camera) -> float:
        width, height = camera.size
        ray = camera.R @ np.linalg.inv(camera.K) @ np.array([width / 2, height / 2, 1.0])
        return float(np.arctan2(ray[0], ray[2]))

    def roi(self, camera: Camera, samples: int = 33) -> Rect:
        """Bounding rectangle of the warped photo in output pixels."""
        width, height = camera.size
        xs = np.linspace(0, width - 1, samples)
        ys = np.linspace(0, height - 1, samples)
        grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        uv = self.forward(camera, grid)
        u_min, v_min = uv.min(axis=0)
        u_max, v_max = uv.max(axis=0)
        if self.kind == "spherical":
            for pole in (-1.0, 1.0):  # a pole inside the photo: it spans every longitude
                seen = camera.K @ camera.R.T @ np.array([0.0, pole, 0.0])
                if seen[2] > 0 and 0 <= seen[0] / seen[2] < width and 0 <= seen[1] / seen[2] < height:
                    centre = self._centre_longitude(camera)
                    u_min, u_max = self.scale * (centre - math.pi), self.scale * (centre + math.pi)
                    v_min, v_max = (self.scale * -math.pi / 2, v_max) if pole < 0 else (v_min, self.scale * math.pi / 2)
        x, y = math.floor(u_min), math.floor(v_min)
        return Rect(x, y, math.ceil(u_max) - x + 1, math.ceil(v_max) - y + 1)

    # -- panorama -> photo ------------------------------------------------------------------------

    def backward(self, camera: Camera, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Photo pixel coordinates of output pixels (u, v); points behind the camera get -1e5."""
        if self.kind == "plane":
            plane = np.stack([u / self.scale, v / self.scale, np.ones_like(u)])
            pixel = np.tensordot(camera.K @ np.linalg.inv(camera.R), plane, axes=1)
        else:
            longitude = u / self.scale
            if self.kind == "spherical":
                latitude = v / self.scale
                rays = np.stack([np.cos(latitude) * np.sin(longitude), np.sin(latitude),
                                 np.cos(latitude) * np.cos(longitude)])
            else:
                rays = np.stack([np.sin(longitude), v / self.scale, np.cos(longitude)])
            pixel = np.tensordot(camera.K @ camera.R.T, rays, axes=1)
        in_front = pixel[2] > 1e-9
        safe = np.where(in_front, pixel[2], 1.0)
        map_x = np.where(in_front, pixel[0] / safe, _INVALID)
        map_y = np.where(in_front, pixel[1] / safe, _INVALID)
        return map_x.astype(np.float32), map_y.astype(np.float32)

    def maps(self, camera: Camera, rect: Rect, step: int = GRID_STEP) -> tuple[np.ndarray, np.ndarray]:
        """``cv2.remap`` maps for the output rectangle ``rect`` (exact on a grid, interpolated between)."""
        columns = math.ceil(rect.width / step) + 2
        rows = math.ceil(rect.height / step) + 2
        # Grid node k sits at output coordinate origin + (k - 0.5) * step - 0.5, which is where
        # cv2.resize by ``step`` puts it; one node of padding on each side avoids edge clamping.
        us = rect.x + (np.arange(columns) - 0.5) * step - 0.5
        vs = rect.y + (np.arange(rows) - 0.5) * step - 0.5
        grid_u, grid_v = np.meshgrid(us, vs)
        coarse_x, coarse_y = self.backward(camera, grid_u, grid_v)
        size = (columns * step, rows * step)
        map_x = cv2.resize(coarse_x, size, interpolation=cv2.INTER_LINEAR)
        map_y = cv2.resize(coarse_y, size, interpolation=cv2.INTER_LINEAR)
        window = (slice(step, step + rect.height), slice(step, step + rect.width))
        return map_x[window], map_y[window]


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def valid_mask(map_x: np.ndarray, map_y: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """255 where the maps point inside a photo of ``size`` (width, height), else 0."""
    width, height = size
    inside_x = cv2.inRange(map_x, -0.5, width - 0.5)
    inside_y = cv2.inRange(map_y, -0.5, height - 0.5)
    return cv2.bitwise_and(inside_x, inside_y)


def warp(image: np.ndarray, projection: Projection, camera: Camera, rect: Rect | None = None
         ) -> tuple[Rect, np.ndarray, np.ndarray]:
    """Warp a whole (small) photo: its output rectangle, the warped pixels and the validity mask."""
    rect = rect or projection.roi(camera)
    map_x, map_y = projection.maps(camera, rect)
    warped = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = valid_mask(map_x, map_y, camera.size)
    return rect, warped, mask
