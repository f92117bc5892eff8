"""Panorama outputs: the full image, a preview, multi-resolution tiles and the viewer manifest.

Everything is re-encoded from pixels with Pillow and written without EXIF, XMP or ICC data, so no
camera or location metadata of the input photos reaches a published file. Paths in the manifest are
relative to the manifest itself; the API replaces them with signed URLs when it serves the manifest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from media_service.media.panorama.stitcher import Panorama

MANIFEST_VERSION = 1
TILE_PATH_TEMPLATE = "tiles/{level}/{column}_{row}.jpg"


def save_image(rgb: np.ndarray, path: Path, *, quality: int = 88, format: str = "JPEG") -> tuple[int, int]:
    """Encode an RGB (or RGBA for WebP) array to ``path`` with no metadata; returns (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(rgb)
    if format == "JPEG":
        image.save(path, "JPEG", quality=quality, progressive=rgb.shape[0] * rgb.shape[1] > 512 * 512)
    elif format == "WEBP":
        image.save(path, "WEBP", quality=quality, method=4)
    else:
        raise ValueError(f"unsupported output format {format!r}")
    return rgb.shape[1], rgb.shape[0]


def resize_to_width(rgb: np.ndarray, width: int) -> np.ndarray:
    """Area-resampled copy ``width`` pixels wide (never enlarged)."""
    if width >= rgb.shape[1]:
        return rgb
    height = max(1, round(rgb.shape[0] * width / rgb.shape[1]))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def write_tiles(rgb: np.ndarray, out_dir: Path, tile_size: int, quality: int) -> dict[str, Any]:
    """A tile pyramid: level 0 is full size, each next level half as large, down to a single tile."""
    levels = []
    level_image = rgb
    level = 0
    while True:
        height, width = level_image.shape[:2]
        columns, rows = math.ceil(width / tile_size), math.ceil(height / tile_size)
        for row in range(rows):
            for column in range(columns):
                tile = level_image[row * tile_size:(row + 1) * tile_size, column * tile_size:(column + 1) * tile_size]
                save_image(np.ascontiguousarray(tile), out_dir / TILE_PATH_TEMPLATE.format(
                    level=level, column=column, row=row), quality=quality)
        levels.append({"level": level, "scale": 0.5 ** level, "width": width, "height": height,
                       "columns": columns, "rows": rows})
        if columns == 1 and rows == 1:
            break
        level_image = cv2.resize(level_image, (max(1, (width + 1) // 2), max(1, (height + 1) // 2)),
                                 interpolation=cv2.INTER_AREA)
        level += 1
    return {"tile_size": tile_size, "format": "jpeg", "path_template": TILE_PATH_TEMPLATE, "levels": levels}


def viewer_projection(panorama: Panorama) -> dict[str, Any]:
    """How a viewer should project the image, with Pannellum-style values for partial panoramas."""
    fov = panorama.field_of_view()
    if panorama.projection == "spherical":
        return {"type": "equirectangular", "haov": fov["horizontal"], "vaov": fov["vertical"],
                "v_offset": fov["pitch"], "full_360": fov["full_360"]}
    if panorama.projection == "cylindrical":
        return {"type": "cylindrical", "haov": fov["horizontal"], "vaov": fov["vertical"],
                "v_offset": fov["pitch"], "full_360": fov["full_360"]}
    return {"type": "flat"}


def write_panorama_files(panorama: Panorama, out_dir: Path, *, preview_width: int, tile_size: int,
                         quality: int) -> dict[str, Any]:
    """Write image, preview and tiles under ``out_dir`` and return the viewer manifest (also written)."""
    import json

    width, height = save_image(panorama.image, out_dir / "panorama.jpg", quality=quality)
    preview = resize_to_width(panorama.image, preview_width)
    preview_size = save_image(preview, out_dir / "preview.jpg", quality=quality)
    tiles = write_tiles(panorama.image, out_dir, tile_size, quality)
    manifest = {
        "version": MANIFEST_VERSION,
        "type": "panorama",
        "projection": viewer_projection(panorama),
        "field_of_view": panorama.field_of_view(),
        "image": {"path": "panorama.jpg", "width": width, "height": height, "mime": "image/jpeg"},
        "preview": {"path": "preview.jpg", "width": preview_size[0], "height": preview_size[1],
                    "mime": "image/jpeg"},
        "tiles": tiles,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def with_urls(manifest: dict[str, Any], url_for: Callable[[str], str]) -> dict[str, Any]:
    """A copy of a panorama or spin manifest whose relative paths also carry URLs from ``url_for(path)``."""
    result = dict(manifest)
    for name in ("image", "preview", "sprite"):
        if isinstance(result.get(name), dict):
            result[name] = {**result[name], "url": url_for(result[name]["path"])}
    tiles = result.get("tiles")
    if isinstance(tiles, dict):
        template = tiles["path_template"]
        result["tiles"] = {**tiles, "levels": [
            {**level, "urls": [[url_for(template.format(level=level["level"], column=column, row=row))
                                for column in range(level["columns"])] for row in range(level["rows"])]}
            for level in tiles["levels"]]}
    sizes = result.get("sizes")
    if isinstance(sizes, list):
        count = int(result.get("frame_count", 0))
        result["sizes"] = [{**size, "urls": {fmt: [url_for(template.format(index=i)) for i in range(count)]
                                             for fmt, template in size["paths"].items()}} for size in sizes]
    return result
