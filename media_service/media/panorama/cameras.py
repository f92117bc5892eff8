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
#: A photo's horizontal field of view must lie in this range (degrees) for an estimated focal length to be
#: believed: from a 5x telephoto to an ultra-wide lens.
PLAUSIBLE_HFOV = (8.0, 120.0)
#: A pair shows perspective (and so pins the focal length down) when its homography departs from the best
#: affine map by at least this share of the image diagonal at the corners, and explains the matches at
#: least this many times better.
MIN_PERSPECTIVE = 0.008
MIN_PERSPECTIVE_GAIN = 2.0


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
                      threshold: float, wave_correction: bool = True, focals: list[float] | None = None
                      ) -> Cameras | None:
    """Rotation-model cameras for ``indices``, or None when estimation or adjustment fails.

    With ``focals`` (known focal lengths, e.g. from EXIF, in working pixels) those are used and kept
    fixed: bundle adjustment then only refines the rotations.
    """
    cv_features = _cv_features(features, indices)
    pairwise = to_cv_pairwise(pairs, indices, threshold)
    ok, cameras = cv2.detail_HomographyBasedEstimator().apply(cv_features, pairwise, None)
    if not ok or len(cameras) != len(indices):
        return None
    for k, camera in enumerate(cameras):
        camera.R = camera.R.astype(np.float32)
        if focals is not None:
            width, height = features[indices[k]].image_size
            camera.focal, camera.aspect, camera.ppx, camera.ppy = focals[k], 1.0, width / 2, height / 2
    if focals is None:
        adjuster = cv2.detail_BundleAdjusterRay()
    else:  # the ray adjuster always refines the focal length; the reprojection one obeys the mask
        adjuster = cv2.detail_BundleAdjusterReproj()
        adjuster.setRefinementMask(np.zeros((3, 3), np.uint8))
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


def photo_hfov(focal: float, width: int) -> float:
    """Horizontal field of view in degrees of a photo ``width`` pixels wide at focal length ``focal`` (pixels)."""
    return math.degrees(2 * math.atan(width / (2 * focal)))


def shows_perspective(pair: PairMatch, features: list[Features]) -> bool:
    """Whether the pair's matches need a homography, i.e. are not explained by an affine map as well.

    Two photos related by a shift (crops of one photo, a camera moved sideways, a tiny turn) carry no
    information about the focal length: any value fits, and the estimator's is noise.
    """
    if pair.transform is None or pair.inliers is None or pair.num_inliers < 8:
        return False
    width, height = features[pair.i].image_size
    centre = np.array([width / 2, height / 2])
    src = (features[pair.i].points[pair.query[pair.inliers]] - centre).astype(np.float64)
    dst = (features[pair.j].points[pair.train[pair.inliers]] - centre).astype(np.float64)
    design = np.column_stack([src, np.ones(len(src))])
    affine, *_ = np.linalg.lstsq(design, dst, rcond=None)
    affine_error = float(np.median(np.linalg.norm(design @ affine - dst, axis=1)))
    projected = cv2.perspectiveTransform(src.reshape(1, -1, 2), pair.transform)[0]
    homography_error = float(np.median(np.linalg.norm(projected - dst, axis=1)))
    corners = np.array([[-width / 2, -height / 2], [width / 2, -height / 2], [width / 2, height / 2],
                        [-width / 2, height / 2]], np.float64)
    by_homography = cv2.perspectiveTransform(corners.reshape(1, -1, 2), pair.transform)[0]
    by_affine = np.column_stack([corners, np.ones(4)]) @ affine
    departure = float(np.max(np.linalg.norm(by_homography - by_affine, axis=1)))
    return (departure >= MIN_PERSPECTIVE * math.hypot(width, height)
            and affine_error >= MIN_PERSPECTIVE_GAIN * max(homography_error, 0.1))


def focal_is_observable(features: list[Features], pairs: dict[tuple[int, int], PairMatch], indices: list[int],
                        threshold: float) -> bool:
    """Whether any confident pair among ``indices`` shows enough perspective to pin the focal length down."""
    members = set(indices)
    return any(shows_perspective(pair, features) for (i, j), pair in pairs.items()
               if i in members and j in members and pair.confidence >= threshold)
