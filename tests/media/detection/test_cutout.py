"""Cut-outs: GrabCut seeded by a lasso, a box and a detection's outline, against the true pasted mask."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from media_service.media.detection.catalog import CatalogDetector, CatalogProduct
from media_service.media.detection.cutout import cut_out, encode_png, mask_to_polygon, render_cutout
from tests.conftest import REPO
from tests.support.products.semireal import EVALUATION_CLIPS, _decode, render_clip
from tests.support.products.shop import artifact


def _ellipse(box: tuple[float, ...], grow: float = 1.25) -> np.ndarray:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    rx, ry = (box[2] - box[0]) / 2 * grow, (box[3] - box[1]) / 2 * grow
    return np.array([[cx + rx * np.cos(a), cy + ry * np.sin(a)] for a in np.linspace(0, 2 * np.pi, 24, False)],
                    np.float32)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, np.ndarray, list]]:
    """The first frame of each evaluation clip, decoded from its x264 encoding, with its truths."""
    folder = tmp_path_factory.mktemp("cutout")
    out = []
    for name, (background, start, placements) in EVALUATION_CLIPS.items():
        path = folder / f"{name}.mp4"
        truths = render_clip(background, path, placements, seconds=0.25, fps=4.0, start=start)
        frame = _decode(path, (640, 360), 4.0, 1, 0.0)[0]
        out.append((name, frame, [t for t in truths if t.frame == 0]))
    return out


def test_lasso_and_detection_outline_cut_out_every_product(scenes: list, catalog: list[CatalogProduct]) -> None:
    detector = CatalogDetector(catalog)
    results = {}
    for name, frame, truths in scenes:
        detections = detector.detect(frame)
        for truth in truths:
            lasso = _ellipse(truth.box)
            centre = ((truth.box[0] + truth.box[2]) / 2, (truth.box[1] + truth.box[3]) / 2)
            prior = next(p for b, p in zip(detections.xyxy, detections.data["polygon"], strict=True)
                         if b[0] < centre[0] < b[2] and b[1] < centre[1] < b[3])
            cut = cut_out(frame, lasso=lasso, prior=prior)
            assert cut is not None
            covered = (cut.mask & truth.mask).sum() / truth.mask.sum()
            results[f"{name}/{truth.sku}"] = (round(_iou(cut.mask, truth.mask), 3), round(float(covered), 3))
            Image.fromarray(cut.rgba).save(artifact(f"cutout_{name}_{truth.sku}.png"))
    assert all(iou >= 0.8 and covered >= 0.95 for iou, covered in results.values()), results


def test_lasso_alone_and_box_alone_on_a_clear_background(scenes: list) -> None:
    _name, frame, truths = next(s for s in scenes if s[0] == "bottles")
    for truth in truths:
        by_lasso = cut_out(frame, lasso=_ellipse(truth.box))
        by_box = cut_out(frame, box=np.array(truth.box))
        assert by_lasso is not None and by_box is not None
        assert _iou(by_lasso.mask, truth.mask) >= 0.75, truth.sku
        assert _iou(by_box.mask, truth.mask) >= 0.75, truth.sku


def test_png_has_transparency_and_outlines_render_fast(scenes: list) -> None:
    _, frame, truths = scenes[0]
    cut = cut_out(frame, box=np.array(truths[0].box))
    assert cut is not None
    with Image.open(BytesIO(encode_png(cut.rgba))) as image:
        assert image.mode == "RGBA" and image.size == (cut.rgba.shape[1], cut.rgba.shape[0])
        alpha = np.asarray(image)[:, :, 3]
    assert alpha.min() == 0 and alpha.max() == 255
    polygon = mask_to_polygon(cut.mask)
    assert polygon is not None and len(polygon) >= 3
    rendered = render_cutout(frame, polygon)
    assert rendered is not None and _iou(rendered.mask, cut.mask) > 0.95
    assert 0 < cut.coverage <= 1


def test_degenerate_inputs() -> None:
    frame = np.full((100, 100, 3), 90, np.uint8)  # flat: GrabCut has nothing to separate
    cut = cut_out(frame, box=np.array([20, 20, 60, 60]))
    assert cut is None or cut.mask.any()
    with pytest.raises(ValueError, match="needs a box"):
        cut_out(frame)
    assert mask_to_polygon(np.zeros((10, 10), bool)) is None
    assert render_cutout(frame, np.array([[0, 0], [0, 0], [0, 0]], np.float32)) is None


def test_artifacts_folder_is_ignored_by_git() -> None:
    assert "test-artifacts/" in (REPO / ".gitignore").read_text()


def _scene_with_neighbour(catalog: list[CatalogProduct]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A real frame with the tote (its handles leave a hole) and the red cap pressed against the red notebook."""
    from tests.conftest import media
    from tests.support.products.semireal import Placement, destination_quad, load_photo, paste

    frame = _decode(media("video/bottle-detection.mp4"), (960, 540), 4.0, 1, 3.0)[0]
    truths = {}
    for name, centre, height in (("solidus_canvas_tote.png", (250, 280), 380),
                                 ("solidus_notebook.png", (780, 290), 330), ("solidus_cap_red_1.png", (585, 330), 210)):
        photo = load_photo(name)
        quad = destination_quad(centre, (height * photo.shape[1] / photo.shape[0], height), 0.04, 2)
        truths[name] = paste(frame, photo, quad, Placement("", name, (0, 0), (0, 0), (0, 0)))
    truths["solidus_notebook.png"] &= ~truths["solidus_cap_red_1.png"]
    return frame, truths


def test_the_placed_photo_mask_keeps_holes_and_leaves_a_neighbour_of_the_same_colour(
        catalog: list[CatalogProduct]) -> None:
    """The tote's cut-out used to keep the scene seen through its handles, and the cap's a chunk of the red
    notebook beside it (an outline prior says nothing about either); the placed photo mask does."""
    from media_service.media.detection.detections import MASK_PRIOR, POLYGON

    frame, truths = _scene_with_neighbour(catalog)
    found = CatalogDetector(catalog).detect(frame)
    results = {}
    for sku, name in (("TOTE-RED", "solidus_canvas_tote.png"), ("CAP-RED", "solidus_cap_red_1.png")):
        assert sku in found.skus, found.skus
        i = found.skus.index(sku)
        truth = truths[name]
        outline_only = cut_out(frame, box=found.xyxy[i], prior=found.data[POLYGON][i])
        with_mask = cut_out(frame, box=found.xyxy[i], prior=found.data[POLYGON][i],
                            mask_prior=found.data[MASK_PRIOR][i])
        assert outline_only is not None and with_mask is not None
        results[sku] = (_iou(outline_only.mask, truth), _iou(with_mask.mask, truth))
        image = np.hstack([frame.copy(), frame.copy()])
        image[:, :960][~outline_only.mask] //= 4
        image[:, 960:][~with_mask.mask] //= 4
        Image.fromarray(image[:, :, ::-1]).save(artifact(f"cutout_mask_prior_{sku.lower()}.png"))
    tote = truths["solidus_canvas_tote.png"]
    filled = np.zeros_like(tote)
    import cv2

    contours, _ = cv2.findContours(tote.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(filled, [max(contours, key=cv2.contourArea)], -1, 1, -1)
    hole = filled.astype(bool) & ~tote
    assert hole.sum() > 1000
    i = found.skus.index("TOTE-RED")
    with_mask = cut_out(frame, box=found.xyxy[i], prior=found.data[POLYGON][i], mask_prior=found.data[MASK_PRIOR][i])
    assert with_mask is not None and (with_mask.mask & hole).sum() < 0.2 * hole.sum(), (with_mask.mask & hole).sum()
    artifact("cutout_mask_prior.json").write_text(str(results))
    assert all(after >= 0.9 for _, after in results.values()), results
    assert all(after >= before - 0.01 for before, after in results.values()), results
