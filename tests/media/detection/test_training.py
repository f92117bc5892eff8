"""Fine-tuning on synthetic composites: a tiny CPU run proves the loop learns.

The tiny architecture (same Faster R-CNN heads and losses, a small backbone) trains from scratch for a
minute on two cores: its loss must fall, and it must then find a product it was trained on, pasted
somewhere new into a frame it has not seen. The saved checkpoint loads back through the manifest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from media_service.media.detection.detections import iou_matrix
from media_service.media.detection.model_files import check_manifest
from media_service.media.detection.torchvision import TorchvisionDetector
from media_service.media.detection.training import SceneSynthesizer, TrainingConfig, save_detector, train_detector
from tests.conftest import media
from tests.support.products.semireal import _decode, load_photo

PRODUCTS = [("TOTE-RED", [load_photo("solidus_canvas_tote.png")]),
            ("CAP-BLACK", [load_photo("solidus_cap_black_1.png")])]


def test_synthetic_scenes_have_exact_boxes() -> None:
    backgrounds = _decode(media("video/flower.mp4"), (320, 180), 1.0, 2, 0.0)
    synthesizer = SceneSynthesizer(PRODUCTS, backgrounds, TrainingConfig(image_size=160, seed=3))
    assert synthesizer.labels == ["__background__", "TOTE-RED", "CAP-BLACK"]
    for _ in range(10):
        scene = synthesizer.sample()
        assert scene.image.shape == (160, 160, 3) and len(scene.boxes) == len(scene.labels) >= 1
        assert (scene.boxes[:, 2:] > scene.boxes[:, :2]).all() and scene.boxes.max() <= 160
        assert set(scene.labels.tolist()) <= {1, 2}


@pytest.mark.slow
def test_a_tiny_cpu_run_learns_to_find_a_pasted_product(tmp_path: Path) -> None:
    # the "merchant's videos": frames of the first 11 s of one clip and of another clip
    backgrounds = (_decode(media("video/bottle-detection.mp4"), (320, 180), 0.5, 6, 1.0)
                   + _decode(media("video/friday.mp4"), (320, 180), 1.0, 3, 0.5))
    config = TrainingConfig(architecture="tiny_fasterrcnn", image_size=160, steps=150, batch_size=4,
                            learning_rate=0.03, warmup_steps=15, device="cpu", scale=(0.4, 0.65), max_products=1)
    result = train_detector(PRODUCTS, backgrounds, config)
    losses = np.array(result.losses)
    assert losses[:10].mean() > 1.8 * losses[-10:].mean(), (losses[:10].mean(), losses[-10:].mean())

    entry = save_detector(result, tmp_path, "detector-test", source="test run", image_size=160)
    assert [ok for _line, ok in check_manifest(tmp_path)] == [True] and entry["file"] == "detector-test.pt"
    detector = TorchvisionDetector.from_manifest("detector-test", tmp_path, device="cpu", min_score=0.3)
    unseen = _decode(media("video/bottle-detection.mp4"), (320, 180), 0.2, 3, 20.0)  # later frames, never seen
    fresh = SceneSynthesizer(PRODUCTS, unseen, config, seed=2024)
    found = total = 0
    for _ in range(12):
        scene = fresh.sample()
        detections = detector.detect(scene.image)
        total += len(scene.boxes)
        if len(detections):
            ious = iou_matrix(detections.xyxy, scene.boxes)
            for j, label in enumerate(scene.labels):
                best = int(np.argmax(ious[:, j]))
                found += ious[best, j] >= 0.5 and detections.skus[best] == result.labels[label]
    assert found / total >= 0.75, (found, total)
