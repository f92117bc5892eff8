"""The catalog detector on semi-real video: real catalog photos pasted into real clips with known boxes.

The bar of the issue: precision and recall >= 0.9 at IoU 0.5 and top-1 SKU >= 0.95, measured on every
frame the indexer would look at (4 per second, decoded from the x264-encoded clips by our own reader).
The measured figures are written to test-artifacts/products/catalog_evaluation.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from media_service.media.detection.base import DetectionError
from media_service.media.detection.catalog import (
    CatalogDetector,
    CatalogDetectorConfig,
    CatalogMatcher,
    CatalogProduct,
    ProductPhotoFeatures,
    estimate_alpha,
    index_product_photo,
    refine_alignment,
)
from media_service.media.detection.frames import VideoGeometry, stream_frames
from media_service.media_options import ingest_limits
from tests.support.products.evaluation import Score, draw_boxes
from tests.support.products.semireal import load_photo, render_random_clips, truths_at
from tests.support.products.shop import CLIP_FPS, Clip, artifact

#: Random clips of this seed were never looked at while tuning the detector (2026 and 2027 were used;
#: 3031 and 4049 are the benchmark's held-out seeds).
FRESH_SEED = 5051


@pytest.mark.slow
def test_precision_recall_and_top1_on_semi_real_clips(catalog: list[CatalogProduct], evaluation_clips: dict[str, Clip],
                                                      settings: dict[str, Any]) -> None:
    detector = CatalogDetector(catalog, CatalogDetectorConfig(max_side=settings["PRODUCT_DETECT_SIDE"],
                                                              min_score=settings["PRODUCT_MIN_SCORE"]))
    total = Score()
    per_clip = {}
    for name, clip in evaluation_clips.items():
        score = Score()
        geometry = VideoGeometry.probe(clip.path, "mp4", ingest_limits(settings))
        for frame in stream_frames(clip.path, demuxer="mp4", geometry=geometry, fps=settings["INDEX_FPS"],
                                   max_side=settings["INDEX_FRAME_SIDE"], limits=ingest_limits(settings)):
            detections = detector.detect(frame.image)
            truths = truths_at(clip.truths, frame.t, clip.fps)
            for tally in (score, total):
                tally.add(detections, truths, where=f"{name}@{frame.t:.2f}")
            if frame.index == 6:
                cv2.imwrite(str(artifact(f"catalog_{name}.png")), draw_boxes(frame.image, detections, truths))
        per_clip[name] = score.summary()
    report = {"overall": total.summary(), "precision": total.precision, "recall": total.recall, "top1": total.top1,
              "per_clip": per_clip, "misses": total.misses, "false_alarms": total.false_alarms,
              "wrong_skus": total.wrong_skus}
    artifact("catalog_evaluation.json").write_text(json.dumps(report, indent=2))
    assert total.truths >= 100  # 4 clips x 12 frames, 2-3 products each
    assert total.precision >= 0.9, report
    assert total.recall >= 0.9, report
    assert total.top1 >= 0.95, report


@pytest.mark.slow
def test_the_bar_holds_on_fresh_random_clips(catalog: list[CatalogProduct], settings: dict[str, Any],
                                             tmp_path: Path) -> None:
    """The same bar on 12 clips drawn at random (products, places, perspective, light, blur, backgrounds)
    from a seed nobody tuned against: thresholds chosen on the fixed clips above must generalise."""
    detector = CatalogDetector(catalog, CatalogDetectorConfig(max_side=settings["PRODUCT_DETECT_SIDE"],
                                                              min_score=settings["PRODUCT_MIN_SCORE"]))
    score = Score()
    clips = render_random_clips(np.random.default_rng(FRESH_SEED), 12, tmp_path, fps=CLIP_FPS)
    for number, (path, truths) in enumerate(clips):
        geometry = VideoGeometry.probe(path, "mp4", ingest_limits(settings))
        for frame in stream_frames(path, demuxer="mp4", geometry=geometry, fps=settings["INDEX_FPS"],
                                   max_side=settings["INDEX_FRAME_SIDE"], limits=ingest_limits(settings)):
            score.add(detector.detect(frame.image), truths_at(truths, frame.t, CLIP_FPS),
                      where=f"{number}@{frame.t:.2f}")
    report = {"seed": FRESH_SEED, "overall": score.summary(), "misses": score.misses,
              "false_alarms": score.false_alarms, "wrong_skus": score.wrong_skus}
    artifact("catalog_fresh_clips.json").write_text(json.dumps(report, indent=2))
    assert score.truths >= 150  # 12 clips x 8 frames, 2-3 products each
    assert score.precision >= 0.9, report
    assert score.recall >= 0.9, report
    assert score.top1 >= 0.95, report


def test_photo_features_round_trip_and_describe_the_product() -> None:
    features = index_product_photo(load_photo("solidus_canvas_tote.png"), max_side=256)
    assert max(features.size) == 256 and features.descriptors.shape == (len(features.keypoints), 128)
    assert features.descriptors.dtype == np.uint8 and len(features.keypoints) > 100
    assert features.alpha.shape[::-1] == features.size and features.outline.shape[1] == 2
    again = ProductPhotoFeatures.from_bytes(features.to_bytes())
    assert np.array_equal(again.descriptors, features.descriptors) and again.kind == "sift"
    orb = index_product_photo(load_photo("solidus_canvas_tote.png"), kind="orb", max_side=256)
    assert orb.descriptors.shape[1] == 32


def test_dense_alignment_pulls_a_rough_placement_onto_the_product() -> None:
    """ECC refinement really runs (it once failed on every call, silently) and fixes a placement that is a
    few pixels off, as one from a handful of matches is."""
    features = index_product_photo(load_photo("solidus_canvas_tote.png"), max_side=256)
    photo = CatalogMatcher([CatalogProduct("TOTE-RED", [features])]).photos[0]
    truth = np.array([[0.42, 0.03, 150.0], [-0.02, 0.44, 40.0], [1e-5, -2e-5, 1.0]])  # photo -> frame pixels
    frame = cv2.GaussianBlur(np.random.default_rng(7).integers(0, 255, (270, 480, 3), np.uint8), (0, 0), 2)
    small_to_frame = truth @ np.diag([1 / photo.small_scale, 1 / photo.small_scale, 1.0])
    pasted = cv2.warpPerspective(features.colour, small_to_frame, (480, 270))
    inside = cv2.warpPerspective(photo.small_inside * 255, small_to_frame, (480, 270)) > 127
    frame[inside] = pasted[inside]
    rough = np.array([[1.02, 0.0, 2.0], [0.0, 1.02, -2.0], [0.0, 0.0, 1.0]]) @ truth  # 6.6 px off at a corner

    def corner_error(homography: np.ndarray) -> float:
        w, h = features.size
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64).reshape(-1, 1, 2)
        moved = cv2.perspectiveTransform(corners, homography) - cv2.perspectiveTransform(corners, truth)
        return float(np.abs(moved).max())

    refined = refine_alignment(photo, rough, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32))
    assert refined is not None
    assert corner_error(rough) > 5 and corner_error(refined) < 1, (corner_error(rough), corner_error(refined))


def test_photos_without_transparency_are_cut_from_a_plain_background() -> None:
    photo = load_photo("solidus_sticker.png")
    on_white = np.full((photo.shape[0] + 80, photo.shape[1] + 80, 3), 255, np.uint8)
    alpha = photo[:, :, 3:4].astype(np.float32) / 255
    on_white[40:-40, 40:-40] = (photo[:, :, :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    mask = estimate_alpha(on_white) > 0
    truth = np.zeros(mask.shape, bool)
    truth[40:-40, 40:-40] = photo[:, :, 3] > 127
    assert (mask & truth).sum() / (mask | truth).sum() > 0.9
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    assert estimate_alpha(noise).all()  # no plain border: the whole photo is the product


def test_refusals_say_what_to_do() -> None:
    with pytest.raises(DetectionError, match="fully transparent"):
        index_product_photo(np.zeros((32, 32, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8 BGR or BGRA"):
        index_product_photo(np.zeros((32, 32), np.uint8))
    orb = CatalogProduct("X", [index_product_photo(load_photo("solidus_sticker.png"), kind="orb", max_side=128)])
    with pytest.raises(DetectionError, match="re-index"):
        CatalogDetector([orb])  # SIFT detector, ORB photos
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        CatalogDetector([]).detect(np.zeros((10, 10), np.uint8))
    assert len(CatalogDetector([]).detect(np.zeros((10, 10, 3), np.uint8))) == 0


def test_an_empty_frame_and_a_foreign_scene_give_no_detections(catalog: list[CatalogProduct]) -> None:
    detector = CatalogDetector(catalog)
    assert len(detector.detect(np.full((360, 640, 3), 128, np.uint8))) == 0
    from tests.conftest import media
    from tests.support.products.semireal import _decode

    for frame in _decode(media("video/bigbuckbunny.mp4"), (640, 360), 2.0, 4, 0.0):
        assert len(detector.detect(frame)) == 0
    # A black-and-white film: every grey region has the colour of a black cap or a white bottle.
    for number, frame in enumerate(_decode(media("video/friday.mp4"), (640, 360), 2.0, 12, 0.0)):
        detections = detector.detect(frame)
        assert len(detections) == 0, (number, detections.skus, detections.confidence)


def test_two_instances_of_one_product_are_both_found(catalog: list[CatalogProduct]) -> None:
    from tests.conftest import media
    from tests.support.products.semireal import Placement, _decode, destination_quad, paste

    frame = _decode(media("video/flower.mp4"), (640, 360), 1.0, 1, 1.0)[0]
    photo = load_photo("solidus_notebook.png")
    for cx in (160, 470):
        quad = destination_quad((cx, 180), (220 * photo.shape[1] / photo.shape[0], 220), 0.05, 0)
        paste(frame, photo, quad, Placement("NOTEBOOK-RED", "solidus_notebook.png", (0, 0), (0, 0), (0, 0)))
    detections = CatalogDetector(catalog).detect(frame)
    assert detections.skus == ["NOTEBOOK-RED", "NOTEBOOK-RED"], detections.skus
    assert sorted(int((b[0] + b[2]) / 2) // 100 for b in detections.xyxy) == [1, 4]
