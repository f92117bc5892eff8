"""The panorama stitcher: OpenCV's stitching pipeline as named stages with a fallback chain.

``stitch()`` reads like the list of steps. Registration (features, matching, cameras) runs on ~0.6 MP
copies; seams and exposure on ~0.1 MP warps; only compositing touches full-resolution pixels, one photo
and one band of rows at a time. When a stage fails the next option is tried: SIFT then ORB features,
the rotation model then the affine model (flat subjects), spherical then cylindrical projection. What
happened to every photo ends up in the diagnostics, and a set that cannot be stitched raises one
:class:`StitchingError` whose message says what to reshoot.


Over 500 lines: ``stitch()`` and its fallback chain read as one story; the work of each stage is in its
own module (features, matching, cameras, warping, exposure, seams, blending, cropping)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from media_service.errors import MediaServiceError
from media_service.media.ingest.facts import IngestLimits
from media_service.media.panorama import cameras as camera_stage
from media_service.media.panorama import matching
from media_service.media.panorama.blending import Compositor, multiband_correction
from media_service.media.panorama.cropping import Framing, fill_uncovered, frame_output, trim_uncovered
from media_service.media.panorama.diagnostics import StitchDiagnostics
from media_service.media.panorama.errors import StitchingError
from media_service.media.panorama.exposure import apply_gains, estimate_gains
from media_service.media.panorama.features import DETECTORS, Features, detect_features, sharpness
from media_service.media.panorama.images import WorkingImage, gray, load_full_image, load_working_image
from media_service.media.panorama.seams import SEAM_FINDERS, find_seams, soft_weights
from media_service.media.panorama.warping import Camera, Projection, Rect, warp

Progress = Callable[[float], None]

PROJECTION_OPTIONS = ("auto", "spherical", "cylindrical", "flat")
DETECTOR_OPTIONS = ("auto", *DETECTORS)
BLEND_OPTIONS = ("multiband", "feather")
#: Fewer keypoints than this and a photo is called featureless when it cannot be matched.
FEATURELESS_BELOW = 60
#: A photo this much less sharp than the set's median is called blurry.
BLURRY_RATIO = 0.3
#: A layout whose canvas is this many times larger than the photos together is a failed estimate.
MAX_CANVAS_RATIO = 6.0
#: Photos that turn less than this share of one photo's field of view (near-duplicates: a pair overlapping
#: by 88 % turns 0.12 of it) make a flat, rectilinear result: a panorama viewer would add nothing.
NARROW_TURN = 0.4
#: Feathering across seams, as a fraction of a photo's width.
FEATHER_FRACTION = 0.006


@dataclass(frozen=True)
class Photo:
    """One input photo: a local file and the name shown in diagnostics."""

    path: Path
    name: str


@dataclass(frozen=True)
class StitchOptions:
    """How to stitch; the defaults suit phone photos of a scene taken by turning on the spot."""

    projection: str = "auto"  # auto | spherical | cylindrical | flat
    detector: str = "auto"  # auto | sift | orb
    crop: bool = True  # crop to a rectangle that keeps every photo (False: the whole canvas, black borders)
    blend: str = "multiband"  # multiband | feather
    work_megapixels: float = 0.6
    seam_megapixels: float = 0.1
    max_output_megapixels: float = 60.0
    confidence_threshold: float = 1.0
    max_features: int = 1500
    seam_finder: str = "graphcut"

    def __post_init__(self) -> None:
        if self.projection not in PROJECTION_OPTIONS:
            raise ValueError(f"projection must be one of {', '.join(PROJECTION_OPTIONS)}")
        if self.detector not in DETECTOR_OPTIONS:
            raise ValueError(f"detector must be one of {', '.join(DETECTOR_OPTIONS)}")
        if self.blend not in BLEND_OPTIONS:
            raise ValueError(f"blend must be one of {', '.join(BLEND_OPTIONS)}")
        if self.seam_finder not in SEAM_FINDERS:
            raise ValueError(f"seam_finder must be one of {', '.join(SEAM_FINDERS)}")


@dataclass
class Panorama:
    """A stitched panorama (RGB uint8) with its geometry and what happened to each photo."""

    image: np.ndarray
    projection: str  # spherical | cylindrical | plane
    pixels_per_radian: float | None
    canvas_size: tuple[int, int]  # (width, height) of the uncropped canvas
    crop: Rect  # the output within the uncropped canvas
    canvas_origin: tuple[int, int]  # output coordinates of the canvas's top-left pixel
    diagnostics: StitchDiagnostics
    timings: dict[str, float] = field(default_factory=dict)
    filled_fraction: float = 0.0  # share of the output that no photo covers, filled with a smooth continuation

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]

    def field_of_view(self) -> dict[str, Any]:
        """Horizontal/vertical coverage in degrees and where the image's centre looks (yaw, pitch)."""
        if self.projection == "plane" or not self.pixels_per_radian:
            return {"horizontal": None, "vertical": None, "yaw": None, "pitch": None, "full_360": False}
        scale = self.pixels_per_radian
        left = (self.canvas_origin[0] + self.crop.x) / scale
        right = left + self.crop.width / scale
        top_v = (self.canvas_origin[1] + self.crop.y) / scale
        bottom_v = top_v + self.crop.height / scale
        if self.projection == "cylindrical":
            top_v, bottom_v = math.atan(top_v), math.atan(bottom_v)
        horizontal = math.degrees(right - left)
        return {"horizontal": round(horizontal, 2), "vertical": round(math.degrees(bottom_v - top_v), 2),
                "yaw": round(math.degrees((left + right) / 2), 2),
                "pitch": round(-math.degrees((top_v + bottom_v) / 2), 2),
                "full_360": horizontal >= 359.0}


@dataclass
class _Registration:
    """The outcome of one attempt of the fallback chain."""

    detector: str
    features: list[Features]
    pairs: dict[tuple[int, int], matching.PairMatch]
    cameras: camera_stage.Cameras
    projection: Projection
    rois: list[Rect]  # working-resolution output rectangles of cameras.indices
    dropped: dict[int, tuple[str, dict[str, Any]]]
    focal: dict[str, Any] | None = None  # where the focal length came from (rotation model)


def stitch(photos: Sequence[Photo], limits: IngestLimits, options: StitchOptions | None = None,
           progress: Progress | None = None) -> Panorama:
    """Stitch ``photos`` (at least two, in any order) into a panorama.

    1. load upright ~0.6 MP copies (unreadable photos are dropped, with the reason);
    2. register: features, pairwise matching, duplicates, camera estimation, bundle adjustment, wave
       correction, projection; falling back SIFT -> ORB, rotation -> affine, spherical -> cylindrical,
       and dropping photos that do not fit (no overlap, another spot or zoom);
    3. exposure gains and seams on ~0.1 MP warps, and the crop to the fully covered rectangle;
    4. composite at full resolution (or the megapixel cap), one photo and one band at a time.
    """
    options = options or StitchOptions()
    report = progress or (lambda fraction: None)
    timings: dict[str, float] = {}
    diagnostics = StitchDiagnostics.for_names([p.name for p in photos])
    if len(photos) < 2:
        raise StitchingError("a panorama needs at least 2 overlapping photos; add the photos to the left "
                             "and right of this one", code="too_few_photos", diagnostics=diagnostics.to_dict())

    with _timed(timings, "load"):
        working = _load_working_images(photos, limits, options, diagnostics)
    report(0.1)
    with _timed(timings, "registration"):
        registration = _register(working, options, diagnostics)
    _apply_drops(registration, diagnostics)
    report(0.35)
    scale = _compose_scale(registration, working, options)
    with _FullResolutionLoader(photos, working, registration.cameras.indices, limits, scale) as full_images:
        with _timed(timings, "seams_and_exposure"):  # the first full-resolution photo decodes meanwhile
            plan = _plan_blending(registration, working, options)
        _record_framing(plan, registration.cameras.indices, diagnostics)
        report(0.45)
        with _timed(timings, "compose"):
            panorama = _compose(registration, plan, full_images, working, scale, options, report)
    diagnostics.filled_fraction = round(panorama.filled_fraction, 4)
    panorama.diagnostics = diagnostics
    panorama.timings = timings
    report(1.0)
    return panorama


# -- loading ------------------------------------------------------------------------------------------


def _load_working_images(photos: Sequence[Photo], limits: IngestLimits, options: StitchOptions,
                         diagnostics: StitchDiagnostics) -> list[WorkingImage | None]:
    def load(photo: Photo) -> WorkingImage | None:
        try:
            return load_working_image(photo.path, limits, options.work_megapixels * 1e6)
        except (MediaServiceError, OSError, ValueError, SyntaxError, MemoryError):
            return None

    with ThreadPoolExecutor(max_workers=2) as pool:
        working = list(pool.map(load, photos))
    for index, image in enumerate(working):
        if image is None:
            diagnostics.drop(index, "unreadable")
    _require_two(diagnostics, [i for i, w in enumerate(working) if w is not None])
    return working


# -- registration: features, matching, cameras, projection (with the fallback chain) -----------------


def _register(working: list[WorkingImage | None], options: StitchOptions,
              diagnostics: StitchDiagnostics) -> _Registration:
    readable = [i for i, w in enumerate(working) if w is not None]
    grays = {i: gray(working[i].rgb) for i in readable}  # type: ignore[union-attr]
    for i in readable:
        diagnostics.photos[i].sharpness = sharpness(grays[i])
    detectors = DETECTORS if options.detector == "auto" else (options.detector,)
    models = {"auto": ("rotation", "affine"), "flat": ("rotation", "affine")}.get(options.projection, ("rotation",))
    exif_focals = {i: working[i].working_focal for i in readable  # type: ignore[union-attr]
                   if working[i].working_focal is not None}  # type: ignore[union-attr]
    rejected_focal: dict[str, Any] | None = None

    best: _Registration | None = None
    failure: dict[int, tuple[str, dict[str, Any]]] = {}
    for detector in detectors:
        features = _detect_all(grays, readable, detector, options.max_features)
        pairs = matching.match_all_pairs(features, readable, "homography")
        duplicates = _find_duplicates(features, pairs)
        candidates = [i for i in readable if i not in duplicates]
        for model in models:
            model_pairs = pairs if model == "rotation" else matching.reverify(pairs, features, "affine")
            attempt, dropped, focal = _estimate(detector, features, model_pairs, candidates, model, options,
                                                exif_focals)
            dropped.update(duplicates)
            if model == "rotation" and focal is not None and focal["source"] == "rejected":
                rejected_focal = rejected_focal or focal
            if attempt is None:
                failure = failure or dropped
                continue
            if best is None or len(attempt.cameras.indices) > len(best.cameras.indices):
                best = attempt
            break  # the first model that works is the right one for this detector
        if best is not None and not _matching_could_do_better(best):
            break
    if best is None:
        for index, (reason, values) in sorted(failure.items()):
            diagnostics.drop(index, reason, **values)
        if any(reason == "moved" for reason, _ in failure.values()):
            raise StitchingError(
                "the photos do not fit together as one view: they were taken from different spots or with "
                "different zoom. Stand in one place, keep the zoom, and only turn the phone between shots",
                code="inconsistent_photos", diagnostics=diagnostics.to_dict())
        raise StitchingError(
            "the photos could not be aligned: no two of them share enough detail. Take the photos from one "
            "spot, turning the phone between shots so that each photo overlaps the next by about a third",
            code="no_overlap", diagnostics=diagnostics.to_dict())
    for index, features in enumerate(best.features):
        diagnostics.photos[index].features = len(features) if index in readable else None
    diagnostics.detector = best.detector
    diagnostics.projection = best.projection.kind
    if best.cameras.model == "rotation":
        diagnostics.focal = best.focal
    elif rejected_focal is not None:
        diagnostics.focal = {**rejected_focal, "source": "none", "photo_hfov": None}
        diagnostics.notes.append(
            "The focal length could not be told from these photos (they overlap almost completely, or the "
            "camera moved rather than turned, and they carry no usable EXIF focal length), so they were "
            "stitched flat.")
    return best


def _detect_all(grays: dict[int, np.ndarray], indices: list[int], detector: str, max_features: int
                ) -> list[Features]:
    empty = Features(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), (1, 1), detector,
                     np.zeros(0, np.float32))
    with ThreadPoolExecutor(max_workers=2) as pool:
        found = dict(zip(indices, pool.map(lambda i: detect_features(grays[i], detector, max_features), indices),
                         strict=True))
    return [found.get(i, empty) for i in range(max(indices) + 1)]


def _find_duplicates(features: list[Features], pairs: dict[tuple[int, int], matching.PairMatch]
                     ) -> dict[int, tuple[str, dict[str, Any]]]:
    duplicates: dict[int, tuple[str, dict[str, Any]]] = {}
    for (i, j), pair in sorted(pairs.items()):
        if i not in duplicates and j not in duplicates and matching.is_duplicate(pair, features):
            duplicates[j] = ("duplicate", {"other": i + 1})
    return duplicates


def _estimate(detector: str, features: list[Features], pairs: dict[tuple[int, int], matching.PairMatch],
              candidates: list[int], model: str, options: StitchOptions, exif_focals: dict[int, float]
              ) -> tuple[_Registration | None, dict[int, tuple[str, dict[str, Any]]], dict[str, Any] | None]:
    """Cameras for the biggest consistent group, why the other photos were left out, and (rotation
    model) where the focal length came from.

    Photos that break the camera model are dropped one at a time (the worst first) and the cameras
    estimated again without them.
    """
    threshold = options.confidence_threshold
    dropped: dict[int, tuple[str, dict[str, Any]]] = {}
    group = camera_stage.largest_component(candidates, pairs, threshold)
    registration: _Registration | None = None
    focal: dict[str, Any] | None = None
    while len(group) >= 2:
        if model == "rotation":
            cameras = camera_stage.estimate_rotation(features, pairs, group, threshold)
            if cameras is not None:
                cameras, focal = _settle_focal(cameras, features, pairs, group, exif_focals, options)
        else:
            cameras = camera_stage.estimate_affine(features, pairs, group, threshold)
        if cameras is None:
            break
        misfit = camera_stage.find_misfit(cameras, features, pairs, threshold)
        if misfit is None:
            layout = _choose_projection(cameras, features, options)
            if layout is not None:
                registration = _Registration(detector, features, pairs, cameras, *layout, dropped, focal)
            break
        dropped[misfit] = ("moved", {})
        group = camera_stage.largest_component([i for i in group if i != misfit], pairs, threshold)
    used = registration.cameras.indices if registration else []
    for index in candidates:
        if index not in used and index not in dropped:
            dropped[index] = (_unmatched_reason(features[index]), {})
    return registration, dropped, focal


#: An estimated focal length within this factor of the EXIF one is believed; further off, EXIF wins.
EXIF_AGREEMENT = 1.3


def _settle_focal(cameras: camera_stage.Cameras, features: list[Features],
                  pairs: dict[tuple[int, int], matching.PairMatch], group: list[int], exif_focals: dict[int, float],
                  options: StitchOptions) -> tuple[camera_stage.Cameras | None, dict[str, Any]]:
    """Check the estimated focal length and replace it by EXIF's, or reject the rotation model.

    The estimate is believed when the photos show perspective (see :func:`cameras.focal_is_observable`),
    every photo's field of view is plausible, and it agrees with EXIF where EXIF gives one. Otherwise the
    EXIF focal length is used (fixed, only the rotations refined); without EXIF the rotation model is
    rejected (``None``) so the flat model takes over, unless a curved projection was asked for.
    """
    threshold = options.confidence_threshold
    widths = [features[i].image_size[0] for i in group]
    hfovs = [camera_stage.photo_hfov(f, w) for f, w in zip(cameras.focals, widths, strict=True)]
    observable = camera_stage.focal_is_observable(features, pairs, group, threshold)
    low, high = camera_stage.PLAUSIBLE_HFOV
    plausible = observable and all(low <= h <= high for h in hfovs)
    info: dict[str, Any] = {"source": "estimated", "perspective": observable,
                            "estimated_photo_hfov": round(float(np.median(hfovs)), 1),
                            "photo_hfov": round(float(np.median(hfovs)), 1)}
    known = [exif_focals.get(i) for i in group]
    if all(k is not None for k in known):
        exif_hfov = float(np.median([camera_stage.photo_hfov(k, w) for k, w in zip(known, widths, strict=True)]))
        info["exif_photo_hfov"] = round(exif_hfov, 1)
        agrees = abs(math.log(cameras.median_focal / float(np.median(known)))) <= math.log(EXIF_AGREEMENT)
        if plausible and agrees:
            return cameras, info
        fixed = camera_stage.estimate_rotation(features, pairs, group, threshold,
                                               focals=[float(k) for k in known])  # type: ignore[arg-type]
        if fixed is not None:
            return fixed, {**info, "source": "exif", "photo_hfov": round(exif_hfov, 1)}
    if plausible:
        return cameras, info
    if options.projection in {"spherical", "cylindrical"}:
        return cameras, {**info, "source": "estimated_uncertain"}
    return None, {**info, "source": "rejected"}


def _unmatched_reason(features: Features) -> str:
    return "featureless" if len(features) < FEATURELESS_BELOW else "no_overlap"


def _matching_could_do_better(registration: _Registration) -> bool:
    """Whether another detector might align photos this attempt could not match."""
    return any(reason in {"no_overlap", "featureless"} for reason, _ in registration.dropped.values())


def _choose_projection(cameras: camera_stage.Cameras, features: list[Features], options: StitchOptions
                       ) -> tuple[Projection, list[Rect]] | None:
    """The first projection whose layout is sane: spherical, then cylindrical (plane for affine cameras)."""
    if cameras.model == "affine" or options.projection == "flat":
        kinds: tuple[str, ...] = ("plane",)  # rotation cameras on a plane: a rectilinear mosaic, lines straight
    elif options.projection in {"spherical", "cylindrical"}:
        kinds = (options.projection,)
    elif _turn_degrees(cameras) < NARROW_TURN * float(np.median(
            [camera_stage.photo_hfov(f, features[i].image_size[0]) for f, i in zip(cameras.focals, cameras.indices,
                                                                                     strict=True)])):
        kinds = ("plane", "spherical", "cylindrical")  # hardly wider than one photo: keep its lines straight
    else:
        kinds = ("spherical", "cylindrical")
    scale = cameras.median_focal if cameras.model == "rotation" else 1.0
    photo_area = sum(features[i].image_size[0] * features[i].image_size[1] for i in cameras.indices)
    for kind in kinds:
        projection = Projection(kind, scale)
        rois = [projection.roi(_working_camera(cameras, k, features)) for k in range(len(cameras.indices))]
        canvas = Rect.union(rois)
        sane = canvas.area <= MAX_CANVAS_RATIO * photo_area and all(r.width > 1 and r.height > 1 for r in rois)
        if kind != "plane":
            sane = sane and canvas.height <= math.pi * scale * 1.01 and canvas.width <= 2.2 * math.pi * scale
        if sane:
            return projection, rois
    return None


def _turn_degrees(cameras: camera_stage.Cameras) -> float:
    """The largest angle between two photos' viewing directions (rotation model)."""
    directions = [r[:, 2] / np.linalg.norm(r[:, 2]) for r in cameras.R]
    return max(math.degrees(math.acos(float(np.clip(a @ b, -1.0, 1.0))))
               for k, a in enumerate(directions) for b in directions[k + 1:])


def _working_camera(cameras: camera_stage.Cameras, position: int, features: list[Features]) -> Camera:
    return Camera(cameras.K[position], cameras.R[position], features[cameras.indices[position]].image_size)


def _apply_drops(registration: _Registration, diagnostics: StitchDiagnostics) -> None:
    for index, (reason, values) in sorted(registration.dropped.items()):
        if reason in {"no_overlap", "featureless"} and _is_blurry(diagnostics, index):
            reason = "blurry_no_overlap"
        diagnostics.drop(index, reason, **values)
    for index in registration.cameras.indices:
        if _is_blurry(diagnostics, index):
            diagnostics.warn(index, "blurry")
    _require_two(diagnostics, registration.cameras.indices)


def _is_blurry(diagnostics: StitchDiagnostics, index: int) -> bool:
    scores = [p.sharpness for p in diagnostics.photos if p.sharpness is not None]
    value = diagnostics.photos[index].sharpness
    return value is not None and len(scores) > 1 and value < BLURRY_RATIO * float(np.median(scores))


def _require_two(diagnostics: StitchDiagnostics, usable: list[int]) -> None:
    if len(usable) >= 2:
        return
    details = " ".join(p.message for p in diagnostics.photos if p.message)
    raise StitchingError(
        f"fewer than 2 photos could be used, so there is no panorama. {details} Take the photos from one "
        "spot, turning the phone between shots so that each photo overlaps the next by about a third.",
        code="too_few_usable_photos", diagnostics=diagnostics.to_dict())


# -- seams and exposure at low resolution ---------------------------------------------------------------


@dataclass
class _BlendPlan:
    seam_projection: Projection
    seam_rects: list[Rect]
    weights: list[np.ndarray]
    gains: list[np.ndarray]
    framing: Framing | None  # at seam scale; None: the whole canvas
    seam_scale: float  # seam pixels per working pixel
    correction: np.ndarray | None = None  # multi-band minus feathered blend, low frequencies, seam scale
    correction_rect: Rect | None = None


def _plan_blending(registration: _Registration, working: list[WorkingImage | None],
                   options: StitchOptions) -> _BlendPlan:
    cameras = registration.cameras
    seam_scale = min(1.0, math.sqrt(options.seam_megapixels / options.work_megapixels))
    projection = registration.projection.rescaled(seam_scale)
    rects, images, masks = [], [], []
    for position, index in enumerate(cameras.indices):
        rgb = working[index].rgb  # type: ignore[union-attr]
        size = (max(1, round(rgb.shape[1] * seam_scale)), max(1, round(rgb.shape[0] * seam_scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        camera = _working_camera(cameras, position, registration.features).scaled(seam_scale, size)
        rect, warped, mask = warp(small, projection, camera)
        rects.append(rect)
        images.append(warped)
        masks.append(mask)
    gains = estimate_gains(rects, images, masks)
    balanced = [apply_gains(image, gain) for image, gain in zip(images, gains, strict=True)]
    seams = find_seams(rects, balanced, masks, options.seam_finder)
    median_width = float(np.median([image.shape[1] for image in images]))
    sigma = max(0.7, FEATHER_FRACTION * median_width)
    weights = soft_weights(seams, sigma)
    framing = _frame(rects, masks) if options.crop else None
    plan = _BlendPlan(projection, rects, weights, gains, framing, seam_scale)
    if options.blend == "multiband" and len(images) > 1:
        plan.correction, plan.correction_rect = multiband_correction(rects, balanced, masks, weights, sigma)
    return plan


def _frame(rects: list[Rect], masks: list[np.ndarray]) -> Framing | None:
    """The output rectangle (seam scale) and how much of each photo it keeps (see :func:`frame_output`)."""
    canvas = Rect.union(rects)
    placed = []
    for rect, mask in zip(rects, masks, strict=True):
        full = np.zeros((canvas.height, canvas.width), bool)
        full[rect.y - canvas.y:rect.bottom - canvas.y, rect.x - canvas.x:rect.right - canvas.x] = mask > 0
        placed.append(full)
    union = np.logical_or.reduce(placed)
    union = cv2.erode(union.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # the coarse border is uncertain
    framing = frame_output(union, placed)
    if framing is None:
        return None
    rect = framing.rect
    return Framing(Rect(rect.x + canvas.x, rect.y + canvas.y, rect.width, rect.height), framing.kept, framing.filled)


def _record_framing(plan: _BlendPlan, used: list[int], diagnostics: StitchDiagnostics) -> None:
    """Each used photo's kept fraction, with a warning for photos the output cuts much of away."""
    for position, index in enumerate(used):
        kept = 1.0 if plan.framing is None else plan.framing.kept[position]
        diagnostics.keep(index, kept)


# -- compositing at full resolution -----------------------------------------------------------------------


class _FullResolutionLoader:
    """Decodes the used photos at compose resolution in a background thread, one photo ahead.

    The first photo starts decoding as soon as registration is done, so it overlaps with seam finding;
    at most two full-resolution photos are in memory at any time.
    """

    def __init__(self, photos: Sequence[Photo], working: list[WorkingImage | None], used: list[int],
                 limits: IngestLimits, compose_scale: float) -> None:
        self.photos, self.working, self.used, self.limits = photos, working, used, limits
        self.max_area = None if compose_scale >= 0.999 else compose_scale ** 2
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.upcoming = self.pool.submit(self._load, 0)

    def _load(self, position: int) -> np.ndarray:
        index = self.used[position]
        full_size = self.working[index].full_size  # type: ignore[union-attr]
        limit = None if self.max_area is None else self.max_area * full_size[0] * full_size[1]
        return load_full_image(self.photos[index].path, self.limits, limit)

    def take(self, position: int) -> np.ndarray:
        """The photo at ``position`` of ``used``; starts decoding the next one."""
        image = self.upcoming.result()
        if position + 1 < len(self.used):
            self.upcoming = self.pool.submit(self._load, position + 1)
        return image

    def __enter__(self) -> _FullResolutionLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.upcoming.cancel()
        self.pool.shutdown(wait=True)


def _compose_scale(registration: _Registration, working: list[WorkingImage | None], options: StitchOptions) -> float:
    """Full resolution, or less when the (uncropped) canvas would exceed ``max_output_megapixels``."""
    work_scales = [working[i].scale for i in registration.cameras.indices]  # type: ignore[union-attr]
    to_full = 1.0 / float(np.median(work_scales))
    canvas_area = Rect.union(registration.rois).area * to_full ** 2
    return min(1.0, math.sqrt(options.max_output_megapixels * 1e6 / max(1.0, canvas_area)))


def _compose(registration: _Registration, plan: _BlendPlan, full_images: _FullResolutionLoader,
             working: list[WorkingImage | None], compose_scale: float, options: StitchOptions,
             report: Progress) -> Panorama:
    cameras = registration.cameras
    used = cameras.indices
    work_scales = [working[i].scale for i in used]  # type: ignore[union-attr]
    projection = registration.projection.rescaled(compose_scale / float(np.median(work_scales)))
    to_compose = projection.scale / registration.projection.scale
    canvas = Rect.union(registration.rois).scaled(to_compose)
    low_to_compose = projection.scale / plan.seam_projection.scale
    if plan.framing is not None:
        crop = plan.framing.rect.scaled(low_to_compose)
        # A fully covered rectangle loses a margin (its coarse border is uncertain); one that is filled keeps it.
        margin = 0 if plan.framing.filled > 0 else math.ceil(low_to_compose) + 1
        target = Rect(crop.x + margin, crop.y + margin, crop.width - 2 * margin, crop.height - 2 * margin)
        if projection.kind != "plane":
            target = Rect(target.x, target.y, min(target.width, math.floor(2 * math.pi * projection.scale)),
                          target.height)
        target = target.intersect(canvas) or target
    else:
        target = canvas
    if target.width < 8 or target.height < 8:
        raise StitchingError("the photos overlap in too thin a strip to make a panorama; retake them with the "
                             "phone held level, turning it sideways between shots", code="no_usable_area")

    compositor = Compositor(target, projection)
    for position in range(len(used)):
        image = apply_gains(full_images.take(position), plan.gains[position])
        size = (image.shape[1], image.shape[0])
        work_camera = _working_camera(cameras, position, registration.features)
        camera = work_camera.scaled(size[0] / work_camera.size[0], size)
        compositor.add(image, camera, projection.roi(camera), plan.weights[position], plan.seam_rects[position],
                       low_to_compose)
        del image
        report(0.45 + 0.5 * (position + 1) / len(used))
    if plan.correction is not None and plan.correction_rect is not None:
        compositor.add_correction(plan.correction, plan.correction_rect, low_to_compose)

    output = compositor.canvas
    crop = Rect(target.x - canvas.x, target.y - canvas.y, target.width, target.height)
    filled = 0.0
    if plan.framing is not None and plan.framing.filled > 0:
        filled = fill_uncovered(output, compositor.coverage())
    elif options.crop:
        trimmed = trim_uncovered(compositor.coverage())
        output = output[trimmed.y:trimmed.bottom, trimmed.x:trimmed.right]
        crop = Rect(crop.x + trimmed.x, crop.y + trimmed.y, trimmed.width, trimmed.height)
    return Panorama(
        image=np.ascontiguousarray(output), projection=projection.kind,
        pixels_per_radian=None if projection.kind == "plane" else projection.scale,
        canvas_size=(canvas.width, canvas.height), crop=crop, canvas_origin=(canvas.x, canvas.y),
        diagnostics=StitchDiagnostics([]), filled_fraction=filled)


class _timed:
    """Context manager adding the elapsed seconds of a block to ``timings[name]``."""

    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = self.timings.get(self.name, 0.0) + time.perf_counter() - self.started
