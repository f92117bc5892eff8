"""Catalog detector throughput at 720p with 20 catalog products, against the bare decode rate.

In one run, on the same semi-real 1280x720 clip (25 frames/s, three products pasted into Big Buck Bunny):

* baseline: our streaming reader decoding every frame at 720p (ffmpeg -> raw BGR pipe), nothing else;
* detect: ``CatalogDetector.detect`` alone on decoded 720p frames (SIFT, 20 products, 14 + 11 photos);
* pipeline: decode on a thread (bounded queue) overlapped with detection, the way ``videos.index`` runs;

and prints frames/s, the ratio to the decode rate, and precision / recall / top-1 SKU on the clip's
known boxes. ``--features orb`` measures the faster, less robust ORB variant. Goal: >= 10 frames/s.

``--accuracy N`` also renders N clips with randomly drawn products and appearance changes over six real
clips (a check nobody tuned against; the tests assert on fixed clips) and reports precision, recall
(IoU >= 0.5) and top-1 SKU on them at the indexing rate (4 frames/s), with the 9-SKU test catalog.

    .venv/bin/python bench/catalog_detector.py --seconds 8 --accuracy 12
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from products_common import REPO, catalog_20, clip_720p, settings

from media_service.detection.catalog import CatalogDetector, CatalogDetectorConfig
from media_service.detection.frames import VideoGeometry, prefetch, stream_frames
from tests.products.evaluation import Score
from tests.products.semireal import truths_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the 720p clip")
    parser.add_argument("--features", choices=["sift", "orb"], default="sift")
    parser.add_argument("--detect-side", type=int, default=None, help="working size (default: the setting)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--accuracy", type=int, default=0, help="random semi-real clips to score (0: none)")
    parser.add_argument("--seed", type=int, default=2027, help="2026 was used while choosing thresholds")
    args = parser.parse_args()
    config = settings()
    side = args.detect_side or config["PRODUCT_DETECT_SIDE"]
    with tempfile.TemporaryDirectory() as tmp:
        path, truths = clip_720p(Path(tmp), args.seconds)
        geometry = VideoGeometry.probe(path, "mp4", config)

        def frames():  # every frame, 720p, as the 25 frames/s video has them
            return stream_frames(path, demuxer="mp4", geometry=geometry, fps=25.0, max_side=1280, settings=config)

        started = time.perf_counter()
        decoded = [frame for frame in frames()]
        decode_seconds = time.perf_counter() - started
        count = len(decoded)

        index_started = time.perf_counter()
        catalog = catalog_20(args.features)
        index_seconds = time.perf_counter() - index_started
        detector = CatalogDetector(catalog, CatalogDetectorConfig(kind=args.features, max_side=side,
                                                                  min_score=config["PRODUCT_MIN_SCORE"]))
        detector.detect(decoded[0].image)  # warm-up: first-call allocations

        score = Score()
        started = time.perf_counter()
        for frame in decoded:
            detections = detector.detect(frame.image)
            score.add(detections, truths_at(truths, frame.t, 25.0))
        detect_seconds = time.perf_counter() - started
        del decoded

        started = time.perf_counter()
        piped = 0
        for frame in prefetch(frames(), depth=8):
            detector.detect(frame.image)
            piped += 1
        pipeline_seconds = time.perf_counter() - started

    decode_fps, detect_fps, pipeline_fps = count / decode_seconds, count / detect_seconds, piped / pipeline_seconds
    figures = {
        "frames": count, "size": "1280x720", "products": len(catalog), "features": args.features,
        "detect_side": side, "catalog_index_seconds": round(index_seconds, 2),
        "decode_fps": round(decode_fps, 1), "detect_fps": round(detect_fps, 2), "pipeline_fps": round(pipeline_fps, 2),
        "pipeline_vs_decode": round(pipeline_fps / decode_fps, 3), "goal_fps": 10.0,
        "precision": round(score.precision, 3), "recall": round(score.recall, 3), "top1": round(score.top1, 3),
    }
    print(f"catalog detector, {count} frames of 1280x720, {len(catalog)} products ({args.features}, "
          f"working side {side} px); catalog indexed in {index_seconds:.1f} s")
    print(f"  baseline decode only     {decode_fps:7.1f} frames/s")
    print(f"  detect only              {detect_fps:7.2f} frames/s   ({detect_fps / decode_fps:.3f} x decode)")
    print(f"  decode + detect overlap  {pipeline_fps:7.2f} frames/s   ({pipeline_fps / decode_fps:.3f} x decode; "
          f"goal >= 10 frames/s: {'met' if pipeline_fps >= 10 else 'NOT met'})")
    print(f"  on the clip's known boxes: {score.summary()}")
    if args.accuracy:
        figures["random_clips"] = random_accuracy(args.accuracy, args.seed, args.features, config)
    out = args.json or REPO / "bench" / "results" / f"catalog_detector_{args.features}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))


BACKGROUNDS = ["video/nasa_13013.mp4", "video/sample_portrait.mp4", "video/iphone_rotated.mov", "video/friday.mp4",
               "video/flower.mp4", "video/bottle-detection.mp4"]


def random_accuracy(count: int, seed: int, features: str, config: dict) -> dict:
    """Precision/recall/top-1 on freshly drawn semi-real clips (2 s each, 2-3 products)."""
    import numpy as np

    from media_service.detection.catalog import CatalogProduct, index_product_photo
    from tests.products.semireal import CATALOG_SKUS, load_photo, random_placements, render_clip

    rng = np.random.default_rng(seed)
    catalog = [CatalogProduct(sku, [index_product_photo(load_photo(n), kind=features) for n in names])
               for sku, names in CATALOG_SKUS.items()]
    detector = CatalogDetector(catalog, CatalogDetectorConfig(kind=features, max_side=config["PRODUCT_DETECT_SIDE"],
                                                              min_score=config["PRODUCT_MIN_SCORE"]))
    score = Score()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(count):
            background = BACKGROUNDS[i % len(BACKGROUNDS)]
            portrait = "portrait" in background or "iphone" in background
            size = (360, 640) if portrait else (640, 360)
            placements = random_placements(rng, int(rng.integers(2, 4)), aspect=size[0] / size[1])
            path = Path(tmp) / f"random_{i}.mp4"
            truths = render_clip(background, path, placements, seconds=2.0, fps=12.0, size=size,
                                 start=float(rng.uniform(0, 1)))
            geometry = VideoGeometry.probe(path, "mp4", config)
            for frame in stream_frames(path, demuxer="mp4", geometry=geometry, fps=4.0, max_side=960,
                                       settings=config):
                score.add(detector.detect(frame.image), truths_at(truths, frame.t, 12.0), where=f"{i}@{frame.t}")
    print(f"  {count} random clips (seed {seed}): {score.summary()}")
    return {"clips": count, "seed": seed, "precision": round(score.precision, 3), "recall": round(score.recall, 3),
            "top1": round(score.top1, 3), "truths": score.truths, "wrong_skus": score.wrong_skus[:20],
            "misses": score.misses[:40]}


if __name__ == "__main__":
    main()
