"""The torchvision detector behind the seam: shapes, batching, devices and weight loading, with
``weights=None`` models (nothing is downloaded; real weights are not available here)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from media_service.media.detection.base import DetectionError  # noqa: E402
from media_service.media.detection.detections import Detections  # noqa: E402
from media_service.media.detection.model_files import ModelFileError  # noqa: E402
from media_service.media.detection.torchvision import (  # noqa: E402
    ARCHITECTURES,
    BACKGROUND,
    TorchvisionDetector,
    build_model,
    make_checkpoint,
    model_from_checkpoint,
    resolve_device,
)
from tests.support import hostile  # noqa: E402

LABELS = [BACKGROUND, "TOTE-RED", "CAP-BLACK"]
SMALL = {"min_size": 128, "max_size": 160}


def frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (90, 160, 3), dtype=np.uint8) for _ in range(count)]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_architecture_gives_detections_of_the_right_shapes(architecture: str) -> None:
    torch.manual_seed(0)
    model = build_model(architecture, len(LABELS), **SMALL)
    detector = TorchvisionDetector(model, LABELS, device="cpu", batch_size=2, min_score=0.0)
    results = detector.detect_batch(frames(3))
    assert len(results) == 3 and all(isinstance(r, Detections) for r in results)
    for result in results:
        assert result.xyxy.shape == (len(result), 4) and result.confidence.shape == (len(result),)
        assert set(result.skus) <= {"TOTE-RED", "CAP-BLACK"}
        if len(result):
            assert result.xyxy[:, 2].max() <= 160 + 1e-3 and result.xyxy[:, 3].max() <= 90 + 1e-3


def test_batching_gives_the_same_answers_as_one_frame_at_a_time() -> None:
    torch.manual_seed(1)
    model = build_model("fasterrcnn_mobilenet_v3_large_320_fpn", len(LABELS), **SMALL)
    batched = TorchvisionDetector(model, LABELS, device="cpu", batch_size=4, min_score=0.0)
    single = TorchvisionDetector(model, LABELS, device="cpu", batch_size=1, min_score=0.0)
    images = frames(4, seed=3)
    for a, b in zip(batched.detect_batch(images), [single.detect(f) for f in images], strict=True):
        assert len(a) == len(b)
        assert np.allclose(a.xyxy, b.xyxy, atol=1e-3) and np.allclose(a.confidence, b.confidence, atol=1e-4)


def test_device_placement_and_refused_inputs() -> None:
    model = build_model("ssdlite320_mobilenet_v3_large", len(LABELS))
    detector = TorchvisionDetector(model, LABELS, device="cpu")
    assert detector.device.type == "cpu" and detector.amp is False  # mixed precision only on CUDA
    assert all(p.device.type == "cpu" for p in detector.model.parameters())
    tensors = detector.to_tensors(frames(1))
    assert tensors[0].shape == (3, 90, 160) and tensors[0].dtype == torch.float32 and float(tensors[0].max()) <= 1
    with pytest.raises(ValueError, match=r"\(H, W, 3\) in BGR"):
        detector.detect(np.zeros((10, 10), np.float32))
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DetectionError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(DetectionError, match="unknown architecture"):
        build_model("yolo", 3)
    with pytest.raises(DetectionError, match="at least one product class"):
        build_model("tiny_fasterrcnn", 1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_run_in_half_precision_and_match_the_cpu() -> None:
    torch.manual_seed(2)
    model = build_model("fasterrcnn_mobilenet_v3_large_fpn", len(LABELS))
    cpu = TorchvisionDetector(model, LABELS, device="cpu", min_score=0.0)
    cpu_results = cpu.detect_batch(frames(4))
    gpu = TorchvisionDetector(model, LABELS, device="cuda", batch_size=4, min_score=0.0)
    assert gpu.amp and next(gpu.model.parameters()).device.type == "cuda"
    gpu_results = gpu.detect_batch(frames(4))
    assert len(gpu_results) == len(cpu_results) == 4
    for gpu_result, cpu_result in zip(gpu_results, cpu_results, strict=True):
        assert gpu_result.xyxy.dtype == np.float32 and gpu_result.xyxy.shape[1] == 4
        if len(gpu_result) and len(cpu_result):  # float16 moves scores a little, not the best box
            assert np.abs(gpu_result.xyxy[0] - cpu_result.xyxy[0]).max() < 8


def _manifest(folder: Path, name: str, file: str, sha256: str) -> None:
    (folder / "manifest.json").write_text(json.dumps({"models": [
        {"name": name, "file": file, "sha256": sha256, "source": "test"}]}))


def test_weights_load_only_from_an_intact_listed_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(4)
    model = build_model("tiny_fasterrcnn", len(LABELS), **SMALL)
    path = tmp_path / "detector.pt"
    torch.save(make_checkpoint(model, "tiny_fasterrcnn", LABELS, **SMALL), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    _manifest(tmp_path, "detector", "missing.pt", digest)
    with pytest.raises(ModelFileError, match="missing"):
        TorchvisionDetector.from_manifest("detector", tmp_path, device="cpu")
    _manifest(tmp_path, "detector", "detector.pt", "0" * 64)
    with pytest.raises(ModelFileError, match="sha256"):
        TorchvisionDetector.from_manifest("detector", tmp_path, device="cpu")
    with pytest.raises(ModelFileError, match="no model"):
        TorchvisionDetector.from_manifest("other", tmp_path, device="cpu")

    _manifest(tmp_path, "detector", "detector.pt", digest)
    loaded = TorchvisionDetector.from_manifest("detector", tmp_path, device="cpu", min_score=0.0)
    original = TorchvisionDetector(model, LABELS, device="cpu", min_score=0.0)
    image = frames(1, seed=9)
    a, b = loaded.detect_batch(image)[0], original.detect_batch(image)[0]
    assert np.allclose(a.xyxy, b.xyxy) and a.skus == b.skus


def test_a_pickle_payload_with_a_matching_sha256_is_still_refused(tmp_path: Path) -> None:
    marker = tmp_path / "PLANTED"
    path = hostile.pickle_model(tmp_path, marker)
    _manifest(tmp_path, "detector", path.name, hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(ModelFileError, match="refused to unpickle"):
        TorchvisionDetector.from_manifest("detector", tmp_path, device="cpu")
    assert not marker.exists()


def test_checkpoints_that_do_not_fit_are_explained(tmp_path: Path) -> None:
    model = build_model("tiny_fasterrcnn", 3, **SMALL)
    with pytest.raises(ModelFileError, match="not a media-service detector checkpoint"):
        model_from_checkpoint(model.state_dict())
    checkpoint = make_checkpoint(model, "tiny_fasterrcnn", LABELS, **SMALL)
    checkpoint["architecture"] = "ssdlite320_mobilenet_v3_large"
    with pytest.raises(ModelFileError, match="does not fit"):
        model_from_checkpoint(checkpoint)
    with pytest.raises(ValueError, match="background"):
        make_checkpoint(model, "tiny_fasterrcnn", ["A", "B"])


def test_standard_torchvision_weights_named_in_the_manifest_load_with_coco_labels(tmp_path: Path) -> None:
    # stands in for the real COCO file an operator would place in models/ (same keys and shapes)
    model = build_model("ssdlite320_mobilenet_v3_large", 91)
    path = tmp_path / "ssdlite_coco.pth"
    torch.save(model.state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "manifest.json").write_text(json.dumps({"models": [
        {"name": "coco", "file": path.name, "sha256": digest, "source": "torchvision COCO_V1",
         "architecture": "ssdlite320_mobilenet_v3_large", "labels": "coco"}]}))
    detector = TorchvisionDetector.from_manifest("coco", tmp_path, device="cpu", min_score=0.0)
    assert detector.labels[1] == "person" and len(detector.labels) == 91
    assert all(sku is None or isinstance(sku, str) for sku in detector.detect(frames(1)[0]).skus)
    (tmp_path / "manifest.json").write_text(json.dumps({"models": [
        {"name": "coco", "file": path.name, "sha256": digest, "source": "torchvision COCO_V1"}]}))
    with pytest.raises(ModelFileError, match="name the 'architecture'"):
        TorchvisionDetector.from_manifest("coco", tmp_path, device="cpu")
