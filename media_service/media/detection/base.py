"""The detector seam: anything that turns BGR frames into :class:`Detections`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from media_service.errors import ProcessingError
from media_service.media.detection.detections import Detections

DETECTOR_NAMES = ("catalog", "torchvision", "none")


class DetectionError(ProcessingError):
    """A detector cannot run (no catalog, unusable weights ...); the message says what to change."""

    code = "detection_failed"
    title = "Detection failed"


class Detector(ABC):
    """Finds products in frames. Frames are uint8 BGR arrays (H, W, 3), as OpenCV and our decoder give them.

    ``batch_size`` is how many frames ``detect_batch`` likes to get at once (1 for per-frame detectors,
    more for GPU models); callers group frames accordingly.
    """

    name: str = "detector"
    batch_size: int = 1

    @abstractmethod
    def detect(self, frame: np.ndarray) -> Detections:
        """Detections of one frame, in that frame's pixel coordinates."""

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detections of several frames; the default runs them one by one."""
        return [self.detect(frame) for frame in frames]


class NullDetector(Detector):
    """Finds nothing: for videos indexed only for their frames, and for tests of the plumbing."""

    name = "none"

    def detect(self, frame: np.ndarray) -> Detections:
        return Detections.empty()


def check_frame(frame: np.ndarray) -> np.ndarray:
    """Refuse anything but a uint8 BGR frame, with the expected and the actual shape."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        dtype = getattr(frame, "dtype", type(frame).__name__)
        raise ValueError(f"a frame must be a uint8 array of shape (H, W, 3) in BGR order, got {shape} {dtype}")
    return frame
