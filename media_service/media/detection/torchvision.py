"""``TorchvisionDetector``: a torchvision detection model behind the detector seam.

Weights come only from ``models/`` (``model_files.load_weights``: sha256 from the manifest, then
``torch.load(weights_only=True)``) as a *detector checkpoint*: a plain dict with the architecture, the
labels (index 0 is the background, then SKUs) and the state dict, which is what
``media-service models train-detector`` writes. Nothing is ever downloaded: models are built with
``weights=None, weights_backbone=None`` and then filled from the checkpoint.

On CUDA, frames are batched, copied through pinned memory, and run under ``torch.inference_mode`` with
float16 autocast; decoding stays on the CPU, overlapped by the caller's prefetch thread. On a CPU the
same code runs in float32.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from media_service.media.detection.base import DetectionError, Detector, check_frame
from media_service.media.detection.detections import Detections
from media_service.media.detection.model_files import MODELS_DIR, ModelFileError, load_weights

CHECKPOINT_FORMAT = "media-service-detector/1"
BACKGROUND = "__background__"


def _require_torch() -> Any:
    try:
        import torch
        import torchvision  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DetectionError("the torchvision detector needs torch and torchvision: pip install "
                             "'media-service[detection]' (or use the catalog detector)", code="torch_missing") from exc
    return torch


def _tiny_fasterrcnn(num_classes: int, **kwargs: Any) -> Any:
    """A deliberately small Faster R-CNN (three conv stages, one feature map) for CPU tests and smoke runs.

    Same heads, losses and post-processing as the real ones; only the backbone is small, so a training
    loop can be shown to learn in a minute on two CPU cores. Not meant for production accuracy.
    """
    from torch import nn
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    def stage(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                             nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    backbone = nn.Sequential(stage(3, 16), stage(16, 32), stage(32, 64), stage(64, 64))
    backbone.out_channels = 64  # type: ignore[assignment]
    anchors = AnchorGenerator(sizes=((32, 64, 128, 256),), aspect_ratios=((0.5, 1.0, 2.0),))
    pooler = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
    small = {"min_size": 256, "max_size": 256, "rpn_pre_nms_top_n_train": 300, "rpn_post_nms_top_n_train": 100,
             "rpn_pre_nms_top_n_test": 300, "rpn_post_nms_top_n_test": 100, "rpn_batch_size_per_image": 64,
             "box_batch_size_per_image": 64}
    kwargs = {**small, **kwargs}
    return FasterRCNN(backbone, num_classes=None, rpn_anchor_generator=anchors, box_roi_pool=pooler,
                      box_head=TwoMLPHead(64 * 7 * 7, 256), box_predictor=FastRCNNPredictor(256, num_classes),
                      **kwargs)


def _builders() -> dict[str, Callable[..., Any]]:
    from torchvision.models import detection

    return {
        "fasterrcnn_mobilenet_v3_large_fpn": detection.fasterrcnn_mobilenet_v3_large_fpn,
        "fasterrcnn_mobilenet_v3_large_320_fpn": detection.fasterrcnn_mobilenet_v3_large_320_fpn,
        "retinanet_resnet50_fpn": detection.retinanet_resnet50_fpn,
        "ssdlite320_mobilenet_v3_large": detection.ssdlite320_mobilenet_v3_large,
        "tiny_fasterrcnn": _tiny_fasterrcnn,
    }


ARCHITECTURES = ("fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn",
                 "retinanet_resnet50_fpn", "ssdlite320_mobilenet_v3_large", "tiny_fasterrcnn")


def build_model(architecture: str, num_classes: int, **kwargs: Any) -> Any:
    """An untrained model of ``architecture`` with ``num_classes`` (background included); never downloads."""
    _require_torch()
    builders = _builders()
    if architecture not in builders:
        raise DetectionError(f"unknown architecture {architecture!r}; use one of {', '.join(ARCHITECTURES)}",
                             code="unknown_architecture")
    if num_classes < 2:
        raise DetectionError("a detector needs at least one product class besides the background",
                             code="no_classes")
    if architecture == "tiny_fasterrcnn":
        return builders[architecture](num_classes, **kwargs)
    if architecture.startswith("ssd"):  # SSD resizes to its fixed input size; it takes no min/max size
        kwargs = {k: v for k, v in kwargs.items() if k not in {"min_size", "max_size"}}
    return builders[architecture](weights=None, weights_backbone=None, num_classes=num_classes, **kwargs)


def make_checkpoint(model: Any, architecture: str, labels: Sequence[str], **extra: Any) -> dict[str, Any]:
    """What ``torch.save`` writes for a trained detector: plain types and tensors only (weights_only-safe)."""
    if not labels or labels[0] != BACKGROUND:
        raise ValueError(f"labels must start with {BACKGROUND!r} (class 0 is the background)")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {"format": CHECKPOINT_FORMAT, "architecture": architecture, "labels": list(labels), "model": state,
            **extra}


#: torchvision's weight enums, for the category names of standard (COCO) weights: static metadata, no download.
STANDARD_WEIGHTS = {
    "fasterrcnn_mobilenet_v3_large_fpn": "FasterRCNN_MobileNet_V3_Large_FPN_Weights",
    "fasterrcnn_mobilenet_v3_large_320_fpn": "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights",
    "retinanet_resnet50_fpn": "RetinaNet_ResNet50_FPN_Weights",
    "ssdlite320_mobilenet_v3_large": "SSDLite320_MobileNet_V3_Large_Weights",
}


def coco_labels(architecture: str) -> list[str]:
    """Class names of torchvision's standard COCO weights for ``architecture`` (index 0: background)."""
    from torchvision.models import detection

    if architecture not in STANDARD_WEIGHTS:
        raise DetectionError(f"{architecture!r} has no standard torchvision weights; use one of "
                             f"{', '.join(STANDARD_WEIGHTS)}", code="unknown_architecture")
    return list(getattr(detection, STANDARD_WEIGHTS[architecture]).COCO_V1.meta["categories"])


def _standard_model(state: Mapping[str, Any], architecture: str | None,
                    labels: Sequence[str] | str | None) -> tuple[Any, list[str]]:
    """A plain torchvision state dict (standard weights an operator placed in ``models/``)."""
    if architecture is None:
        raise ModelFileError("the weights file is a plain state dict: name its 'architecture' (and 'labels', or "
                             "\"coco\") in its manifest entry, or train a checkpoint with "
                             "'media-service models train-detector'")
    names = coco_labels(architecture) if labels in (None, "coco") else list(labels)  # type: ignore[arg-type]
    model = build_model(architecture, len(names))
    try:
        model.load_state_dict(dict(state), strict=True)
    except RuntimeError as exc:
        raise ModelFileError(f"the weights do not fit architecture {architecture!r} with {len(names)} classes: "
                             f"{str(exc)[:300]}") from exc
    return model, [BACKGROUND, *names[1:]]


def model_from_checkpoint(checkpoint: Mapping[str, Any], *, architecture: str | None = None,
                          labels: Sequence[str] | str | None = None) -> tuple[Any, list[str]]:
    """Rebuild the model of a detector checkpoint (or of plain standard weights named by the manifest)."""
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        if "model" not in checkpoint and architecture is not None:
            return _standard_model(checkpoint, architecture, labels)
        raise ModelFileError("the weights file is not a media-service detector checkpoint (no 'format' "
                             f"{CHECKPOINT_FORMAT!r}); train one with 'media-service models train-detector', "
                             "or name the 'architecture' of plain torchvision weights in the manifest")
    labels = checkpoint.get("labels")
    architecture = checkpoint.get("architecture")
    state = checkpoint.get("model")
    if not isinstance(labels, list) or not labels or labels[0] != BACKGROUND or not isinstance(state, dict):
        raise ModelFileError("the detector checkpoint lacks its labels or its state dict")
    options = {k: checkpoint[k] for k in ("min_size", "max_size") if k in checkpoint}
    model = build_model(str(architecture), len(labels), **options)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(f"the checkpoint does not fit architecture {architecture!r}: {str(exc)[:300]}") from exc
    return model, labels


def resolve_device(name: str) -> Any:
    """``auto``: CUDA when available, else the CPU; ``cuda`` without a GPU is an error, not a silent fallback."""
    torch = _require_torch()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DetectionError("TORCHVISION_DEVICE is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'",
                             code="cuda_unavailable")
    return torch.device(name)


class TorchvisionDetector(Detector):
    """A torchvision detection model; labels map class indices to SKUs (index 0: background)."""

    name = "torchvision"

    def __init__(self, model: Any, labels: Sequence[str | None], *, device: str = "auto", batch_size: int = 8,
                 min_score: float = 0.5, amp: bool = True) -> None:
        torch = _require_torch()
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        self.labels = [None if label == BACKGROUND else label for label in labels]
        self.batch_size = max(1, batch_size)
        self.min_score = min_score
        self.amp = amp and self.device.type == "cuda"
        self._pin = self.device.type == "cuda"
        self._torch = torch

    @classmethod
    def from_manifest(cls, name: str, models_dir: Path | None = None, **options: Any) -> TorchvisionDetector:
        """Load manifest entry ``name`` (sha256 checked, weights_only) and wrap it.

        A media-service checkpoint carries its architecture and labels; plain torchvision weights (the
        standard COCO ones, placed in ``models/`` by an operator) need ``"architecture"`` and optionally
        ``"labels"`` (a list, or ``"coco"``) in their manifest entry.
        """
        import json


        folder = models_dir or MODELS_DIR
        state = load_weights(name, folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        entry = next((m for m in manifest.get("models", []) if m.get("name") == name), {})
        model, labels = model_from_checkpoint(state, architecture=entry.get("architecture"),
                                              labels=entry.get("labels"))
        return cls(model, labels, **options)

    def to_tensors(self, frames: Sequence[np.ndarray]) -> list[Any]:
        """BGR uint8 frames as RGB float tensors in 0..1 on the model's device (pinned, non-blocking on CUDA)."""
        torch = self._torch
        tensors = []
        for frame in frames:
            check_frame(frame)
            tensor = torch.from_numpy(np.ascontiguousarray(frame[:, :, ::-1])).permute(2, 0, 1)
            if self._pin:
                tensor = tensor.pin_memory()
            tensors.append(tensor.to(self.device, non_blocking=True).float().div_(255.0))
        return tensors

    def detect(self, frame: np.ndarray) -> Detections:
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """One forward pass per ``batch_size`` frames; float16 autocast on CUDA."""
        torch = self._torch
        results: list[Detections] = []
        for start in range(0, len(frames), self.batch_size):
            tensors = self.to_tensors(frames[start:start + self.batch_size])
            with torch.inference_mode(), torch.autocast(device_type=self.device.type, dtype=torch.float16,
                                                        enabled=self.amp):
                outputs = self.model(tensors)
            results += [Detections.from_torchvision(output, self.labels, score_threshold=self.min_score)
                        for output in outputs]
        return results
