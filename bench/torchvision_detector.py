"""Torchvision detector throughput by batch size, decoding overlapped, against the bare decode rate.

Models are built with ``weights=None, weights_backbone=None`` (no weights can be downloaded here; the
compute is the same as with trained weights). In one run, on a semi-real 1280x720 clip:

* baseline: our streaming reader decoding the frames, nothing else;
* for each architecture and batch size: frames decoded on a thread (bounded queue) and run through
  ``TorchvisionDetector.detect_batch`` (``torch.inference_mode``; float16 autocast and pinned-memory
  copies when the device is CUDA);

and prints frames/s and the ratio to the decode rate. ``--device cuda`` (or ``auto`` on a GPU machine)
measures the GPU path.

    .venv/bin/python bench/torchvision_detector.py --frames 32 --batch-sizes 1 2 4 8
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from products_common import REPO, clip_720p, settings

from media_service.media.detection.frames import VideoGeometry, batched, prefetch, stream_frames
from media_service.media.detection.torchvision import BACKGROUND, TorchvisionDetector, build_model
from media_service.media_options import ingest_limits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=32, help="frames per measurement")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--architectures", nargs="+",
                        default=["fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn_mobilenet_v3_large_fpn"])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    config = settings()
    labels = [BACKGROUND, *(f"SKU-{i}" for i in range(20))]
    torch.manual_seed(0)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path, _ = clip_720p(Path(tmp), max(2.0, args.frames / 25.0 + 0.5))
        geometry = VideoGeometry.probe(path, "mp4", ingest_limits(config))

        def frames():
            return stream_frames(path, demuxer="mp4", geometry=geometry, fps=25.0, max_side=1280,
                                 limits=ingest_limits(config),
                                 limit=args.frames)

        started = time.perf_counter()
        count = sum(1 for _ in frames())
        decode_fps = count / (time.perf_counter() - started)
        device_name = None
        print(f"torchvision detector on {count} frames of 1280x720 (weights=None, {len(labels) - 1} classes), "
              f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
        print(f"  baseline decode only {decode_fps:8.1f} frames/s")
        for architecture in args.architectures:
            model = build_model(architecture, len(labels))
            for batch_size in args.batch_sizes:
                detector = TorchvisionDetector(model, labels, device=args.device, batch_size=batch_size, min_score=0.5)
                device_name = str(detector.device)
                detector.detect_batch([next(iter(frames())).image] * batch_size)  # warm-up
                if detector.device.type == "cuda":
                    torch.cuda.synchronize()
                started = time.perf_counter()
                done = 0
                for group in batched(prefetch(frames(), depth=2 * batch_size), batch_size):
                    detector.detect_batch([frame.image for frame in group])
                    done += len(group)
                if detector.device.type == "cuda":
                    torch.cuda.synchronize()
                fps = done / (time.perf_counter() - started)
                results.append({"architecture": architecture, "batch_size": batch_size, "device": device_name,
                                "fps": round(fps, 2), "vs_decode": round(fps / decode_fps, 4)})
                print(f"  {architecture:<40} batch {batch_size:2d} on {device_name:<6} {fps:8.2f} frames/s "
                      f"({fps / decode_fps:.4f} x decode)")
    out = REPO / "bench" / "results" / f"torchvision_detector_{device_name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"decode_fps": round(decode_fps, 1), "results": results}, indent=2))


if __name__ == "__main__":
    main()
