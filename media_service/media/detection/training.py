"""Fine-tuning a torchvision detector on a merchant's catalog with synthetic training images.

No labelled video is needed: product cut-outs (the catalog photos' transparency) are composited onto
frames of the merchant's own videos with random scale, perspective, lighting, colour tint and blur,
and every composite comes with exact boxes. Composites are generated on a CPU thread, ahead of the
training step, so a GPU is kept busy; on CUDA the step uses mixed precision (autocast + GradScaler).

The result is a detector checkpoint (architecture, labels, state dict) saved under ``models/`` and
registered in the manifest with its sha256, so ``TorchvisionDetector`` loads it like any weights file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from media_service.media.detection.base import DetectionError
from media_service.media.detection.frames import prefetch
from media_service.media.detection.torchvision import (
    BACKGROUND,
    _require_torch,
    build_model,
    make_checkpoint,
    resolve_device,
)


@dataclass(frozen=True)
class TrainingConfig:
    """How to train; the defaults suit a GPU run, the tests shrink them to a minute on two CPU cores."""

    architecture: str = "fasterrcnn_mobilenet_v3_large_320_fpn"
    image_size: int = 320
    steps: int = 3000
    batch_size: int = 8
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    scale: tuple[float, float] = (0.25, 0.6)  # product height as a share of the image height
    max_products: int = 2
    perspective: float = 0.12
    light: tuple[float, float] = (0.6, 1.4)  # gain range
    blur: float = 1.2  # largest Gaussian sigma


@dataclass
class Scene:
    """One synthetic training image with its exact boxes and class indices (1-based; 0 is background)."""

    image: np.ndarray  # BGR uint8
    boxes: np.ndarray  # (K, 4) float32 xyxy
    labels: np.ndarray  # (K,) int64


class SceneSynthesizer:
    """Composites product photos onto background frames (random crops) with random appearance changes."""

    def __init__(self, products: Sequence[tuple[str, Sequence[np.ndarray]]], backgrounds: Sequence[np.ndarray],
                 config: TrainingConfig, seed: int | None = None) -> None:
        if not products or not all(photos for _sku, photos in products):
            raise DetectionError("training needs at least one product with a photo", code="no_training_products")
        if not backgrounds:
            raise DetectionError("training needs background frames: index or upload a video of the shop first",
                                 code="no_backgrounds")
        self.products = [(sku, [_crop_to_alpha(p) for p in photos]) for sku, photos in products]
        self.backgrounds = list(backgrounds)
        self.config = config
        self.rng = np.random.default_rng(config.seed if seed is None else seed)

    @property
    def labels(self) -> list[str]:
        return [BACKGROUND, *(sku for sku, _ in self.products)]

    def background(self) -> np.ndarray:
        size = self.config.image_size
        frame = self.backgrounds[int(self.rng.integers(len(self.backgrounds)))]
        h, w = frame.shape[:2]
        side = int(min(h, w) * self.rng.uniform(0.6, 1.0))
        y = int(self.rng.integers(0, h - side + 1))
        x = int(self.rng.integers(0, w - side + 1))
        crop = frame[y:y + side, x:x + side]
        if self.rng.random() < 0.5:
            crop = crop[:, ::-1]
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)

    def sample(self) -> Scene:
        cfg = self.config
        image = self.background().astype(np.float32) / 255.0
        boxes: list[list[float]] = []
        labels: list[int] = []
        for _ in range(int(self.rng.integers(1, cfg.max_products + 1))):
            label = int(self.rng.integers(len(self.products)))
            photos = self.products[label][1]
            photo = photos[int(self.rng.integers(len(photos)))]
            placed = self._place(image, photo, boxes)
            if placed is not None:
                boxes.append(placed)
                labels.append(label + 1)
        output = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Scene(output, np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.int64))

    def _place(self, image: np.ndarray, photo: np.ndarray, taken: list[list[float]]) -> list[float] | None:
        cfg, rng, size = self.config, self.rng, self.config.image_size
        for _attempt in range(8):
            height = rng.uniform(*cfg.scale) * size
            width = height * photo.shape[1] / photo.shape[0]
            if width > 0.95 * size:
                width, height = 0.95 * size, 0.95 * size * photo.shape[0] / photo.shape[1]
            x0, y0 = rng.uniform(0, size - width), rng.uniform(0, size - height)
            jitter = cfg.perspective * np.array([width, height])
            quad = np.array([[x0, y0], [x0 + width, y0], [x0 + width, y0 + height], [x0, y0 + height]], np.float32)
            quad += (rng.uniform(-1, 1, (4, 2)) * jitter).astype(np.float32)
            quad = np.clip(quad, 0, size - 1)
            box = [float(quad[:, 0].min()), float(quad[:, 1].min()), float(quad[:, 0].max()), float(quad[:, 1].max())]
            if any(_iou(box, other) > 0.3 for other in taken):
                continue
            ph, pw = photo.shape[:2]
            matrix = cv2.getPerspectiveTransform(np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32), quad)
            warped = cv2.warpPerspective(photo, matrix, (size, size), flags=cv2.INTER_AREA,
                                         borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
            colour = warped[:, :, :3].astype(np.float32) / 255.0
            tint = rng.uniform(0.9, 1.1, 3).astype(np.float32)
            colour = np.clip(colour * rng.uniform(*cfg.light) * tint, 0, 1) ** rng.uniform(0.75, 1.35)
            alpha = warped[:, :, 3].astype(np.float32) / 255.0
            sigma = rng.uniform(0, cfg.blur)
            if sigma > 0.3:
                colour = cv2.GaussianBlur(colour, (0, 0), sigma)
                alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
            ys, xs = np.nonzero(alpha > 0.5)
            if len(xs) < 16:
                continue
            image[:] = image * (1 - alpha[:, :, None]) + colour * alpha[:, :, None]
            return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
        return None

    def batches(self, batch_size: int) -> Iterator[list[Scene]]:
        while True:
            yield [self.sample() for _ in range(batch_size)]


def _crop_to_alpha(photo: np.ndarray) -> np.ndarray:
    if photo.ndim != 3 or photo.shape[2] != 4:
        raise DetectionError("training photos need transparency (BGRA) to be cut out and composited",
                             code="photo_without_alpha")
    ys, xs = np.nonzero(photo[:, :, 3] > 8)
    if len(xs) == 0:
        raise DetectionError("a training photo is fully transparent", code="empty_product_photo")
    crop = photo[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    scale = 512 / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)),
                          interpolation=cv2.INTER_AREA)
    return crop


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class TrainingResult:
    model: Any
    architecture: str
    labels: list[str]
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"


def train_detector(products: Sequence[tuple[str, Sequence[np.ndarray]]], backgrounds: Sequence[np.ndarray],
                   config: TrainingConfig | None = None, *,
                   on_step: Callable[[int, float], None] | None = None) -> TrainingResult:
    """Train ``config.architecture`` on synthetic composites of ``products`` over ``backgrounds``.

    ``products`` are (SKU, BGRA photos); ``on_step(step, loss)`` is called after every step (progress bars).
    """
    config = config or TrainingConfig()
    torch = _require_torch()
    torch.manual_seed(config.seed)
    synthesizer = SceneSynthesizer(products, backgrounds, config)
    labels = synthesizer.labels
    device = resolve_device(config.device)
    options = {"min_size": config.image_size, "max_size": config.image_size}
    model = build_model(config.architecture, len(labels), **options).to(device)
    model.train()
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(parameters, lr=config.learning_rate, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    def rate(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    losses: list[float] = []
    started = time.perf_counter()
    batches = prefetch(synthesizer.batches(config.batch_size), depth=3)  # synthesis overlaps the step
    for step in range(config.steps):
        scenes = next(batches)
        images = [torch.from_numpy(np.ascontiguousarray(s.image[:, :, ::-1])).permute(2, 0, 1)
                  .to(device, non_blocking=True).float().div_(255.0) for s in scenes]
        targets = [{"boxes": torch.from_numpy(s.boxes).to(device), "labels": torch.from_numpy(s.labels).to(device)}
                   for s in scenes]
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            loss_parts = model(images, targets)
            loss = sum(loss_parts.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(parameters, 10.0)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise DetectionError("training diverged (the loss is not finite); lower the learning rate",
                                 code="training_diverged")
        losses.append(value)
        if on_step is not None:
            on_step(step, value)
    batches.close()  # type: ignore[attr-defined]
    model.eval()
    return TrainingResult(model=model, architecture=config.architecture, labels=labels, losses=losses,
                          seconds=time.perf_counter() - started, device=str(device))


def save_detector(result: TrainingResult, models_dir: Path, name: str, *, source: str,
                  image_size: int | None = None) -> dict[str, str]:
    """Write the checkpoint to ``models_dir/<name>.pt`` and (re)register it in the manifest with its sha256."""
    torch = _require_torch()
    if not name.replace("-", "").replace("_", "").isalnum():
        raise DetectionError("a model name may use letters, digits, '-' and '_' only", code="invalid_model_name")
    models_dir.mkdir(parents=True, exist_ok=True)
    extra = {"min_size": image_size, "max_size": image_size} if image_size else {}
    checkpoint = make_checkpoint(result.model, result.architecture, result.labels, **extra)
    target = models_dir / f"{name}.pt"
    temporary = target.with_suffix(".pt.tmp")
    torch.save(checkpoint, temporary)
    os.replace(temporary, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    entry = {"name": name, "file": target.name, "sha256": digest, "source": source}
    manifest_path = models_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"models": []}
    manifest["models"] = [m for m in manifest.get("models", []) if m.get("name") != name] + [entry]
    staged = manifest_path.with_suffix(".json.tmp")
    staged.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(staged, manifest_path)
    return entry
