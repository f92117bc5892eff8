"""The ``Detections`` type: validated shapes, selection, merging, NMS and the torchvision constructor."""

from __future__ import annotations

import numpy as np
import pytest

from media_service.media.detection.detections import CANDIDATES, POLYGON, SKU, Detections, box_iou, iou_matrix


def make(n: int = 3, **extra: object) -> Detections:
    boxes = np.array([[10 * i, 10 * i, 10 * i + 20, 10 * i + 30] for i in range(n)], np.float32)
    return Detections(xyxy=boxes, confidence=np.linspace(0.9, 0.5, n), class_id=np.arange(n),
                      data={SKU: np.array([f"S{i}" for i in range(n)], dtype=object)}, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"xyxy": np.zeros((2, 3))}, r"xyxy must have shape \(N, 4\), got \(2, 3\)"),
    ({"confidence": np.zeros(3)}, r"confidence must have shape \(2,\) to match xyxy, got \(3,\)"),
    ({"class_id": np.zeros((2, 2))}, r"class_id must have shape \(2,\) to match xyxy, got \(4,\)"),
    ({"mask": np.zeros((3, 4, 4))}, r"mask must have shape \(2, H, W\), got \(3, 4, 4\)"),
    ({"tracker_id": np.zeros(1)}, r"tracker_id must have shape \(2,\)"),
    ({"data": {"sku": ["a"]}}, r"data\['sku'\] must have length 2"),
    ({"xyxy": np.array([[5, 5, 1, 9], [0, 0, 1, 1]])}, "x1 >= x0"),
    ({"xyxy": np.array([[0, 0, np.nan, 1], [0, 0, 1, 1]])}, "NaN"),
])
def test_shapes_are_validated_with_expected_and_actual(kwargs: dict, message: str) -> None:
    base = {"xyxy": np.array([[0, 0, 1, 1], [2, 2, 3, 3]]), "confidence": np.ones(2), "class_id": np.zeros(2)}
    with pytest.raises(ValueError, match=message):
        Detections(**{**base, **kwargs})


def test_empty_select_merge_and_scale() -> None:
    empty = Detections.empty()
    assert len(empty) == 0 and empty.xyxy.shape == (0, 4)
    detections = make(3)
    assert len(detections[1]) == 1 and detections[1].skus == ["S1"]
    assert detections[np.array([True, False, True])].skus == ["S0", "S2"]
    assert [len(d) for d in detections] == [1, 1, 1]
    merged = Detections.merge([detections, empty, detections[0]])
    assert len(merged) == 4 and merged.skus == ["S0", "S1", "S2", "S0"]
    with pytest.raises(ValueError, match="data keys differ"):
        Detections.merge([detections, Detections(xyxy=[[0, 0, 1, 1]], confidence=[1], class_id=[0])])
    with_polygons = Detections(xyxy=[[0, 0, 10, 10]], confidence=[1], class_id=[0],
                               data={POLYGON: np.array([np.array([[0, 0], [10, 0], [10, 10]])], dtype=object)})
    doubled = with_polygons.scaled(2, 3)
    assert doubled.xyxy.tolist() == [[0, 0, 20, 30]]
    assert doubled.data[POLYGON][0].tolist() == [[0, 0], [20, 0], [20, 30]]
    assert detections.area.tolist() == [600, 600, 600]


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    detections = Detections(xyxy=[[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], confidence=[0.6, 0.9, 0.7],
                            class_id=[0, 1, 0])
    assert detections.with_nms(0.5).confidence.tolist() == pytest.approx([0.9, 0.7])
    assert len(detections.with_nms(0.5, class_agnostic=False)) == 3
    assert box_iou(np.array([0, 0, 10, 10]), np.array([5, 0, 15, 10])) == pytest.approx(1 / 3)
    matrix = iou_matrix(detections.xyxy, detections.xyxy)
    assert matrix.shape == (3, 3) and np.allclose(np.diag(matrix), 1)


def test_from_torchvision_maps_labels_to_skus_and_thresholds() -> None:
    torch = pytest.importorskip("torch")
    output = {"boxes": torch.tensor([[0.0, 0, 5, 5], [1, 1, 9, 9]]), "scores": torch.tensor([0.9, 0.2]),
              "labels": torch.tensor([2, 1]), "masks": torch.rand(2, 1, 12, 12)}
    detections = Detections.from_torchvision(output, [None, "CAP", "TOTE"], score_threshold=0.5)
    assert len(detections) == 1 and detections.skus == ["TOTE"] and detections.class_id.tolist() == [2]
    assert detections.mask is not None and detections.mask.shape == (1, 12, 12)
    empty = Detections.from_torchvision({"boxes": torch.zeros(0, 4), "scores": torch.zeros(0),
                                         "labels": torch.zeros(0, dtype=torch.int64)})
    assert len(empty) == 0 and SKU not in empty.data
    with pytest.raises(ValueError, match="lacks 'scores'"):
        Detections.from_torchvision({"boxes": torch.zeros(0, 4)})


def test_from_records_round_trips_json() -> None:
    detections = Detections.from_records([{"xyxy": [1, 2, 3, 4], "score": 0.7, "sku": "A",
                                           "polygon": [[1, 2], [3, 2], [3, 4]], "candidates": [["A", 0.7]]}])
    assert detections.skus == ["A"] and detections.data[CANDIDATES][0] == [["A", 0.7]]
    assert Detections.from_records([]).xyxy.shape == (0, 4)
