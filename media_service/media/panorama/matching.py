"""Stage 2: pairwise matching and geometric verification.

Every pair of photos is matched once (nearest neighbours with Lowe's ratio test), then verified with a
RANSAC homography (rotating camera) or a partial affine transform (flat subjects). The confidence is
Brown and Lowe's ``inliers / (8 + 0.3 * matches)``: above 1 the pair very probably overlaps. Unlike
OpenCV's matcher we keep very confident pairs instead of zeroing them (OpenCV drops confidence > 3 as
"too close", which silently throws away neighbours of small, well-overlapping photos such as ``hill``);
true duplicates are found explicitly instead.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from media_service.media.panorama.features import Features

RATIO = 0.75
RANSAC_THRESHOLD_PX = 3.0
MIN_INLIERS = 8
RANSAC_SEED = 20240601


@dataclass
class PairMatch:
    """Verified matches between photo ``i`` and photo ``j`` (i < j).

    ``transform`` maps centred coordinates of ``i`` (pixel minus image centre, OpenCV's convention for
    the stitching estimators) to centred coordinates of ``j``.
    """

    i: int
    j: int
    query: np.ndarray  # keypoint indices in photo i
    train: np.ndarray  # keypoint indices in photo j
    transform: np.ndarray | None = None
    inliers: np.ndarray | None = None  # bool mask over the matches

    @property
    def num_matches(self) -> int:
        return len(self.query)

    @property
    def num_inliers(self) -> int:
        return 0 if self.inliers is None else int(self.inliers.sum())

    @property
    def confidence(self) -> float:
        if self.transform is None:
            return 0.0
        return self.num_inliers / (8.0 + 0.3 * self.num_matches)


def _centred(features: Features, indices: np.ndarray) -> np.ndarray:
    width, height = features.image_size
    return features.points[indices] - np.array([width * 0.5, height * 0.5], np.float32)


def match_descriptors(a: Features, b: Features) -> tuple[np.ndarray, np.ndarray]:
    """Putative matches a->b passing the ratio test, at most one per keypoint of ``b``."""
    if len(a) < 2 or len(b) < 2:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    # Brute force rather than FLANN: FLANN's random trees would make the same photos give different panoramas.
    pairs = cv2.BFMatcher(a.norm).knnMatch(a.descriptors, b.descriptors, k=2)
    best: dict[int, tuple[float, int]] = {}
    for candidates in pairs:
        if len(candidates) < 2:
            continue
        first, second = candidates
        if first.distance < RATIO * second.distance:
            previous = best.get(first.trainIdx)
            if previous is None or first.distance < previous[0]:
                best[first.trainIdx] = (first.distance, first.queryIdx)
    train = np.fromiter(best.keys(), np.int32, len(best))
    query = np.fromiter((v[1] for v in best.values()), np.int32, len(best))
    return query, train


def verify(pair: PairMatch, features: list[Features], model: str) -> PairMatch:
    """Fit ``model`` ('homography' or 'affine') with RANSAC; sets ``transform`` and ``inliers``."""
    pair.transform, pair.inliers = None, None
    if pair.num_matches < MIN_INLIERS:
        return pair
    src = _centred(features[pair.i], pair.query)
    dst = _centred(features[pair.j], pair.train)
    cv2.setRNGSeed(RANSAC_SEED)  # the same photos always give the same panorama
    if model == "homography":
        matrix, mask = cv2.findHomography(src, dst, cv2.RANSAC, RANSAC_THRESHOLD_PX, maxIters=2000,
                                          confidence=0.995)
        if matrix is None:
            return pair
        inliers = mask.ravel().astype(bool)
        if inliers.sum() >= MIN_INLIERS:  # refit on the inliers only, as OpenCV's matcher does
            refit, _ = cv2.findHomography(src[inliers], dst[inliers], 0)
            if refit is not None:
                matrix = refit
    else:
        affine, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                   ransacReprojThreshold=RANSAC_THRESHOLD_PX)
        if affine is None:
            return pair
        matrix = np.vstack([affine, [0.0, 0.0, 1.0]])
        inliers = mask.ravel().astype(bool)
    if not np.all(np.isfinite(matrix)) or inliers.sum() < MIN_INLIERS:
        return pair
    pair.transform, pair.inliers = matrix.astype(np.float64), inliers
    return pair


def match_all_pairs(features: list[Features], indices: list[int], model: str = "homography"
                    ) -> dict[tuple[int, int], PairMatch]:
    """Match and verify every pair among ``indices``; keys are (i, j) with i < j."""
    result: dict[tuple[int, int], PairMatch] = {}
    for i, j in itertools.combinations(sorted(indices), 2):
        query, train = match_descriptors(features[i], features[j])
        result[(i, j)] = verify(PairMatch(i, j, query, train), features, model)
    return result


def reverify(pairs: dict[tuple[int, int], PairMatch], features: list[Features], model: str
             ) -> dict[tuple[int, int], PairMatch]:
    """The same putative matches verified with another model (the flat-subject fallback)."""
    return {key: verify(PairMatch(p.i, p.j, p.query, p.train), features, model) for key, p in pairs.items()}


def corner_shift(pair: PairMatch, features: list[Features]) -> float:
    """Largest displacement of the image corners under the pair's transform, as a fraction of the diagonal."""
    if pair.transform is None:
        return float("inf")
    width, height = features[pair.i].image_size
    corners = np.array([[[-width / 2, -height / 2], [width / 2, -height / 2], [width / 2, height / 2],
                         [-width / 2, height / 2]]], np.float64)
    moved = cv2.perspectiveTransform(corners, pair.transform)
    return float(np.max(np.linalg.norm(moved - corners, axis=2)) / np.hypot(width, height))


def is_duplicate(pair: PairMatch, features: list[Features]) -> bool:
    """Two photos of the same view: nearly the identity transform and most matches agree."""
    if pair.transform is None or pair.num_matches == 0:
        return False
    return corner_shift(pair, features) < 0.03 and pair.num_inliers / pair.num_matches > 0.5


def to_cv_pairwise(pairs: dict[tuple[int, int], PairMatch], indices: list[int], min_confidence: float
                   ) -> list[cv2.detail.MatchesInfo]:
    """OpenCV's n x n MatchesInfo list for the photos ``indices`` (renumbered 0..n-1).

    Pairs below ``min_confidence`` are left empty so the estimators never build on a doubtful match.
    """
    n = len(indices)
    position = {index: k for k, index in enumerate(indices)}
    result: list[cv2.detail.MatchesInfo] = []
    for a, b in itertools.product(range(n), repeat=2):
        info = cv2.detail.MatchesInfo()
        if a == b:
            info.src_img_idx, info.dst_img_idx = -1, -1
            result.append(info)
            continue
        info.src_img_idx, info.dst_img_idx = a, b
        i, j = indices[a], indices[b]
        pair = pairs.get((min(i, j), max(i, j)))
        if (pair is not None and pair.transform is not None and pair.inliers is not None
                and pair.confidence >= min_confidence):
            forward = position[pair.i] == a
            query, train = (pair.query, pair.train) if forward else (pair.train, pair.query)
            info.matches = tuple(cv2.DMatch(int(q), int(t), 0.0) for q, t in zip(query, train, strict=True))
            info.inliers_mask = pair.inliers.astype(np.uint8)
            info.num_inliers = pair.num_inliers
            info.H = pair.transform if forward else np.linalg.inv(pair.transform)
            info.confidence = pair.confidence
        result.append(info)
    return result
