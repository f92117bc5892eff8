"""Shared set-up of the product-extraction benchmarks: a 20-product catalog and a semi-real 720p clip.

The catalog is the 9 SKUs (14 photos) of the test catalog plus 11 more products made of other real
images of the shared corpus (logos, orbit and turntable photos, panorama photos): 20 products that the
matcher must search in every frame. The clip pastes three catalog products into Big Buck Bunny
(1280x720, 25 frames/s) with perspective, relighting and blur, like the tests' clips, for N seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from media_service.config import SETTINGS  # noqa: E402
from media_service.media.detection.catalog import CatalogProduct, index_product_photo  # noqa: E402
from media_service.media.ingest.images import configure_image_limits  # noqa: E402
from media_service.media_options import ingest_limits  # noqa: E402
from tests.conftest import media  # noqa: E402
from tests.support.products.semireal import CATALOG_SKUS, Placement, Truth, load_photo, render_clip  # noqa: E402

EXTRA_PRODUCTS = {
    "LOGO-MOVIEPY": "logos/moviepy_logo.png", "LOGO-PYTHON": "logos/python_logo.png",
    "LOGO-SKVIDEO": "logos/scikit-video_logo.png", "LOGO-SOLIDUS": "logos/solidus_logo.png",
    "BUDDHA-6": "spin/buddha_orbit/00006.jpg", "BUDDHA-18": "spin/buddha_orbit/00018.jpg",
    "BUDDHA-28": "spin/buddha_orbit/00028.jpg", "CIVIC-1": "spin/civic_52/1.png", "CIVIC-10": "spin/civic_52/10.png",
    "HILL-1": "panorama/hill/1.JPG", "PIER-1": "panorama/pier/1.JPG",
}

CLIP_PLACEMENTS = (
    Placement("TOTE-RED", "solidus_canvas_tote.png", (0.22, 0.5), (0.3, 0.46), (0.5, 0.56), tilt=0.1, roll=-4,
              gain=0.9),
    Placement("CAP-RED", "solidus_cap_red_1.png", (0.55, 0.68), (0.5, 0.64), (0.3, 0.34), tilt=-0.08, roll=5,
              gain=1.1, blur=0.5),
    Placement("NOTEBOOK-RED", "solidus_notebook.png", (0.82, 0.45), (0.78, 0.5), (0.5, 0.52), tilt=0.12,
              gamma=1.1),
)


def settings() -> dict:
    values = {s.name: s.default for s in SETTINGS}
    configure_image_limits(ingest_limits(values))
    return values


def _load(relative: str) -> np.ndarray:
    with Image.open(media(relative)) as image:
        if "A" in image.getbands() or "transparency" in image.info:
            rgba = np.asarray(image.convert("RGBA"))
            return np.ascontiguousarray(rgba[:, :, [2, 1, 0, 3]])
        rgb = np.asarray(image.convert("RGB"))
        return np.ascontiguousarray(rgb[:, :, ::-1])


def catalog_20(kind: str = "sift", side: int = 512) -> list[CatalogProduct]:
    products = [CatalogProduct(sku, [index_product_photo(load_photo(n), kind=kind, max_side=side) for n in names])
                for sku, names in CATALOG_SKUS.items()]
    products += [CatalogProduct(sku, [index_product_photo(_load(path), kind=kind, max_side=side)])
                 for sku, path in EXTRA_PRODUCTS.items()]
    assert len(products) == 20
    return products


def clip_720p(folder: Path, seconds: float) -> tuple[Path, list[Truth]]:
    path = folder / "bench_720p.mp4"
    truths = render_clip("video/bigbuckbunny.mp4", path, CLIP_PLACEMENTS, seconds=seconds, fps=25.0,
                         size=(1280, 720))
    return path, truths
