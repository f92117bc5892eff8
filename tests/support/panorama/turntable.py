"""A synthetic turntable: a textured box turning a known number of degrees per frame (test helper).

Each side of the box carries its own pattern and number, so the view only repeats after a full turn;
frames are rendered with a pinhole camera looking slightly down at the box, then encoded with the real
ffmpeg (through the service's run_ffmpeg) into an H.264 MP4 like a phone would produce.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from media_service.media.video.ffmpeg import run_ffmpeg

BOX = (1.0, 1.3, 0.7)  # width (x), height (y), depth (z)


def _face_texture(index: int, size: int = 256) -> np.ndarray:
    rng = np.random.default_rng(100 + index)
    base = np.array([(200, 60, 50), (40, 150, 70), (50, 80, 200), (220, 180, 40), (150, 60, 170)][index % 5],
                    np.uint8)
    texture = np.empty((size, size, 3), np.uint8)
    texture[:] = base
    for _ in range(40):
        centre = tuple(int(v) for v in rng.integers(0, size, 2))
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        if rng.random() < 0.5:
            cv2.circle(texture, centre, int(rng.integers(4, 30)), colour, -1)
        else:
            cv2.rectangle(texture, centre, (centre[0] + int(rng.integers(5, 40)), centre[1] + int(rng.integers(5, 40))),
                          colour, -1)
    cv2.putText(texture, str(index + 1), (size // 3, 2 * size // 3), cv2.FONT_HERSHEY_SIMPLEX, 4, (255, 255, 255), 12)
    cv2.rectangle(texture, (0, 0), (size - 1, size - 1), (20, 20, 20), 6)
    return texture


def _faces() -> list[np.ndarray]:
    """Corner coordinates (4, 3) of the four sides and the top, counter-clockwise seen from outside."""
    w, h, d = BOX[0] / 2, BOX[1], BOX[2] / 2
    return [np.array(face, float) for face in (
        [(-w, h, d), (w, h, d), (w, 0, d), (-w, 0, d)],  # front (+z)
        [(w, h, d), (w, h, -d), (w, 0, -d), (w, 0, d)],  # right (+x)
        [(w, h, -d), (-w, h, -d), (-w, 0, -d), (w, 0, -d)],  # back (-z)
        [(-w, h, -d), (-w, h, d), (-w, 0, d), (-w, 0, -d)],  # left (-x)
        [(-w, h, -d), (w, h, -d), (w, h, d), (-w, h, d)],  # top
    )]


def render_frame(angle_degrees: float, size: tuple[int, int]) -> np.ndarray:
    """The box turned by ``angle_degrees`` about the vertical axis, as an RGB frame of ``size``."""
    width, height = size
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = (236, 236, 232)
    angle = math.radians(angle_degrees)
    turn = np.array([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
    elevation = math.radians(18)
    camera = np.array([0.0, 0.65 + 4.2 * math.sin(elevation), 4.2 * math.cos(elevation)])
    forward = np.array([0.0, 0.65, 0.0]) - camera
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    focal = 1.1 * height

    def project(points: np.ndarray) -> np.ndarray:
        relative = points - camera
        depth = relative @ forward
        return np.column_stack([width / 2 + focal * (relative @ right) / depth,
                                height / 2 - focal * (relative @ up) / depth]).astype(np.float32)

    circle = np.array([(0.95 * math.cos(t), 0.0, 0.95 * math.sin(t)) for t in np.linspace(0, 2 * math.pi, 72)])
    cv2.fillPoly(frame, [np.round(project(circle)).astype(np.int32)], (196, 196, 192), lineType=cv2.LINE_AA)
    visible = []
    for index, corners in enumerate(_faces()):
        world = corners @ turn.T
        normal = np.cross(world[3] - world[0], world[1] - world[0])
        centre = world.mean(axis=0)
        if normal @ (camera - centre) <= 0:
            continue
        pixels = project(world)
        visible.append((float(np.linalg.norm(centre - camera)), index, pixels))
    for _, index, pixels in sorted(visible, reverse=True):
        texture = _face_texture(index)
        source = np.float32([[0, 0], [255, 0], [255, 255], [0, 255]])
        matrix = cv2.getPerspectiveTransform(source, pixels)
        warped = cv2.warpPerspective(texture, matrix, (width, height), flags=cv2.INTER_LINEAR)
        mask = cv2.warpPerspective(np.full((256, 256), 255, np.uint8), matrix, (width, height))
        frame[mask > 127] = warped[mask > 127]
    return frame


def write_turntable_video(path: Path, *, degrees_per_frame: float, frames: int, size: tuple[int, int] = (640, 360),
                          fps: int = 30, scratch: Path, image_format: str = "png") -> Path:
    """Render ``frames`` frames and encode them as H.264 MP4 at ``path``.

    Only one revolution is rendered (when the turn is a whole number of frames) and ffmpeg loops it;
    ``image_format`` "jpg" renders large sizes faster than the lossless "png".
    """
    scratch.mkdir(parents=True, exist_ok=True)
    period = 360.0 / degrees_per_frame
    unique = round(period) if abs(period - round(period)) < 1e-9 else frames
    for k in range(min(unique, frames)):
        rgb = render_frame(k * degrees_per_frame, size)
        quality = [cv2.IMWRITE_PNG_COMPRESSION, 1] if image_format == "png" else [cv2.IMWRITE_JPEG_QUALITY, 95]
        cv2.imwrite(str(scratch / f"{k:05d}.{image_format}"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), quality)
    loops = math.ceil(frames / min(unique, frames)) - 1
    run_ffmpeg(["-stream_loop", str(loops), "-framerate", str(fps), "-f", "image2", "-i",
                str(scratch / f"%05d.{image_format}"), "-frames:v", str(frames), "-c:v", "libx264",
                "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-y",
                str(path)], timeout=600)
    return path
