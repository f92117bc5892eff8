"""Panoramas on sets built from the real photos the way hand-held shooting varies them: photos that do
not line up (shifted, tilted), with a strong exposure change, and near-duplicate pairs.

Every case is measured against OpenCV's ``cv2.Stitcher`` run in the same test, and the stitched
results are written side by side into ``test-artifacts/panorama/`` (``contact_sheet.png``).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from media_service.media.panorama.stitcher import Panorama, Photo, StitchOptions, stitch
from tests.conftest import media
from tests.support.panorama.coverage import kept_fraction
from tests.support.panorama.helpers import INGEST, opencv_reference, save_artifact

SHEET: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}


def change_exposure(bgr: np.ndarray, stops: float) -> np.ndarray:
    """The photo as if exposed ``stops`` EV brighter or darker: scaled in linear light, clipped, re-encoded."""
    linear = (bgr.astype(np.float32) / 255.0) ** 2.2
    return np.clip(255.0 * np.minimum(linear * 2.0 ** stops, 1.0) ** (1 / 2.2) + 0.5, 0, 255).astype(np.uint8)


def handheld_set(tmp_path: Path, name: str, rows: tuple[int, ...], stops: tuple[float, ...],
                 roll: tuple[float, ...] = (0.0, 0.0, 0.0), gamma: tuple[float, ...] = (1.0, 1.0, 1.0)
                 ) -> list[Path]:
    """The set's photos as 640x480 shots of a photographer who did not hold the phone at one height:
    each is cut at its own height (``rows``) out of the photo enlarged to 800x600, tilted by ``roll``
    degrees, exposed ``stops`` EV differently and given another tone curve (``gamma``)."""
    paths = []
    for k, (row, ev, angle, curve) in enumerate(zip(rows, stops, roll, gamma, strict=True)):
        image = cv2.imread(str(media(f"panorama/{name}/{k + 1}.JPG")))
        image = cv2.resize(image, (800, 600), interpolation=cv2.INTER_CUBIC)
        if angle:
            image = cv2.warpAffine(image, cv2.getRotationMatrix2D((400, 300), angle, 1.0), (800, 600),
                                   flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        shot = change_exposure(image[row:row + 480, 80:720], ev)
        if curve != 1.0:
            shot = np.clip(255.0 * (shot / 255.0) ** curve + 0.5, 0, 255).astype(np.uint8)
        path = tmp_path / f"{name}-{k + 1}.jpg"
        cv2.imwrite(str(path), shot, [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(path)
    return paths


def bgr(panorama: Panorama) -> np.ndarray:
    return cv2.cvtColor(panorama.image, cv2.COLOR_RGB2BGR)


def write_contact_sheet() -> None:
    """Every case's result (left) next to OpenCV's (right), one row per case."""
    rows = []
    for name, (ours, reference) in sorted(SHEET.items()):
        height = 260
        cells = [cv2.resize(image, (round(image.shape[1] * height / image.shape[0]), height),
                            interpolation=cv2.INTER_AREA) for image in (ours, reference) if image is not None]
        row = np.hstack([cells[0], np.full((height, 12, 3), 255, np.uint8), *cells[1:]])
        label = np.full((28, row.shape[1], 3), 255, np.uint8)
        cv2.putText(label, f"{name}: ours | cv2.Stitcher", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
        rows.append(np.vstack([label, row]))
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([np.hstack([r, np.full((r.shape[0], width - r.shape[1], 3), 255, np.uint8)]) for r in rows])
    save_artifact("contact_sheet", sheet, width=2400)


@pytest.fixture(scope="module", autouse=True)
def contact_sheet():
    yield
    if SHEET:
        write_contact_sheet()


@pytest.mark.slow
@pytest.mark.parametrize(("name", "rows", "stops", "roll"), [
    ("pier", (0, 110, 40), (-1.5, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ("hill", (60, 0, 100), (0.0, 1.2, -0.8), (2.5, 0.0, -2.0)),
])
def test_staggered_photos_with_an_exposure_change_keep_nearly_all_of_every_photo(
        tmp_path: Path, name: str, rows: tuple[int, ...], stops: tuple[float, ...], roll: tuple[float, ...]) -> None:
    paths = handheld_set(tmp_path, name, rows, stops, roll)
    photos = [cv2.imread(str(p)) for p in paths]
    ours = stitch([Photo(p, p.name) for p in paths], INGEST)
    reference = opencv_reference(paths)
    SHEET[f"kept_{name}"] = (bgr(ours), reference)

    measured = [kept_fraction(photo, bgr(ours)) for photo in photos]
    opencv = [kept_fraction(photo, reference) for photo in photos]
    reported = [p.kept_fraction for p in ours.diagnostics.photos]
    print(f"{name}: kept ours {np.round(measured, 3)} (reported {np.round(reported, 3)}), "
          f"cv2.Stitcher {np.round(opencv, 3)}, size {ours.size}, filled {ours.filled_fraction:.3f}")
    assert min(measured) >= 0.9, (measured, opencv)
    assert min(measured) >= min(opencv) - 0.05  # at least about what OpenCV's stitcher keeps
    for got, said in zip(measured, reported, strict=True):
        assert said is not None and abs(got - said) <= 0.08  # the diagnostics say what the image shows
    assert ours.filled_fraction <= 0.25
    assert (ours.image.max(axis=2) > 8).mean() > 0.995  # nothing left black: uncovered corners are filled
    assert ours.diagnostics.summary().startswith("All 3 photos were used.")


def test_the_summary_never_says_all_used_when_a_photo_is_mostly_cut_away() -> None:
    from media_service.media.panorama.diagnostics import StitchDiagnostics

    diagnostics = StitchDiagnostics.for_names(["a.jpg", "b.jpg", "c.jpg"])
    for index, kept in enumerate((0.34, 0.95, 0.97)):
        diagnostics.keep(index, kept)
    summary = diagnostics.summary()
    assert "All 3" not in summary and "photo 1 (a.jpg)" in summary and "34 %" in summary
    assert diagnostics.to_dict()["photos"][0]["kept_fraction"] == 0.34


def column_profile(image: np.ndarray, width: int = 400) -> np.ndarray:
    """Median log2 luminance of every column, at ``width`` columns (lightly smoothed)."""
    height = round(image.shape[0] * width / image.shape[1])
    grey = cv2.cvtColor(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return np.median(np.log2(cv2.GaussianBlur(grey.astype(np.float32), (0, 0), 1.5) + 8), axis=0)


def seam_steps(feathered: np.ndarray, blended: np.ndarray, gap: int = 4) -> tuple[float, float]:
    """The brightness step (stops across ``gap`` columns at 400 px) at the seams of two blends of the same
    stitch (same geometry, same seams). The seams are where the two differ most: only there do blends differ."""
    a, b = column_profile(feathered), column_profile(blended)
    difference = np.abs(cv2.GaussianBlur((a - b).reshape(1, -1), (0, 0), 3).ravel())
    worst_a = worst_b = 0.0
    remaining = difference.copy()
    for _ in range(2):  # the two seams of a three-photo set
        seam = int(np.argmax(remaining))
        window = slice(max(0, seam - 12), min(len(a) - gap, seam + 12))
        worst_a = max(worst_a, float(np.abs(a[gap:] - a[:-gap])[window].max()))
        worst_b = max(worst_b, float(np.abs(b[gap:] - b[:-gap])[window].max()))
        remaining[max(0, seam - 30):seam + 30] = 0
    return worst_a, worst_b


@pytest.mark.slow
def test_multiband_blending_softens_the_exposure_step_at_seams(tmp_path: Path) -> None:
    # A tone change the per-photo gains cannot undo: the middle photo's shadows lifted by another tone curve.
    paths = handheld_set(tmp_path, "pier", (60, 60, 60), (0.0, 0.0, 0.0), gamma=(1.0, 0.6, 1.0))
    results = {blend: bgr(stitch([Photo(p, p.name) for p in paths], INGEST, StitchOptions(blend=blend)))
               for blend in ("feather", "multiband")}
    assert results["feather"].shape == results["multiband"].shape  # one geometry, two blends
    SHEET["seam_feather"] = (results["feather"], None)
    SHEET["seam_multiband"] = (results["multiband"], opencv_reference(paths))
    feathered, blended = seam_steps(results["feather"], results["multiband"])
    print(f"seam step (stops over 1 % of the width): feather {feathered:.3f}, multiband {blended:.3f}")
    assert math.isfinite(blended) and blended < 0.7 * feathered


# -- near-duplicate pairs: two hand-held views of the Berlin cathedral with about 88 % overlap ----------

BERLIN_WIDTH, BERLIN_HEIGHT = 1400, 1050
VIEW = (1024, 682)


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = map(math.radians, (yaw, pitch, roll))
    turn = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    tilt = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    spin = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return turn @ tilt @ spin


def berlin_pair(tmp_path: Path, yaw: float, shift: int, exif: bool) -> tuple[list[Path], np.ndarray, float]:
    """Two 1024x682 views of berlin/01.jpg: the camera turned by ``yaw`` (plus 1 degree of pitch and roll)
    and moved so the view slid ``shift`` pixels sideways. Returns the files, the true homography from the
    second view to the first, and the views' true horizontal field of view. With ``exif`` the files say
    their (35 mm-equivalent) focal length, as a phone's would."""
    from PIL import Image

    source = cv2.resize(cv2.imread(str(media("panorama/berlin/01.jpg"))), (BERLIN_WIDTH, BERLIN_HEIGHT),
                        interpolation=cv2.INTER_AREA)
    focal = 3300.0 * BERLIN_WIDTH / 3264  # the photo's EXIF: 35 mm equivalent, 3264 px wide
    camera = np.array([[focal, 0, BERLIN_WIDTH / 2], [0, focal, BERLIN_HEIGHT / 2], [0, 0, 1.0]])
    paths, offsets, turns = [], [], []
    for k, (rotation, dx, dy) in enumerate(((np.eye(3), -(shift // 2), 0),
                                            (_rotation(yaw, 1.0, 1.0), shift - shift // 2, 10))):
        homography = camera @ rotation @ np.linalg.inv(camera)
        view = cv2.warpPerspective(source, homography, (BERLIN_WIDTH, BERLIN_HEIGHT), flags=cv2.INTER_CUBIC)
        x0, y0 = (BERLIN_WIDTH - VIEW[0]) // 2 + dx, (BERLIN_HEIGHT - VIEW[1]) // 2 + dy
        path = tmp_path / f"view-{k + 1}.jpg"
        image = Image.fromarray(cv2.cvtColor(view[y0:y0 + VIEW[1], x0:x0 + VIEW[0]], cv2.COLOR_BGR2RGB))
        tags = Image.Exif()
        if exif:
            tags.get_ifd(0x8769)[0xA405] = round(focal * 43.267 / math.hypot(*VIEW))
        image.save(path, "JPEG", quality=93, exif=tags.tobytes())
        paths.append(path)
        offsets.append(np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1.0]]))
        turns.append(homography)
    second_to_first = (np.linalg.inv(offsets[0]) @ turns[0] @ np.linalg.inv(turns[1]) @ offsets[1])
    return paths, second_to_first, math.degrees(2 * math.atan(VIEW[0] / 2 / focal))


def true_mosaic(paths: list[Path], second_to_first: np.ndarray) -> np.ndarray:
    """The pair put together with the homography it was made with: straight lines stay straight."""
    first, second = (cv2.imread(str(p)) for p in paths)
    corners = cv2.perspectiveTransform(np.float32([[[0, 0], [VIEW[0], 0], [VIEW[0], VIEW[1]], [0, VIEW[1]]]]),
                                       second_to_first)[0]
    low = np.floor(np.minimum(corners.min(axis=0), 0)).astype(int)
    high = np.ceil(np.maximum(corners.max(axis=0), VIEW)).astype(int)
    move = np.array([[1, 0, -low[0]], [0, 1, -low[1]], [0, 0, 1.0]])
    size = (int(high[0] - low[0]), int(high[1] - low[1]))
    canvas = cv2.warpPerspective(second, move @ second_to_first, size, flags=cv2.INTER_LINEAR)
    canvas[-low[1]:-low[1] + VIEW[1], -low[0]:-low[0] + VIEW[0]] = first
    return canvas


@pytest.mark.slow
@pytest.mark.parametrize(("case", "yaw", "shift", "exif", "projection"), [
    ("crops", 0.0, 123, False, "auto"),  # two crops of one photo (a slide, 1 degree of roll): no focal length in it
    ("turned_exif", 5.0, 0, True, "auto"),  # a true turn of 5 degrees, EXIF focal length in the files
    ("mixed_exif", 1.5, 70, True, "auto"),  # a slight turn and a slide: the estimate is wrong, EXIF is right
    ("turned_flat", 5.0, 0, False, "flat"),  # flat mode on a turned pair with high overlap
])
def test_near_duplicate_pair_is_as_large_as_its_photos_with_a_plausible_field_of_view(
        tmp_path: Path, case: str, yaw: float, shift: int, exif: bool, projection: str) -> None:
    from tests.support.panorama.similarity import compare_panoramas

    paths, second_to_first, photo_hfov = berlin_pair(tmp_path, yaw, shift, exif)
    result = stitch([Photo(p, p.name) for p in paths], INGEST, StitchOptions(projection=projection))
    truth = true_mosaic(paths, second_to_first)
    try:
        reference = opencv_reference(paths)
    except pytest.skip.Exception:  # OpenCV failing is no reason to skip our checks
        reference = None
    SHEET[f"pair_{case}"] = (bgr(result), reference)
    fov = result.field_of_view()
    comparison = compare_panoramas(truth, bgr(result))
    print(f"{case}: {result.size} {result.projection} fov {fov['horizontal']} (photo {photo_hfov:.1f}), "
          f"focal {result.diagnostics.focal}, ncc vs true mosaic {comparison.ncc:.3f}")
    assert result.diagnostics.used == [0, 1]
    assert result.size[0] >= 0.98 * VIEW[0] and result.size[1] >= 0.98 * VIEW[1]  # no smaller than a photo
    focal = result.diagnostics.focal
    if case == "crops":  # nothing in two crops tells the focal length: flat, and no field of view claimed
        assert result.projection == "plane" and focal is not None and focal["source"] == "none"
    else:  # the photos' field of view is the true one (EXIF where the estimate cannot be right)
        assert focal is not None and abs(focal["photo_hfov"] - photo_hfov) <= 0.1 * photo_hfov, focal
    if result.projection != "plane":
        # the pair spans one photo plus the turn: 88 % overlap cannot span 106 degrees
        assert photo_hfov * 0.9 <= fov["horizontal"] <= (photo_hfov + yaw + 2) * 1.1, fov
    assert comparison.ncc >= 0.9 and comparison.overlap >= 0.8, comparison  # lines straight, scene intact
