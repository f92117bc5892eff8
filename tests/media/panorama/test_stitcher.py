"""The stitcher on the real photo sets, against OpenCV's own stitcher run in the same test.

"Comparable" means: the same scene (after registering one result onto the other, normalised
cross-correlation >= 0.7, SSIM >= 0.9 where the camera only turned), and a size between OpenCV's
result cropped to its largest covered rectangle and its whole canvas (OpenCV leaves black borders; we
keep nearly all of every photo and fill the few uncovered corners).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from media_service.media.panorama import features as feature_stage
from media_service.media.panorama import stitcher as stitcher_module
from media_service.media.panorama.cropping import covered_rectangle
from media_service.media.panorama.errors import StitchingError
from media_service.media.panorama.stitcher import Photo, StitchOptions, stitch
from tests.conftest import media
from tests.support.panorama.helpers import INGEST, opencv_reference, photo_paths, photos, save_artifact, side_by_side
from tests.support.panorama.similarity import compare_panoramas


def crop_black_borders(bgr: np.ndarray) -> np.ndarray:
    covered = cv2.morphologyEx((bgr.max(axis=2) > 8).astype(np.uint8) * 255, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    rect = covered_rectangle(covered)
    assert rect is not None
    return bgr[rect.y:rect.bottom, rect.x:rect.right]


@pytest.mark.parametrize("name", ["hill", "pier", "berlin"])
def test_every_set_stitches_like_opencv(name: str) -> None:
    ours = stitch(photos(name), INGEST)
    reference = opencv_reference(photo_paths(name))
    ours_bgr = cv2.cvtColor(ours.image, cv2.COLOR_RGB2BGR)
    save_artifact(f"compare_{name}", side_by_side(ours_bgr, reference))
    save_artifact(f"ours_{name}", ours_bgr)

    reference_cropped = crop_black_borders(reference)
    # berlin's two usable photos overlap by ~90 %: a flat (rectilinear) result, taller than a spherical one
    flat = ours.projection == "plane"
    assert flat == (name == "berlin")
    for ours_side, inner, whole in zip(ours.size, reference_cropped.shape[1::-1], reference.shape[1::-1], strict=True):
        assert 0.9 * inner <= ours_side <= (1.2 if flat else 1.05) * whole, (ours.size, reference_cropped.shape,
                                                                            reference.shape)
    comparison = compare_panoramas(reference, ours_bgr)
    assert comparison.ncc >= 0.7, comparison
    assert comparison.overlap >= 0.6, comparison
    if name != "berlin":  # berlin has parallax and walking people: only correlation is meaningful there
        assert comparison.ssim >= 0.9, comparison

    assert (ours.image.max(axis=2)[[0, -1], :] > 0).mean() > 0.99  # no black border rows left
    fov = ours.field_of_view()
    if flat:
        assert 30 < ours.diagnostics.focal["photo_hfov"] < 70  # the photos' own field of view is still known
    else:
        assert 20 < fov["horizontal"] < 120 and 5 < fov["vertical"] < fov["horizontal"] + 30
    diagnostics = ours.diagnostics.to_dict()
    assert diagnostics["used"] >= 2
    if name in {"hill", "pier"}:
        assert diagnostics["used"] == 3 and diagnostics["summary"] == "All 3 photos were used."


def test_the_same_photos_give_the_same_panorama() -> None:
    first, second = stitch(photos("pier"), INGEST), stitch(photos("pier"), INGEST)
    assert np.array_equal(first.image, second.image)


def test_the_measure_tells_different_scenes_apart() -> None:
    hill = cv2.cvtColor(stitch(photos("hill"), INGEST).image, cv2.COLOR_RGB2BGR)
    assert compare_panoramas(opencv_reference(photo_paths("pier")), hill).ncc < 0.3


def test_berlin_drops_the_photo_taken_closer_and_says_what_to_reshoot() -> None:
    result = stitch(photos("berlin"), INGEST)
    dropped = [p for p in result.diagnostics.photos if not p.used]
    assert [p.name for p in dropped] == ["03.jpg"]
    assert dropped[0].reason == "moved"
    assert "stand in one place" in dropped[0].message and "03.jpg" in dropped[0].message


def test_shuffled_order_gives_the_same_panorama() -> None:
    ordered = stitch(photos("hill"), INGEST)
    shuffled = stitch([photos("hill")[i] for i in (2, 0, 1)], INGEST)
    assert abs(shuffled.size[0] - ordered.size[0]) <= 0.03 * ordered.size[0]
    assert abs(shuffled.size[1] - ordered.size[1]) <= 0.03 * ordered.size[1]
    comparison = compare_panoramas(cv2.cvtColor(ordered.image, cv2.COLOR_RGB2BGR),
                                   cv2.cvtColor(shuffled.image, cv2.COLOR_RGB2BGR))
    assert comparison.ssim > 0.9


def test_a_single_photo_is_refused_with_advice() -> None:
    with pytest.raises(StitchingError) as caught:
        stitch(photos("hill")[:1], INGEST)
    assert caught.value.code == "too_few_photos" and "at least 2" in caught.value.detail


def test_unrelated_photos_fail_with_a_diagnostic_per_photo() -> None:
    unrelated = [Photo(media("panorama/hill/1.JPG"), "mountain.jpg"), Photo(media("panorama/pier/1.JPG"), "lake.jpg"),
                 Photo(media("panorama/berlin/01.jpg"), "church.jpg")]
    with pytest.raises(StitchingError) as caught:
        stitch(unrelated, INGEST)
    error = caught.value
    assert error.code == "no_overlap" and "overlaps the next" in error.detail
    problem = error.to_problem()
    assert problem["status"] == 422 and "traceback" not in problem
    messages = [p["message"] for p in problem["diagnostics"]["photos"]]
    assert all(messages) and "mountain.jpg" in messages[0] and "lake.jpg" in messages[1]


def test_an_unrelated_photo_in_a_set_is_left_out_by_name() -> None:
    result = stitch([*photos("hill"), Photo(media("panorama/pier/2.JPG"), "lake.jpg")], INGEST)
    lake = result.diagnostics.photos[3]
    assert not lake.used and lake.reason == "no_overlap" and "lake.jpg" in lake.message
    assert result.diagnostics.used == [0, 1, 2]
    assert "3 of 4 photos were used" in result.diagnostics.summary()


def test_a_duplicate_photo_is_left_out(tmp_path: Path) -> None:
    copy = tmp_path / "2-again.jpg"
    shutil.copyfile(media("panorama/hill/2.JPG"), copy)
    hill = photos("hill")
    result = stitch([hill[0], hill[1], Photo(copy, copy.name), hill[2]], INGEST)
    duplicate = result.diagnostics.photos[2]
    assert not duplicate.used and duplicate.reason == "duplicate" and "photo 2" in duplicate.message


def test_a_blurry_photo_is_named(tmp_path: Path) -> None:
    blurry = tmp_path / "shaky.jpg"
    image = cv2.imread(str(media("panorama/hill/2.JPG")))
    cv2.imwrite(str(blurry), cv2.GaussianBlur(image, (0, 0), 4))
    hill = photos("hill")
    try:
        result = stitch([hill[0], Photo(blurry, blurry.name), hill[2]], INGEST)
        summary = result.diagnostics.summary()
    except StitchingError as error:  # blurred so much it cannot be aligned: still named, with advice
        summary = " ".join(p["message"] or "" for p in error.diagnostics["photos"])
    assert "shaky.jpg" in summary and "blurry" in summary


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    """Photos stored sideways with an EXIF orientation give the same panorama as upright ones."""
    rotated = []
    for path in photo_paths("pier"):
        with Image.open(path) as image:
            sideways = image.transpose(Image.Transpose.ROTATE_90)  # stored turned; orientation 6 turns it back
            exif = Image.Exif()
            exif[0x0112] = 6
            target = tmp_path / path.name
            sideways.save(target, "JPEG", quality=95, exif=exif.tobytes())
            rotated.append(Photo(target, path.name))
    upright = stitch(photos("pier"), INGEST)
    from_rotated = stitch(rotated, INGEST)
    assert abs(from_rotated.size[0] - upright.size[0]) <= 0.03 * upright.size[0]
    assert from_rotated.size[0] > from_rotated.size[1]  # a wide panorama, not a tall one
    assert compare_panoramas(cv2.cvtColor(upright.image, cv2.COLOR_RGB2BGR),
                             cv2.cvtColor(from_rotated.image, cv2.COLOR_RGB2BGR)).ssim > 0.85


@pytest.mark.parametrize(("projection", "expected"), [("cylindrical", "cylindrical"), ("flat", "plane")])
def test_projection_options(projection: str, expected: str) -> None:
    result = stitch(photos("pier"), INGEST, StitchOptions(projection=projection))
    assert result.projection == expected and result.diagnostics.projection == expected
    comparison = compare_panoramas(opencv_reference(photo_paths("pier")), cv2.cvtColor(result.image, cv2.COLOR_RGB2BGR))
    assert comparison.ncc > 0.9
    if expected == "plane":
        assert result.field_of_view()["horizontal"] is None


def test_uncropped_canvas_matches_opencv_size() -> None:
    result = stitch(photos("hill"), INGEST, StitchOptions(crop=False))
    reference = opencv_reference(photo_paths("hill"))
    assert abs(result.size[0] - reference.shape[1]) <= 0.05 * reference.shape[1]
    assert abs(result.size[1] - reference.shape[0]) <= 0.05 * reference.shape[0]


def test_output_is_capped_by_megapixels() -> None:
    result = stitch(photos("berlin"), INGEST, StitchOptions(max_output_megapixels=1.0))
    assert result.size[0] * result.size[1] <= 1.05e6
    assert result.size[0] > 600


def test_detector_fallback_when_sift_finds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for a SIFT failure: the chain goes on to ORB and says so."""
    real = feature_stage.detect_features

    def no_sift(gray: np.ndarray, detector: str, max_features: int) -> feature_stage.Features:
        found = real(gray, detector, max_features)
        return found if detector != "sift" else real(np.zeros_like(gray), detector, max_features)

    monkeypatch.setattr(stitcher_module, "detect_features", no_sift)
    result = stitch(photos("pier"), INGEST)
    assert result.diagnostics.detector == "orb" and result.diagnostics.used == [0, 1, 2]


def test_projection_fallback_when_the_spherical_layout_is_not_sane(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for a spherical failure: the chain goes on to the cylindrical projection."""
    real_roi = stitcher_module.Projection.roi

    def huge_spherical(self: stitcher_module.Projection, camera: stitcher_module.Camera, samples: int = 33
                       ) -> stitcher_module.Rect:
        rect = real_roi(self, camera, samples)
        if self.kind == "spherical":
            return stitcher_module.Rect(rect.x, rect.y, rect.width * 100, rect.height)
        return rect

    monkeypatch.setattr(stitcher_module.Projection, "roi", huge_spherical)
    result = stitch(photos("hill"), INGEST)
    assert result.projection == "cylindrical"


def test_unreadable_photo_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(media("panorama/hill/2.JPG").read_bytes()[:2000])
    result = stitch([*photos("hill"), Photo(broken, broken.name)], INGEST)
    assert result.diagnostics.photos[3].reason == "unreadable" and result.diagnostics.used == [0, 1, 2]
