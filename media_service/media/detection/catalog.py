"""``CatalogDetector``: finds the merchant's own products in a frame by local features; no weights needed.

Stages, each a small function (OpenStitching-style):

1. ``index_product_photo`` (once, when a photo is added to a product): crop the photo to its alpha mask,
   compute SIFT (or ORB) keypoints inside the mask, keep the mask, its outline and a small colour copy.
2. ``CatalogMatcher`` (once per catalog version): one FLANN index over every photo's descriptors.
3. Per frame: keypoints of the frame, k nearest photo descriptors, a ratio test *within each photo*
   (products of one brand share a logo, so a global ratio test would throw the logo away everywhere;
   a photo's repeated logo is kept for geometry to sort out), placements agreed by at least three
   matches (several instances per photo), geometric sanity checks and a first look at appearance: the
   frame warped back onto the photo, grey pattern and colour (a red and a black cap have the same
   keypoints in grey).
4. The placements are refined by dense (ECC) alignment of the photo to the frame, most promising
   first, and scored by appearance and the number of agreeing matches: the appearance check, not the
   number of matches, keeps precision, so small products with few keypoints are still found.
5. Overlapping hypotheses are resolved by score (a confident product over a product lying inside it);
   the losers become the runner-up SKU candidates.

The box is the bounding box of the photo's outline projected into the frame, and that projected outline
(``data["polygon"]``) is a free, exact-for-planar-products mask prior for the cut-out.

Over 500 lines: the stages share the detector's private views of photos and frames (``_Photo``,
``_FrameViews``, ``Hypothesis``), and the certainty checks at the end (colour contests between variants,
lightness and edge checks) call the geometry helpers above them. Next step when it grows again: those
types in a small base module, the certainty checks in their own.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from media_service.media.detection.base import DetectionError, Detector, check_frame
from media_service.media.detection.detections import (
    CANDIDATES,
    CERTAIN,
    MASK_PRIOR,
    POLYGON,
    SKU,
    Detections,
    MaskPrior,
    _as_object_array,
    box_iou,
)

FEATURE_VERSION = 1
FEATURE_KINDS = ("sift", "orb")
RNG_SEED = 0x5EED
COLOUR_SIDE = 128  # longer side of the small colour copy used to align and verify a match
COLOURFUL_CHROMA = 20.0  # mean |a*| + |b*| (8-bit Lab) from which a product's colour counts fully as evidence


# ------------------------------------------------------------------------------------ indexing photos


@dataclass
class ProductPhotoFeatures:
    """What matching needs from one product photo, computed once and stored (npz) beside the product."""

    kind: str
    keypoints: np.ndarray  # (N, 4) float32: x, y, size, angle in photo pixels (after cropping/scaling)
    descriptors: np.ndarray  # (N, D) uint8
    alpha: np.ndarray  # (h, w) uint8 product mask at photo resolution
    colour: np.ndarray  # (hs, ws, 3) uint8 BGR small copy, for the colour check
    outline: np.ndarray  # (K, 2) float32 polygon around the product, photo pixels

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"feature kind must be one of {FEATURE_KINDS}, got {self.kind!r}")
        if self.keypoints.ndim != 2 or self.keypoints.shape[1] != 4:
            raise ValueError(f"keypoints must have shape (N, 4), got {self.keypoints.shape}")
        if len(self.descriptors) != len(self.keypoints):
            raise ValueError(f"{len(self.keypoints)} keypoints but {len(self.descriptors)} descriptors")
        if self.alpha.ndim != 2 or self.colour.ndim != 3:
            raise ValueError(f"alpha must be (h, w) and colour (h, w, 3), got {self.alpha.shape}, {self.colour.shape}")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the photo in the coordinates of ``keypoints``."""
        return int(self.alpha.shape[1]), int(self.alpha.shape[0])

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, version=np.array(FEATURE_VERSION), kind=np.array(self.kind),
                            keypoints=self.keypoints, descriptors=self.descriptors, alpha=self.alpha,
                            colour=self.colour, outline=self.outline)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ProductPhotoFeatures:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            version = int(npz["version"])
            if version != FEATURE_VERSION:
                raise ValueError(f"features of version {version}; this build reads version {FEATURE_VERSION}: "
                                 "re-index the product photos")
            return cls(kind=str(npz["kind"]), keypoints=npz["keypoints"], descriptors=npz["descriptors"],
                       alpha=npz["alpha"], colour=npz["colour"], outline=npz["outline"])


def make_feature_extractor(kind: str, max_features: int) -> Any:
    if kind == "sift":
        return cv2.SIFT_create(nfeatures=max_features, contrastThreshold=0.02)
    if kind == "orb":
        return cv2.ORB_create(nfeatures=max_features, scaleFactor=1.2, nlevels=8, fastThreshold=10)
    raise ValueError(f"feature kind must be one of {FEATURE_KINDS}, got {kind!r}")


def _descriptors_to_uint8(kind: str, descriptors: np.ndarray | None, dim: int) -> np.ndarray:
    if descriptors is None:
        return np.zeros((0, dim), np.uint8)
    if kind == "sift":  # OpenCV's SIFT values are already integers in 0..255 held as float32
        return np.clip(np.rint(descriptors), 0, 255).astype(np.uint8)
    return descriptors.astype(np.uint8)


def _keypoint_array(keypoints: Sequence[Any]) -> np.ndarray:
    if not keypoints:
        return np.zeros((0, 4), np.float32)
    return np.array([(k.pt[0], k.pt[1], k.size, k.angle) for k in keypoints], np.float32)


def estimate_alpha(image_bgr: np.ndarray) -> np.ndarray:
    """A product mask for a photo without transparency: everything not connected to a plain border.

    Catalog photos are usually shot on white or a flat colour; the border's median colour is flooded
    from the edges. When that does not leave a plausible product (5-97 % of the photo), the whole photo
    counts as the product.
    """
    h, w = image_bgr.shape[:2]
    border = np.concatenate([image_bgr[0], image_bgr[-1], image_bgr[:, 0], image_bgr[:, -1]]).astype(np.int16)
    background = np.median(border, axis=0)
    close = np.abs(image_bgr.astype(np.int16) - background).max(axis=2) <= 18
    flood = np.zeros((h + 2, w + 2), np.uint8)
    candidates = close.astype(np.uint8)
    for seed in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)):
        if candidates[seed[1], seed[0]] and not flood[seed[1] + 1, seed[0] + 1]:
            cv2.floodFill(candidates, flood, seed, 2, 0, 0, flags=4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
    background_mask = flood[1:-1, 1:-1] > 0
    share = 1.0 - background_mask.mean()
    if not 0.05 <= share <= 0.97:
        return np.full((h, w), 255, np.uint8)
    return np.where(background_mask, 0, 255).astype(np.uint8)


def outline_of(alpha: np.ndarray) -> np.ndarray:
    """A simplified polygon around the product (the largest region; the hull when it is in pieces)."""
    binary = (alpha > 127).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        h, w = alpha.shape
        return np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    largest = max(contours, key=cv2.contourArea)
    total = sum(cv2.contourArea(c) for c in contours)
    shape = largest if cv2.contourArea(largest) >= 0.85 * total else cv2.convexHull(np.concatenate(contours))
    epsilon = 0.004 * cv2.arcLength(shape, True)
    return cv2.approxPolyDP(shape, epsilon, True).reshape(-1, 2).astype(np.float32)


def index_product_photo(image: np.ndarray, *, kind: str = "sift", max_side: int = 512,
                        max_features: int = 1500) -> ProductPhotoFeatures:
    """Features of one product photo (BGR or BGRA uint8; transparency marks the product).

    The photo is cropped to the product and scaled so its longer side is ``max_side``: frames show
    products at a few hundred pixels, so more detail would only add descriptors that never match.
    """
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise ValueError(f"a product photo must be uint8 BGR or BGRA, got {image.shape} {image.dtype}")
    if image.shape[2] == 4 and image[:, :, 3].min() < 250:
        alpha = image[:, :, 3].copy()
        bgr = image[:, :, :3]
    else:
        bgr = image[:, :, :3]
        alpha = estimate_alpha(bgr)
    ys, xs = np.nonzero(alpha > 127)
    if len(xs) == 0:
        raise DetectionError("the photo is fully transparent; upload a photo that shows the product",
                             code="empty_product_photo")
    pad = 4
    x0, y0 = max(int(xs.min()) - pad, 0), max(int(ys.min()) - pad, 0)
    x1, y1 = min(int(xs.max()) + pad + 1, bgr.shape[1]), min(int(ys.max()) + pad + 1, bgr.shape[0])
    bgr, alpha = bgr[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    scale = max_side / max(bgr.shape[:2])
    if abs(scale - 1.0) > 1e-3:
        size = (max(8, round(bgr.shape[1] * scale)), max(8, round(bgr.shape[0] * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        bgr = cv2.resize(bgr, size, interpolation=interpolation)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)
    # Composite on mid-grey: the silhouette keeps a contrast edge, but no keypoint is centred outside it.
    weight = alpha.astype(np.float32)[:, :, None] / 255.0
    composite = (bgr.astype(np.float32) * weight + 128.0 * (1 - weight)).astype(np.uint8)
    gray = cv2.cvtColor(composite, cv2.COLOR_BGR2GRAY)
    inner = cv2.erode((alpha > 127).astype(np.uint8) * 255, np.ones((5, 5), np.uint8))
    extractor = make_feature_extractor(kind, max_features)
    keypoints, descriptors = extractor.detectAndCompute(gray, inner)
    dim = 128 if kind == "sift" else 32
    small_scale = COLOUR_SIDE / max(bgr.shape[:2])
    small_size = (max(4, round(bgr.shape[1] * small_scale)), max(4, round(bgr.shape[0] * small_scale)))
    colour = cv2.resize(composite, small_size, interpolation=cv2.INTER_AREA)
    return ProductPhotoFeatures(kind=kind, keypoints=_keypoint_array(keypoints),
                                descriptors=_descriptors_to_uint8(kind, descriptors, dim),
                                alpha=alpha, colour=colour, outline=outline_of(alpha))


# ----------------------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class CatalogProduct:
    """A SKU and the indexed features of its photos."""

    sku: str
    photos: Sequence[ProductPhotoFeatures]


@dataclass
class _Photo:
    sku: str
    features: ProductPhotoFeatures
    small_alpha: np.ndarray  # mask at the colour copy's size
    small_gray_raw: np.ndarray  # float32 grey values, for the ECC alignment
    small_inside: np.ndarray  # uint8 mask of the product at the colour copy's size
    small_scale: float  # colour copy pixels per photo pixel
    small_corners: np.ndarray  # (4, 1, 2) corners of the colour copy, for perspectiveTransform
    product_pixels: np.ndarray  # flat indices of the product's pixels in the colour copy
    product_gray: np.ndarray  # their normalised grey values
    product_chroma: np.ndarray  # (n, 2) their Lab a*, b*
    colourfulness: float  # mean |a*| + |b*| (8-bit Lab) of the product: how much its colour can tell
    small_lab: np.ndarray  # (hs, ws, 3) float32 Lab of the colour copy, for the colour contest between SKUs


@dataclass
class Hypothesis:
    """One product instance found by one photo: before overlapping hypotheses are resolved."""

    photo: int
    sku: str
    homography: np.ndarray
    polygon: np.ndarray  # projected outline, work pixels
    box: np.ndarray  # xyxy, work pixels
    inliers: int
    colour: float
    score: float
    candidates: dict[str, float] = field(default_factory=dict)
    rivals: list[Hypothesis] = field(default_factory=list)  # other SKUs' hypotheses at this place, best first
    certain: bool = True  # the SKU is sure; False: a close call (offer the candidates, claim none)
    doubt: str | None = None  # why the SKU is not certain
    refined: bool = False  # dense alignment was tried on it
    placement: Any = None  # the _Placement it was verified from


class CatalogMatcher:
    """One nearest-neighbour index over every descriptor of every photo of a catalog."""

    def __init__(self, products: Sequence[CatalogProduct], *, kind: str = "sift", checks: int = 32) -> None:
        self.kind = kind
        self.photos: list[_Photo] = []
        descriptors: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        for product in products:
            for features in product.photos:
                if features.kind != kind:
                    raise DetectionError(
                        f"product {product.sku} was indexed with {features.kind} features but the detector uses "
                        f"{kind}; re-index the catalog (media-service products reindex) or change the setting",
                        code="feature_kind_mismatch")
                if len(features.descriptors) == 0:
                    continue
                photo_id = len(self.photos)
                self.photos.append(_prepare_photo(product.sku, features))
                descriptors.append(features.descriptors)
                owners.append(np.full(len(features.descriptors), photo_id, np.int32))
        self.size = sum(len(d) for d in descriptors)
        if not self.size:
            self.index = None
            self.owner = np.zeros(0, np.int32)
            self.offsets = np.zeros(1, np.int64)
            self.spots = np.zeros(0, np.int64)
            self.descriptors = np.zeros((0, 0), np.uint8)
            return
        self.owner = np.concatenate(owners)
        counts = [len(d) for d in descriptors]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        # which place on its photo each descriptor describes, unique over the catalog
        self.spots = np.concatenate([offset + _spot_ids(photo.features.keypoints)
                                     for offset, photo in zip(self.offsets[:-1], self.photos, strict=True)])
        stacked = np.concatenate(descriptors)
        self.descriptors = stacked
        cv2.setRNGSeed(RNG_SEED)  # the kd-trees are randomised by OpenCV's RNG: the same catalog, the same index
        if kind == "sift":
            self.index = cv2.flann_Index(stacked.astype(np.float32),
                                         {"algorithm": 1, "trees": 4})  # FLANN_INDEX_KDTREE
            self.search_params = {"checks": checks}
        else:
            self.index = cv2.flann_Index(stacked, {"algorithm": 6, "table_number": 6, "key_size": 12,
                                                   "multi_probe_level": 1})  # FLANN_INDEX_LSH
            self.search_params = {"checks": max(checks, 64)}

    def knn(self, descriptors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices (Q, k) into the stacked descriptors and distances (Q, k), nearest first."""
        k = max(1, min(k, self.size))
        query = descriptors.astype(np.float32) if self.kind == "sift" else descriptors
        indices, distances = self.index.knnSearch(query, k, params=self.search_params)
        distances = distances.astype(np.float32)
        if self.kind == "sift":
            distances = np.sqrt(np.maximum(distances, 0))  # FLANN's kd-tree reports squared L2
        indices = indices.astype(np.int64)
        invalid = (indices < 0) | (indices >= self.size)
        indices[invalid] = 0
        distances[invalid] = np.inf
        return indices, distances

    def descriptor_distances(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Distances between stacked descriptors ``a[i]`` and ``b[i]``, as ``knn`` measures them."""
        x, y = self.descriptors[a], self.descriptors[b]
        if self.kind == "sift":
            return np.linalg.norm(x.astype(np.float32) - y.astype(np.float32), axis=1)
        return np.unpackbits(x ^ y, axis=1).sum(axis=1).astype(np.float32)  # ORB: Hamming

    def ratio_matches(self, indices: np.ndarray, distances: np.ndarray,
                      ratio: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query, stacked descriptor, ratio) of the matches passing Lowe's ratio test within each photo.

        For each query and each photo among its k neighbours (``knn``), the photo's nearest neighbour is
        kept when it is clearly nearer than the photo's second (or, if that is not among the k, than the
        k-th overall, a stricter bound). A logo shared by all products therefore still matches every
        product. The second must describe another place of the photo: SIFT describes a spot once per
        dominant orientation, and a spot is no rival of itself. When the second is a twin of the first
        (the photo's two descriptors are nearer each other than the query is to either: the two logos of
        a mug set), the query cannot tell them apart, so both are kept when they beat the photo's third
        and the geometric consensus picks the right one.
        """
        q, k = indices.shape
        photos = self.owner[indices]
        spots = self.spots[indices]
        fallback = distances[:, -1]
        keep_query: list[np.ndarray] = []
        keep_index: list[np.ndarray] = []
        keep_ratio: list[np.ndarray] = []
        for j in range(k):
            first = np.isfinite(distances[:, j])
            for earlier in range(j):
                first &= photos[:, earlier] != photos[:, j]
            rival = (photos == photos[:, j:j + 1]) & (spots != spots[:, j:j + 1])
            rival[:, :j + 1] = False
            second_at = _first_true(rival)
            second = np.where(second_at >= 0, distances[np.arange(q), second_at], fallback)
            passed = first & (distances[:, j] < ratio * second)
            rows = np.nonzero(passed)[0]
            keep_query.append(rows)
            keep_index.append(indices[rows, j])
            keep_ratio.append(distances[rows, j] / np.maximum(second[rows], 1e-6))
            rows = np.nonzero(first & ~passed & (second_at >= 0))[0]
            if not len(rows):
                continue
            twin_at = second_at[rows]
            twins = self.descriptor_distances(indices[rows, j], indices[rows, twin_at]) < distances[rows, j]
            rows, twin_at = rows[twins], twin_at[twins]
            third_rival = rival[rows] & (spots[rows] != spots[rows, twin_at][:, None]) \
                & (np.arange(k)[None, :] > twin_at[:, None])
            third_at = _first_true(third_rival)
            third = np.where(third_at >= 0, distances[rows, third_at], fallback[rows])
            kept = distances[rows, j] < ratio * third
            rows, twin_at, third = rows[kept], twin_at[kept], third[kept]
            for column in (np.full(len(rows), j), twin_at):
                keep_query.append(rows)
                keep_index.append(indices[rows, column])
                keep_ratio.append(distances[rows, column] / np.maximum(third, 1e-6))
        return np.concatenate(keep_query), np.concatenate(keep_index), np.concatenate(keep_ratio)


def _spot_ids(keypoints: np.ndarray) -> np.ndarray:
    """An id per place (to the pixel) of each keypoint: SIFT gives a spot one keypoint per dominant orientation."""
    if not len(keypoints):
        return np.zeros(0, np.int64)
    _, ids = np.unique(np.round(keypoints[:, :2]), axis=0, return_inverse=True)
    return ids.reshape(-1).astype(np.int64)


def _prepare_photo(sku: str, features: ProductPhotoFeatures) -> _Photo:
    colour = features.colour
    h, w = colour.shape[:2]
    small_scale = w / features.size[0]
    small_alpha = cv2.resize(features.alpha, (colour.shape[1], colour.shape[0]), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(colour, cv2.COLOR_BGR2LAB).astype(np.float32)
    inside = small_alpha > 160
    gray = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY).astype(np.float32)
    values = gray[inside]
    normalised = (gray - values.mean()) / (values.std() + 1e-3) if values.size else gray * 0
    colourfulness = float(np.abs(lab[inside][:, 1:] - 128.0).sum(axis=1).mean()) if values.size else 0.0
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64).reshape(-1, 1, 2)
    product_pixels = np.flatnonzero(inside)
    return _Photo(sku=sku, features=features, small_alpha=small_alpha, small_gray_raw=gray,
                  small_inside=inside.astype(np.uint8), small_scale=small_scale, small_corners=corners,
                  product_pixels=product_pixels,
                  product_gray=normalised.reshape(-1)[product_pixels],
                  product_chroma=lab.reshape(-1, 3)[product_pixels, 1:], colourfulness=colourfulness, small_lab=lab)


def _first_true(mask: np.ndarray) -> np.ndarray:
    """Per row, the column of the first True in ``mask`` (Q, k), -1 when there is none."""
    return np.where(mask.any(axis=1), mask.argmax(axis=1), -1)


# ------------------------------------------------------------------------------------- the detector


@dataclass(frozen=True)
class CatalogDetectorConfig:
    """Tuning of :class:`CatalogDetector`; the defaults are what the tests and benchmarks measure."""

    kind: str = "sift"
    max_side: int = 480  # frames are scaled down to this longer side before keypoints are computed
    max_features: int = 2000  # keypoints per frame
    neighbours: int = 6
    flann_checks: int = 32  # leaves the nearest-neighbour search visits: speed against recall
    ratio: float = 0.9  # loose on purpose: the appearance check, not the ratio test, keeps precision
    min_matches: int = 3  # ratio-test matches a photo needs before it is considered
    min_consensus: int = 3  # matches that must agree on one placement of the product
    max_matches_per_photo: int = 160
    reprojection_px: float = 5.0
    max_instances: int = 2  # per photo and frame
    min_prefilter: float = 0.3  # appearance similarity before alignment refinement
    min_score: float = 0.5
    min_visible: float = 0.35  # share of the projected product that must be inside the frame
    refine: bool = True  # refine each placement by dense (ECC) alignment of the photo to the frame


@dataclass
class _Placement:
    """Where matches put one photo, checked for geometry and a first look of appearance, not yet refined."""

    photo: int
    homography: np.ndarray
    box: np.ndarray  # xyxy, work pixels
    support: int  # matches that agree on it
    appearance: Appearance  # before refinement

    @property
    def score(self) -> float:
        return placement_score(self.appearance.similarity, self.support)

    @property
    def best_score(self) -> float:
        """About the best score refinement can reach: it aligns the grey pattern; colours change little."""
        return placement_score(self.appearance.best_similarity, self.support)


def placement_score(similarity: float, support: int) -> float:
    """0..1 from appearance similarity, discounted when few matches support the placement."""
    evidence = 1.0 - math.exp(-support / 8.0)
    return float(np.clip(similarity * (0.6 + 0.4 * evidence), 0.0, 1.0))


class CatalogDetector(Detector):
    """Finds the catalog's products in frames; every detection names its SKU (``data["sku"]``)."""

    name = "catalog"

    def __init__(self, products: Sequence[CatalogProduct], config: CatalogDetectorConfig | None = None) -> None:
        self.config = config or CatalogDetectorConfig()
        self.skus = sorted({p.sku for p in products})
        self._class_ids = {sku: i for i, sku in enumerate(self.skus)}
        self.matcher = CatalogMatcher(products, kind=self.config.kind, checks=self.config.flann_checks)
        self.extractor = make_feature_extractor(self.config.kind, self.config.max_features)

    def detect(self, frame: np.ndarray) -> Detections:
        check_frame(frame)
        if self.matcher.index is None:
            return _with_sku_data(Detections.empty())
        cv2.setRNGSeed(RNG_SEED)  # RANSAC draws from OpenCV's RNG: the same frame gives the same answer
        h, w = frame.shape[:2]
        scale = min(1.0, self.config.max_side / max(h, w))
        work = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) \
            if scale < 1.0 else frame
        hypotheses, views = self._hypotheses(work)
        kept = [decide(hyp, self.matcher.photos, views, align=lambda h, r, v=views: self._aligned(h, v, r),
                       rank=lambda h, r, v=views: self._looks_transferred(h, r, v))
                for hyp in resolve_overlaps(hypotheses, min_score=self.config.min_score)
                if hyp.score >= self.config.min_score and views is not None]
        detections = self._to_detections(kept)
        return detections.scaled(1 / scale, 1 / scale) if scale < 1.0 else detections

    def hypotheses(self, work: np.ndarray) -> list[Hypothesis]:
        """Every verified (photo, instance) placement in a frame already at working size."""
        return self._hypotheses(work)[0]

    def _hypotheses(self, work: np.ndarray) -> tuple[list[Hypothesis], _FrameViews | None]:
        """The hypotheses and the frame views they were verified on (None when nothing matched)."""
        cfg = self.config
        gray = cv2.cvtColor(work, cv2.COLOR_BGR2GRAY)
        keypoints, descriptors = self.extractor.detectAndCompute(gray, None)
        if descriptors is None or len(keypoints) < cfg.min_matches:
            return [], None
        frame_keypoints = _keypoint_array(keypoints)
        indices, distances = self.matcher.knn(descriptors, cfg.neighbours)
        queries, matched, ratios = self.matcher.ratio_matches(indices, distances, cfg.ratio)
        if len(queries) == 0:
            return [], None
        photo_of = self.matcher.owner[matched]
        frame = _FrameViews(gray=gray.astype(np.float32),
                            gray_lab=np.dstack([gray, cv2.cvtColor(work, cv2.COLOR_BGR2LAB)]).astype(np.float32))
        placements: list[_Placement] = []
        for photo_id in np.unique(photo_of):
            rows = np.nonzero(photo_of == photo_id)[0]
            if len(rows) < cfg.min_matches:
                continue
            if len(rows) > cfg.max_matches_per_photo:  # the most distinctive ones; consensus is quadratic
                rows = rows[np.argsort(ratios[rows], kind="stable")[:cfg.max_matches_per_photo]]
            photo = self.matcher.photos[photo_id]
            src = photo.features.keypoints[matched[rows] - self.matcher.offsets[photo_id]]
            dst = frame_keypoints[queries[rows]]
            placements += self._placements(int(photo_id), photo, src, dst, frame)
        return self._confirm(placements, frame), frame

    def _placements(self, photo_id: int, photo: _Photo, src: np.ndarray, dst: np.ndarray,
                    frame: _FrameViews) -> list[_Placement]:
        """Up to ``max_instances`` placements of one photo among its matches (x, y, size, angle rows)."""
        cfg = self.config
        found: list[_Placement] = []
        remaining = np.ones(len(src), bool)
        diagonal = float(np.hypot(*photo.features.size))
        frame_h, frame_w = frame.gray.shape
        for _ in range(cfg.max_instances):
            if remaining.sum() < cfg.min_consensus:
                break
            positions = np.nonzero(remaining)[0]
            agreeing = positions[similarity_consensus(src[positions], dst[positions], diagonal)]
            if len(agreeing) < cfg.min_consensus:
                break
            remaining[agreeing] = False
            transform = initial_transform(src[agreeing, :2], dst[agreeing, :2], photo.features.alpha,
                                          cfg.reprojection_px)
            if transform is None or not plausible_homography(transform, photo.features.size, frame_h * frame_w):
                continue
            looks = appearance(photo, transform, frame)
            if looks is None or looks.similarity < cfg.min_prefilter:
                continue
            polygon = cv2.perspectiveTransform(photo.features.outline.reshape(-1, 1, 2), transform)
            found.append(_Placement(photo=photo_id, homography=transform, box=_clipped_box(polygon, frame_w, frame_h),
                                    support=len(agreeing), appearance=looks))
            # Matches inside this placement belong to it, not to another instance of the same photo.
            for i in np.nonzero(remaining)[0]:
                if cv2.pointPolygonTest(polygon, (float(dst[i, 0]), float(dst[i, 1])), False) >= 0:
                    remaining[i] = False
        return found

    def _confirm(self, placements: Sequence[_Placement], frame: _FrameViews) -> list[Hypothesis]:
        """Refine and score placements, the most promising first.

        Refinement (ECC) is the costly step, so a placement that could hardly beat one already confirmed
        at the same place even when perfectly aligned keeps its first score: it is a runner-up at best.
        """
        confirmed: list[Hypothesis] = []
        for placement in sorted(placements, key=lambda p: -p.score):
            outclassed = any(hyp.score >= placement.best_score and same_place(hyp.box, placement.box)
                             for hyp in confirmed)
            hypothesis = self._verify(placement, frame, refine=self.config.refine and not outclassed)
            if hypothesis is not None:
                confirmed.append(hypothesis)
        return confirmed

    def _verify(self, placement: _Placement, frame: _FrameViews, *, refine: bool) -> Hypothesis | None:
        """Refine a placement (optionally), check what of it is in the frame and score it; None when it fails."""
        cfg = self.config
        photo = self.matcher.photos[placement.photo]
        homography, similarity = placement.homography, placement.appearance.similarity
        if refine:
            refined = refine_alignment(photo, homography, frame.gray)
            if refined is not None and plausible_homography(refined, photo.features.size, frame.gray.size):
                looks = appearance(photo, refined, frame)
                if looks is not None and looks.similarity > similarity:
                    homography, similarity = refined, looks.similarity
        polygon = cv2.perspectiveTransform(photo.features.outline.reshape(-1, 1, 2), homography).reshape(-1, 2)
        frame_h, frame_w = frame.gray.shape
        x0, y0 = polygon.min(axis=0)
        x1, y1 = polygon.max(axis=0)
        box = _clipped_box(polygon, frame_w, frame_h)
        full_area = max(float((x1 - x0) * (y1 - y0)), 1e-6)
        visible = float(max(box[2] - box[0], 0) * max(box[3] - box[1], 0)) / full_area
        if visible < cfg.min_visible:
            return None
        return Hypothesis(photo=placement.photo, sku=photo.sku, homography=homography,
                          polygon=polygon.astype(np.float32), box=box, inliers=placement.support, colour=similarity,
                          score=placement_score(similarity, placement.support), refined=refine, placement=placement)

    def _transferred(self, hypothesis: Hypothesis, reference: Hypothesis) -> np.ndarray:
        """``hypothesis``'s photo placed where ``reference``'s photo is, scaled to it (variants are shot alike)."""
        mine = self.matcher.photos[hypothesis.photo].features.size
        theirs = self.matcher.photos[reference.photo].features.size
        return reference.homography @ np.diag([theirs[0] / mine[0], theirs[1] / mine[1], 1.0])

    def _looks_transferred(self, hypothesis: Hypothesis, reference: Hypothesis, frame: _FrameViews) -> float:
        """Quick similarity of ``hypothesis``'s photo at ``reference``'s place (no alignment): ranks rivals."""
        looks = appearance(self.matcher.photos[hypothesis.photo], self._transferred(hypothesis, reference), frame)
        return max(hypothesis.colour, looks.similarity if looks is not None else 0.0)

    def _aligned(self, hypothesis: Hypothesis, frame: _FrameViews, reference: Hypothesis | None = None) -> Hypothesis:
        """``hypothesis`` densely aligned if it was not yet (a runner-up skips that while scores are ranked;
        a colour contest between two SKUs needs both well placed).

        With a ``reference`` (the leading hypothesis at the place), the photo is also tried where the
        reference's photo is, scaled to it: variants of one design are shot alike, and a variant whose own
        matches sit on a shared logo is often placed badly from them alone. The better-looking placement wins.
        """
        if hypothesis.placement is None or not self.config.refine:
            return hypothesis
        options = [hypothesis]
        if not hypothesis.refined:
            again = self._verify(hypothesis.placement, frame, refine=True)
            options.append(again if again is not None else hypothesis)
        if reference is not None and reference.photo != hypothesis.photo:
            moved = self._transferred(hypothesis, reference)
            looks = appearance(self.matcher.photos[hypothesis.photo], moved, frame)
            if looks is not None:
                placement = _Placement(photo=hypothesis.photo, homography=moved, box=reference.box,
                                       support=hypothesis.inliers, appearance=looks)
                again = self._verify(placement, frame, refine=True)
                if again is not None:
                    options.append(again)
        best = max(options, key=lambda h: h.colour)
        best.refined = True
        best.candidates, best.rivals = hypothesis.candidates, hypothesis.rivals
        return best

    def _to_detections(self, kept: Sequence[Hypothesis]) -> Detections:
        if not kept:
            return _with_sku_data(Detections.empty())
        return Detections(
            xyxy=np.stack([h.box for h in kept]),
            confidence=np.array([h.score for h in kept], np.float32),
            class_id=np.array([self._class_ids[h.sku] for h in kept], np.int64),
            data={SKU: _as_object_array([h.sku for h in kept]),
                  POLYGON: _as_object_array([h.polygon for h in kept]),
                  CANDIDATES: _as_object_array([sorted(h.candidates.items(), key=lambda kv: (kv[0] != h.sku, -kv[1]))
                                                for h in kept]),
                  CERTAIN: np.array([h.certain for h in kept], bool),
                  MASK_PRIOR: _as_object_array([MaskPrior(self.matcher.photos[h.photo].features.alpha, h.homography)
                                                for h in kept])},
        )


def _clipped_box(polygon: np.ndarray, frame_w: int, frame_h: int) -> np.ndarray:
    """xyxy bounding box of ``polygon`` (any (..., 2) shape) within the frame."""
    points = polygon.reshape(-1, 2)
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return np.array([max(x0, 0), max(y0, 0), min(x1, frame_w), min(y1, frame_h)], np.float32)


@dataclass(frozen=True)
class _FrameViews:
    """The working frame in the forms verification needs, computed once per frame."""

    gray: np.ndarray  # float32
    gray_lab: np.ndarray  # float32 (h, w, 4): grey, L*, a*, b*, warped together onto photos


def _with_sku_data(detections: Detections) -> Detections:
    empty = _as_object_array([])
    return Detections(xyxy=detections.xyxy, confidence=detections.confidence, class_id=detections.class_id,
                      data={SKU: empty, POLYGON: empty.copy(), CANDIDATES: empty.copy(),
                            CERTAIN: np.zeros(0, bool), MASK_PRIOR: empty.copy()})


def similarity_consensus(src: np.ndarray, dst: np.ndarray, diagonal: float, *, position_tolerance: float = 0.12,
                         scale_tolerance: float = 0.5, angle_tolerance: float = 0.6) -> np.ndarray:
    """The largest set of matches that agree on one similarity transform (boolean mask over the rows).

    Every SIFT/ORB match carries a scale and an orientation, so one match alone predicts where the
    product is (Lowe's Hough voting, done exactly for small N): each match proposes a transform, the
    others vote if they land near its prediction with a similar scale and rotation. Plain RANSAC on
    4-point samples almost never draws four right matches when they are 5 % of all matches; this does.
    """
    n = len(src)
    if n == 0:
        return np.zeros(0, bool)
    scale = np.log(np.maximum(dst[:, 2], 1e-3) / np.maximum(src[:, 2], 1e-3))
    angle = np.radians(dst[:, 3] - src[:, 3])
    scale, angle = scale.astype(np.float32), angle.astype(np.float32)
    src, dst = src.astype(np.float32), dst.astype(np.float32)
    factor = np.exp(scale)
    cos, sin = factor * np.cos(angle), factor * np.sin(angle)
    # where match i's transform puts match j's photo point: R_i (src_j - src_i) + dst_i
    dx = src[None, :, 0] - src[:, None, 0]
    dy = src[None, :, 1] - src[:, None, 1]
    px = cos[:, None] * dx - sin[:, None] * dy + dst[:, None, 0]
    py = sin[:, None] * dx + cos[:, None] * dy + dst[:, None, 1]
    error = np.hypot(px - dst[None, :, 0], py - dst[None, :, 1])
    tolerance = np.maximum(6.0, position_tolerance * factor * diagonal)
    turn = np.abs((angle[None, :] - angle[:, None] + np.pi) % (2 * np.pi) - np.pi)
    agree = (error < tolerance[:, None]) & (np.abs(scale[None, :] - scale[:, None]) < scale_tolerance) \
        & (turn < angle_tolerance)
    return agree[int(np.argmax(agree.sum(axis=1)))]


def initial_transform(src: np.ndarray, dst: np.ndarray, alpha: np.ndarray, reprojection_px: float
                      ) -> np.ndarray | None:
    """A 3x3 photo-to-frame transform from agreeing matches.

    A full homography only when the matches are many and spread over the product; matches bunched on a
    logo constrain perspective badly, so then a similarity (4 degrees of freedom) is extrapolated and
    the dense alignment that follows recovers the perspective from the whole product's pixels.
    """
    if len(src) >= 12 and _spread(src, alpha) >= 0.2:
        homography, mask = cv2.findHomography(src, dst, cv2.RANSAC, reprojection_px, maxIters=500, confidence=0.995)
        if homography is not None and mask is not None and mask.sum() >= 8:
            return homography / homography[2, 2]
    affine, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=reprojection_px * 2)
    if affine is None or mask is None or mask.sum() < min(4, len(src)):
        return None
    return np.vstack([affine, [0.0, 0.0, 1.0]])


def plausible_homography(homography: np.ndarray, photo_size: tuple[int, int], frame_area: float) -> bool:
    """The photo's rectangle projected by ``homography`` is a shape a real view of the product could have.

    Convex, not mirrored, neither collapsed nor huge, opposite sides of similar length (moderate
    perspective): RANSAC and dense alignment can both wander off into degenerate transforms.
    """
    if not np.all(np.isfinite(homography)):
        return False
    pw, ph = photo_size
    corners = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32).reshape(-1, 1, 2)
    quad = cv2.perspectiveTransform(corners, homography.astype(np.float64)).reshape(-1, 2)
    if not cv2.isContourConvex(quad.reshape(-1, 1, 2).astype(np.float32)):
        return False
    area = 0.5 * float(np.sum(quad[:, 0] * np.roll(quad[:, 1], -1) - np.roll(quad[:, 0], -1) * quad[:, 1]))
    if not 0.002 * frame_area <= area <= 1.5 * frame_area:  # negative area: mirrored
        return False
    sides = np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1)
    if sides.min() < 4:
        return False
    return max(sides[0] / sides[2], sides[2] / sides[0], sides[1] / sides[3], sides[3] / sides[1]) <= 2.5


def _spread(points: np.ndarray, alpha: np.ndarray) -> float:
    """Share of the product's area covered by the bounding box of the matched points."""
    if len(points) < 3:
        return 0.0
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    product_area = max(float((alpha > 127).sum()), 1.0)
    return float((x1 - x0) * (y1 - y0) / product_area)


def _to_small(photo: _Photo, homography: np.ndarray) -> np.ndarray:
    """``homography`` (photo to frame) as a transform from the small colour copy to the frame."""
    return homography @ np.diag([1 / photo.small_scale, 1 / photo.small_scale, 1.0])


@dataclass(frozen=True)
class Appearance:
    """How much the frame, warped back onto a photo, looks like the photo.

    ``pattern``: normalised correlation of the grey levels (brightness and contrast changes do not
    matter), 0 when negative. ``chroma``: agreement of Lab a*/b* (a red cap is not a black cap even when
    every keypoint matches), 0..1. ``colour_weight``: how far the product's colour counts on its own; the
    chroma of a black, white or grey product agrees with any grey region (a black-and-white film), so
    there it only confirms what the grey pattern shows, and can still veto a coloured region.
    """

    pattern: float
    chroma: float
    colour_weight: float

    @property
    def similarity(self) -> float:
        """0..1: half grey pattern, half colour."""
        return self._similarity(self.pattern)

    @property
    def best_similarity(self) -> float:
        """The similarity with the grey pattern perfectly aligned and the colours as they are."""
        return self._similarity(1.0)

    def _similarity(self, pattern: float) -> float:
        return 0.5 * pattern + 0.5 * self.chroma * (self.colour_weight + (1.0 - self.colour_weight) * pattern)


def appearance(photo: _Photo, homography: np.ndarray, frame: _FrameViews) -> Appearance | None:
    """How the frame looks like ``photo`` placed by ``homography``; None when too little of it is in the frame."""
    to_frame = _to_small(photo, homography)
    size = (photo.small_alpha.shape[1], photo.small_alpha.shape[0])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpPerspective(frame.gray_lab, to_frame, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    pixels = warped.reshape(-1, 4)[photo.product_pixels]
    gray, chroma = photo.product_gray, photo.product_chroma
    frame_h, frame_w = frame.gray_lab.shape[:2]
    corners = cv2.perspectiveTransform(photo.small_corners, to_frame).reshape(-1, 2)
    if corners.min() < 0 or corners[:, 0].max() > frame_w - 1 or corners[:, 1].max() > frame_h - 1:
        visible = cv2.warpPerspective(np.full((frame_h, frame_w), 255, np.uint8), to_frame, size, flags=flags,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        seen = visible.reshape(-1)[photo.product_pixels] > 200
        if seen.sum() < 0.3 * max(len(seen), 1):
            return None
        pixels, gray, chroma = pixels[seen], gray[seen], chroma[seen]
    values = pixels[:, 0]
    frame_norm = (values - values.mean()) / (values.std() + 1e-3)
    correlation = float(np.mean(frame_norm * gray))
    chroma = np.abs(pixels[:, 2:] - chroma).sum(axis=1)
    return Appearance(pattern=max(correlation, 0.0), chroma=math.exp(-float(np.mean(chroma)) / 25.0),
                      colour_weight=min(photo.colourfulness / COLOURFUL_CHROMA, 1.0))


def refine_alignment(photo: _Photo, homography: np.ndarray, gray: np.ndarray) -> np.ndarray | None:
    """Dense (ECC) alignment of the photo's grey copy to the frame, starting from ``homography``.

    Keypoints bunched on a logo pin the product down only near the logo; the whole product's pixels
    fix its outline (the box, the cut-out prior). ECC runs on the part of the frame around the product
    (it filters its whole input image on every call). ``findTransformECCWithMask`` (OpenCV >= 4.13) takes
    the photo's mask, so only the product's pixels count (plain ``findTransformECC``'s mask is the frame's).
    None when the optimisation does not converge.
    """
    frame_h, frame_w = gray.shape
    x0, y0, x1, y1 = _clipped_box(cv2.perspectiveTransform(photo.features.outline.reshape(-1, 1, 2), homography),
                                  frame_w, frame_h)
    margin = 0.25 * max(x1 - x0, y1 - y0) + 8
    left, top = int(max(x0 - margin, 0)), int(max(y0 - margin, 0))
    right, bottom = int(min(x1 + margin, frame_w)), int(min(y1 + margin, frame_h))
    if right - left < 8 or bottom - top < 8:
        return None
    region = np.ascontiguousarray(gray[top:bottom, left:right])
    to_region = np.array([[1.0, 0.0, -left], [0.0, 1.0, -top], [0.0, 0.0, 1.0]])
    warp = (to_region @ _to_small(photo, homography)).astype(np.float32)
    warp /= warp[2, 2]
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 1e-4)
    try:
        _, warp = cv2.findTransformECCWithMask(photo.small_gray_raw, region, photo.small_inside,
                                               np.full(region.shape, 255, np.uint8), warp, cv2.MOTION_HOMOGRAPHY,
                                               criteria, 3)
    except cv2.error:
        return None
    refined = np.linalg.inv(to_region) @ warp.astype(np.float64) @ np.diag([photo.small_scale, photo.small_scale, 1.0])
    return refined / refined[2, 2]


def resolve_overlaps(hypotheses: Sequence[Hypothesis], *, min_score: float, iou: float = 0.4,
                     containment: float = 0.7) -> list[Hypothesis]:
    """Keep the best hypothesis per place; the ones it beats become its runner-up SKU candidates.

    Two hypotheses compete when their boxes overlap (IoU) or one lies mostly inside the other (a logo
    matched by a sticker photo inside a cap). The best score wins, except that a confident product
    (``min_score``) wins over another product lying inside it: a sticker that is the cap's logo can
    look even more like the logo than the cap photo looks like the cap, but the cap explains the logo
    and the sticker does not explain the cap. Candidate scores are the best score per SKU.
    """
    kept: list[Hypothesis] = []
    for hyp in sorted(hypotheses, key=lambda h: -h.score):
        place = next((i for i, other in enumerate(kept) if same_place(hyp.box, other.box, iou=iou,
                                                                      containment=containment)), None)
        if place is None:
            hyp.candidates = {hyp.sku: round(hyp.score, 4)}
            kept.append(hyp)
            continue
        winner = kept[place]
        if hyp.sku != winner.sku and hyp.score >= min_score and _contained(winner.box, hyp.box) > containment:
            hyp.candidates = {hyp.sku: round(hyp.score, 4)} | {sku: score for sku, score in winner.candidates.items()
                                                                if sku != hyp.sku}
            hyp.rivals = [r for r in [winner, *winner.rivals] if r.sku != hyp.sku]
            kept[place] = hyp
        elif hyp.sku not in winner.candidates:
            winner.candidates[hyp.sku] = round(hyp.score, 4)
            winner.rivals.append(hyp)
    return kept


def same_place(a: np.ndarray, b: np.ndarray, *, iou: float = 0.4, containment: float = 0.7) -> bool:
    """Two boxes (xyxy) compete for one place: they overlap, or one lies mostly inside the other."""
    return box_iou(a, b) > iou or _contained(a, b) > containment or _contained(b, a) > containment


def _contained(inner: np.ndarray, outer: np.ndarray) -> float:
    """Share of ``inner``'s area inside ``outer``."""
    ix0, iy0 = max(inner[0], outer[0]), max(inner[1], outer[1])
    ix1, iy1 = min(inner[2], outer[2]), min(inner[3], outer[3])
    inter = max(0.0, ix1 - ix0) * max(0.0, iy1 - iy0)
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return float(inter / area) if area > 0 else 0.0


# ------------------------------------------------------------------------------ which SKU, and how sure

RIVAL_LOOKS = 0.7  # a rival whose photo looks less than this share as alike as the leader's is no contender
CONTEST_MARGIN = 0.25  # share of the telling pixels by which one SKU must beat another to be certain
TELLING_DIFFERENCE = 30.0  # Lab distance (8-bit, L at half weight) from which two photos differ at a pixel
AGREEMENT = 22.0  # Lab distance under which the frame matches a photo at a pixel
EDGE_DIFFERENCE = 12.0  # Lab distance (L at half weight) of the median colours in and out of an outline's edge
LIGHTNESS_RATIO = 1.8  # how much lighter or darker than its photo a product may look and still be certain


def _lab_distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-pixel distance of two (..., 3) Lab arrays: chroma fully, lightness at half weight (light changes)."""
    return 0.5 * np.abs(x[..., 0] - y[..., 0]) + np.abs(x[..., 1] - y[..., 1]) + np.abs(x[..., 2] - y[..., 2])


def _frame_on(photo: _Photo, homography: np.ndarray, frame: _FrameViews) -> tuple[np.ndarray, np.ndarray]:
    """The frame's Lab warped onto the photo's colour copy and where the frame was seen."""
    size = (photo.small_alpha.shape[1], photo.small_alpha.shape[0])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpPerspective(frame.gray_lab, _to_small(photo, homography), size, flags=flags,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(-1, -1, -1, -1))
    return warped[:, :, 1:], warped[:, :, 0] >= 0


def _votes_on(a: _Photo, a_h: np.ndarray, b: _Photo, b_h: np.ndarray, frame: _FrameViews) -> tuple[int, int]:
    """Pixels of photo ``a`` (placed by ``a_h``) that speak for ``a`` and for ``b`` (placed by ``b_h``).

    Where both photos cover the product and differ (a red sleeve against a blue one, one print against
    another), the frame votes for the photo it is nearer to. Where only ``a`` covers it, the frame
    votes for ``a`` when it matches ``a`` and against it when not (``a`` claims a product larger than
    the one there). Pixels where the photos agree say nothing. Lightness is compared after a gain
    fitted on the pixels where the photos agree (a darker scene is not a darker product).
    """
    seen_lab, seen = _frame_on(a, a_h, frame)
    size = (a.small_alpha.shape[1], a.small_alpha.shape[0])
    a_to_b = np.linalg.inv(_to_small(b, b_h)) @ _to_small(a, a_h)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    b_lab = cv2.warpPerspective(b.small_lab, a_to_b, size, flags=flags, borderMode=cv2.BORDER_CONSTANT)
    b_inside = cv2.warpPerspective(b.small_alpha, a_to_b, size, flags=flags, borderMode=cv2.BORDER_CONSTANT) > 160
    inside = (a.small_inside > 0) & seen
    both = inside & b_inside
    differ = _lab_distance(a.small_lab, b_lab) > TELLING_DIFFERENCE
    agree = both & ~differ
    gain = 1.0
    if agree.sum() >= 20:
        gain = float(np.clip(np.median(seen_lab[agree][:, 0] + 8.0) / (np.median(a.small_lab[agree][:, 0]) + 8.0),
                             0.6, 1.6))
    a_lab = a.small_lab.copy()
    a_lab[..., 0] *= gain
    b_lab[..., 0] *= gain
    error_a = _lab_distance(seen_lab, a_lab)
    error_b = _lab_distance(seen_lab, b_lab)
    telling = both & differ
    for_a = int((telling & (error_a + 8.0 < error_b)).sum())
    for_b = int((telling & (error_b + 8.0 < error_a)).sum())
    only_a = inside & ~b_inside
    for_a += int((only_a & (error_a < AGREEMENT)).sum())
    for_b += int((only_a & (error_a > 2 * AGREEMENT)).sum())
    return for_a, for_b


def colour_contest(a: Hypothesis, b: Hypothesis, photos: Sequence[_Photo], frame: _FrameViews) -> float:
    """-1..1: how clearly the frame is product ``a`` rather than ``b`` (both placed where they were found),
    on the pixels that tell the two apart, seen from each photo; 0 when nothing tells them apart."""
    pa, pb = photos[a.photo], photos[b.photo]
    a1, b1 = _votes_on(pa, a.homography, pb, b.homography, frame)
    b2, a2 = _votes_on(pb, b.homography, pa, a.homography, frame)
    total = a1 + b1 + a2 + b2
    if total < 12:  # a handful of pixels: the photos are the same product as far as this frame shows
        return 0.0
    return (a1 + a2 - b1 - b2) / total


def decide(hypothesis: Hypothesis, photos: Sequence[_Photo], frame: _FrameViews, *, margin: float = CONTEST_MARGIN,
           contenders: int = 3, align: Callable[[Hypothesis, Hypothesis | None], Hypothesis] = lambda h, r: h,
           rank: Callable[[Hypothesis, Hypothesis], float] = lambda h, r: h.colour) -> Hypothesis:
    """The SKU at one place, by colour contests between the best hypotheses of each SKU there, and whether
    it is certain: it must beat every contender by ``margin``. Scores decide the order of the contests
    only; a product whose keypoints (a shared logo) match several SKUs equally is told by its colours."""
    if not hypothesis.rivals:
        return _checked(hypothesis, photos, frame, contested=False)
    looks = {id(r): rank(r, hypothesis) for r in hypothesis.rivals}
    ranked = sorted((r for r in hypothesis.rivals if looks[id(r)] >= RIVAL_LOOKS * hypothesis.colour),
                    key=lambda r: -looks[id(r)])
    if not ranked:
        return _checked(hypothesis, photos, frame, contested=False)
    hypothesis = align(hypothesis, None)
    rivals = [align(r, hypothesis) for r in ranked[:contenders]]
    rivals = [r for r in rivals if r.score >= 0.6 * hypothesis.score and same_place(r.box, hypothesis.box)]
    if not rivals:
        return _checked(hypothesis, photos, frame, contested=False)
    champion = hypothesis
    for rival in rivals:
        if colour_contest(rival, champion, photos, frame) > margin:
            champion = rival
    others = [h for h in [hypothesis, *rivals] if h is not champion]
    certain = all(colour_contest(champion, other, photos, frame) > margin for other in others)
    if champion is not hypothesis:
        champion.candidates = {champion.sku: round(champion.score, 4)} | {
            sku: score for sku, score in hypothesis.candidates.items() if sku != champion.sku}
        champion.rivals = others
    return _checked(champion, photos, frame, contested=not certain)


def _checked(hypothesis: Hypothesis, photos: Sequence[_Photo], frame: _FrameViews, *, contested: bool) -> Hypothesis:
    """Sets ``certain`` and, when it is not, ``doubt``: why (the first failed check)."""
    if contested:
        hypothesis.doubt = "a rival SKU looks as alike"
    elif not lightness_agrees(hypothesis, photos, frame):
        hypothesis.doubt = "lighter or darker than its photo"
    elif not has_own_edge(hypothesis, frame):
        hypothesis.doubt = "its outline is no edge in the frame"
    hypothesis.certain = hypothesis.doubt is None
    return hypothesis


def has_own_edge(hypothesis: Hypothesis, frame: _FrameViews, *, sectors: int = 12, min_share: float = 0.34) -> bool:
    """The product's outline is an edge in the frame along at least ``min_share`` of its way round.

    A sticker's photo also matches the same print on a hoodie, and a logo product the logo on a shirt:
    there the outline runs through one continuous surface, the colour just inside it continuing just
    outside. A real object of that outline stands out from what is behind it along most of its edge.
    Inner and outer bands are compared (mean Lab) per angular sector around the centre.
    """
    frame_h, frame_w = frame.gray_lab.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in hypothesis.box)
    size = max(x1 - x0, y1 - y0)
    band = max(2, round(0.06 * size))
    left, top = max(x0 - 2 * band, 0), max(y0 - 2 * band, 0)
    right, bottom = min(x1 + 2 * band, frame_w), min(y1 + 2 * band, frame_h)
    if right - left < 8 or bottom - top < 8:
        return True
    shape = (bottom - top, right - left)
    inside = np.zeros(shape, np.uint8)
    cv2.fillPoly(inside, [np.round(hypothesis.polygon - [left, top]).astype(np.int32).reshape(-1, 1, 2)], 1)
    kernel = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    inner = (inside > 0) & ~(cv2.erode(inside, kernel) > 0)
    outer = (cv2.dilate(inside, kernel) > 0) & ~(inside > 0)
    lab = frame.gray_lab[top:bottom, left:right, 1:].reshape(-1, 3)
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    centre = hypothesis.polygon.mean(axis=0) - [left, top]
    sector = ((np.arctan2(ys - centre[1], xs - centre[0]) + np.pi) / (2 * np.pi) * sectors).astype(int) % sectors
    sector = sector.reshape(-1)

    def band_means(band_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.flatnonzero(band_mask.reshape(-1))
        counts = np.bincount(sector[rows], minlength=sectors)
        sums = np.stack([np.bincount(sector[rows], weights=lab[rows, c], minlength=sectors) for c in range(3)], 1)
        return sums / np.maximum(counts, 1)[:, None], counts

    inner_mean, inner_count = band_means(inner)
    outer_mean, outer_count = band_means(outer)
    valid = (inner_count >= 4) & (outer_count >= 4)  # elsewhere the outline leaves the frame
    difference = np.abs(inner_mean - outer_mean)
    edge = 0.5 * difference[:, 0] + difference[:, 1] + difference[:, 2] > EDGE_DIFFERENCE
    counted, edges = int(valid.sum()), int((edge & valid).sum())
    return counted == 0 or edges >= min_share * counted


def lightness_agrees(hypothesis: Hypothesis, photos: Sequence[_Photo], frame: _FrameViews,
                     limit: float = LIGHTNESS_RATIO) -> bool:
    """The product in the frame is about as light as its photo (median L*, up to ``limit`` times lighter or
    darker: scene light and exposure). Grey and black share their chroma and grey pattern: a grey cap the
    catalog does not have would otherwise be its black cap."""
    photo = photos[hypothesis.photo]
    seen_lab, seen = _frame_on(photo, hypothesis.homography, frame)
    inside = (photo.small_inside > 0) & seen
    if inside.sum() < 20:
        return False
    ratio = (float(np.median(seen_lab[inside][:, 0])) + 12.0) / (float(np.median(photo.small_lab[inside][:, 0])) + 12.0)
    return 1.0 / limit <= ratio <= limit
