"""Stage 3: camera estimation, bundle adjustment and wave correction.

Rotation model (a photographer turning on the spot): OpenCV's homography-based estimator gives focal
lengths and rotations, the ray bundle adjuster refines them, and horizontal wave correction levels the
horizon. Affine model (flat subjects such as shelves and posters, or a camera moved sideways): partial
affine transforms refined by the affine bundle adjuster. After adjustment the estimate is checked:
photos of one panorama share one focal length and their matches must agree with the cameras, so a photo
that breaks either rule was taken from another spot or zoom and is reported as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from media_service.media.panorama.features import Features
from media_service.media.panorama.matching import PairMatch, to_cv_pairwise

#: Largest accepted spread of one photo's focal length from the set's median (20 %).
MAX_FOCAL_DEVIATION = math.log(1.2)
#: Below this ratio of the x axes' second to first moment the photos span too little turning to find the
#: horizon from them (two photos 11 degrees apart).
MIN_TURN_EIGEN_RATIO = 0.01
#: Largest accepted median reprojection error of a photo, as a fraction of the image diagonal.
MAX_REPROJECTION_ERROR = 0.02


@dataclass
class Cameras:
    """Cameras of the photos ``indices`` at working resolution.

    Rotation model: ``K`` intrinsics and ``R`` camera-to-world rotations. Affine model: ``K`` is the
    centring matrix and ``R`` the 3x3 affine map from centred image pixels to the panorama plane.
    """

    model: str  # "rotation" | "affine"
    indices: list[int]
    K: list[np.ndarray]
    R: list[np.ndarray]

    @property
    def focals(self) -> list[float]:
        return [float(k[0, 0]) for k in self.K]

    @property
    def median_focal(self) -> float:
        """The middle focal length (the upper one of an even count, as OpenCV's stitcher picks it):
        the panorama's scale, so the middle photo keeps all its detail."""
        return sorted(self.focals)[len(self.focals) // 2]


def largest_component(indices: list[int], pairs: dict[tuple[int, int], PairMatch], threshold: float) -> list[int]:
    """The biggest group of photos linked by pairs at or above ``threshold`` (ties: the earliest photos)."""
    parent = {i: i for i in indices}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for (i, j), pair in pairs.items():
        if i in parent and j in parent and pair.confidence >= threshold:
            parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in indices:
        groups.setdefault(root(i), []).append(i)
    return sorted(max(groups.values(), key=lambda g: (len(g), -min(g))))


def _cv_features(features: list[Features], indices: list[int]) -> list[cv2.detail.ImageFeatures]:
    return [features[i].to_cv(k) for k, i in enumerate(indices)]


def _finite(matrices: list[np.ndarray]) -> bool:
    return all(np.all(np.isfinite(m)) for m in matrices)


def estimate_rotation(features: list[Features], pairs: dict[tuple[int, int], PairMatch], indices: list[int],
                      threshold: float, wave_correction: bool = True) -> Cameras | None:
    """Rotation-model cameras for ``indices``, or None when estimation or adjustment fails."""
    cv_features = _cv_features(features, indices)
    pairwise = to_cv_pairwise(pairs, indices, threshold)
    ok, cameras = cv2.detail_HomographyBasedEstimator().apply(cv_features, pairwise, None)
    if not ok or len(cameras) != len(indices):
        return None
    for camera in cameras:
        camera.R = camera.R.astype(np.float32)
    adjuster = cv2.detail_BundleAdjusterRay()
    adjuster.setConfThresh(threshold)
    ok, cameras = adjuster.apply(cv_features, pairwise, cameras)
    if not ok:
        return None
    rotations = [np.asarray(c.R, np.float64) for c in cameras]
    if wave_correction and len(rotations) > 1:
        rotations = wave_correct(rotations)
    intrinsics = [np.asarray(c.K(), np.float64) for c in cameras]
    if not _finite(intrinsics) or not _finite(rotations) or min(k[0, 0] for k in intrinsics) <= 1:
        return None
    return Cameras("rotation", list(indices), intrinsics, rotations)


def wave_correct(rotations: list[np.ndarray]) -> list[np.ndarray]:
    """Level the horizon: OpenCV's horizontal wave correction, made safe for narrow sets.

    The "up" direction is the normal of the plane the cameras' x axes span (as in OpenCV). When the
    photos were taken with almost no turning (their x axes nearly parallel), that normal is undefined
    and OpenCV picks an arbitrary one, tilting the result by tens of degrees; then the photos' own
    average up direction is used instead.
    """
    x_axes = np.array([r[:, 0] for r in rotations])
    y_sum = np.sum([r[:, 1] for r in rotations], axis=0)
    values, vectors = np.linalg.eigh(x_axes.T @ x_axes)  # ascending eigenvalues
    up = vectors[:, 0] if values[1] > MIN_TURN_EIGEN_RATIO * values[2] else y_sum
    up = up / np.linalg.norm(up)
    if up @ y_sum < 0:
        up = -up
    right = np.cross(up, np.sum([r[:, 2] for r in rotations], axis=0))
    if np.linalg.norm(right) < 1e-9:
        return rotations
    right /= np.linalg.norm(right)
    level = np.stack([right, up, np.cross(right, up)])
    return [level @ r for r in rotations]


def estimate_affine(features: list[Features], pairs: dict[tuple[int, int], PairMatch], indices: list[int],
                    threshold: float) -> Cameras | None:
    """Affine-model cameras for ``indices`` (pairs must have been verified with the affine model)."""
    cv_features = _cv_features(features, indices)
    pairwise = to_cv_pairwise(pairs, indices, threshold)
    ok, cameras = cv2.detail_AffineBasedEstimator().apply(cv_features, pairwise, None)
    if not ok or len(cameras) != len(indices):
        return None
    for camera in cameras:
        camera.R = camera.R.astype(np.float32)
    adjuster = cv2.detail_BundleAdjusterAffinePartial()
    adjuster.setConfThresh(threshold)
    ok, cameras = adjuster.apply(cv_features, pairwise, cameras)
    if not ok:
        return None
    centring, maps = [], []
    for k, camera in enumerate(cameras):
        width, height = features[indices[k]].image_size
        centring.append(np.array([[1.0, 0, width / 2], [0, 1.0, height / 2], [0, 0, 1.0]]))
        maps.append(np.linalg.inv(np.asarray(camera.R, np.float64)))  # OpenCV's R maps plane -> photo
    if not _finite(maps) or any(abs(np.linalg.det(m[:2, :2])) < 1e-6 for m in maps):
        return None
    return Cameras("affine", list(indices), centring, maps)


def pair_homography(cameras: Cameras, a: int, b: int) -> np.ndarray:
    """Pixel-to-pixel homography from photo position ``a`` to ``b`` implied by the cameras."""
    if cameras.model == "rotation":
        return cameras.K[b] @ cameras.R[b].T @ cameras.R[a] @ np.linalg.inv(cameras.K[a])
    to_plane_a = cameras.R[a] @ np.linalg.inv(cameras.K[a])
    to_plane_b = cameras.R[b] @ np.linalg.inv(cameras.K[b])
    return np.linalg.inv(to_plane_b) @ to_plane_a


def reprojection_errors(cameras: Cameras, features: list[Features], pairs: dict[tuple[int, int], PairMatch],
                        threshold: float) -> dict[int, float]:
    """Median distance (working pixels) between matched points and where the cameras put them, per photo."""
    position = {index: k for k, index in enumerate(cameras.indices)}
    errors: dict[int, list[np.ndarray]] = {i: [] for i in cameras.indices}
    for (i, j), pair in pairs.items():
        if i not in position or j not in position or pair.confidence < threshold or pair.inliers is None:
            continue
        src = features[i].points[pair.query[pair.inliers]].reshape(1, -1, 2).astype(np.float64)
        dst = features[j].points[pair.train[pair.inliers]].reshape(-1, 2)
        projected = cv2.perspectiveTransform(src, pair_homography(cameras, position[i], position[j]))[0]
        distances = np.linalg.norm(projected - dst, axis=1)
        errors[i].append(distances)
        errors[j].append(distances)
    return {i: float(np.median(np.concatenate(d))) if d else math.inf for i, d in errors.items()}


def find_misfit(cameras: Cameras, features: list[Features], pairs: dict[tuple[int, int], PairMatch],
                threshold: float) -> int | None:
    """The photo that fits the camera model worst, when one breaks the model; None when all fit.

    A photo breaks the rotation model when its focal length is more than 20 % off the set's median
    (taken closer, further or zoomed) or when its matches land more than 2 % of the diagonal away
    from where the cameras put them (taken from another spot: parallax).
    """
    if len(cameras.indices) < 2:
        return None
    worst: tuple[float, int] | None = None
    if cameras.model == "rotation" and len(cameras.indices) > 2:
        median = float(np.median(cameras.focals))
        for index, focal in zip(cameras.indices, cameras.focals, strict=True):
            deviation = abs(math.log(focal / median)) / MAX_FOCAL_DEVIATION
            if deviation > 1 and (worst is None or deviation > worst[0]):
                worst = (deviation, index)
    errors = reprojection_errors(cameras, features, pairs, threshold)
    for index, error in errors.items():
        width, height = features[index].image_size
        ratio = error / (MAX_REPROJECTION_ERROR * math.hypot(width, height))
        if ratio > 1 and (worst is None or ratio > worst[0]):
            worst = (ratio, index)
    return None if worst is None else worst[1]
