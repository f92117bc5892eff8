"""``videos.index``: find the catalog's products in a video, follow them, keep what taps need.

Steps (one pure function, storage keys in and out):

1. decode the main video stream at ``INDEX_FPS``, upright, without loading the video in memory
   (ffmpeg streams raw frames; a thread decodes ahead of detection);
2. detect products in each frame through the detector seam (catalog features by default);
3. refine each detection's outline with GrabCut (so a tap later only crops, in milliseconds);
4. associate detections into tracks with SKU votes;
5. write the frames (one JPEG pack, random access), the tracks (JSON) and a contact sheet.

The success hook turns the tracks into ``ProductTrack`` rows (hotspots of the video) and marks the index
ready; review decisions of the previous index of the same video are carried over to matching tracks.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from media_service import media_options
from media_service.features.products.service import detector_config, load_catalog
from media_service.jobs.base import JobContext, JobKind
from media_service.jobs.resources import ResourceState
from media_service.media.detection.base import DetectionError, Detector, NullDetector
from media_service.media.detection.catalog import CatalogDetector
from media_service.media.detection.cutout import cut_out, mask_to_polygon
from media_service.media.detection.detections import POLYGON, Detections, _as_object_array, box_iou
from media_service.media.detection.frames import VideoGeometry, batched, prefetch, stream_frames
from media_service.media.detection.tracking import ProductTracker, Track, track_to_record
from media_service.models import Job, ProductTrack, VideoIndex, utcnow

JOB_KIND = "videos.index"
PACK_MAGIC = b"MSFP"
CONTACT_TILE_WIDTH = 320
CONTACT_MAX_TILES = 16
TRACK_COLOURS = [(66, 135, 245), (245, 66, 93), (66, 245, 135), (245, 197, 66), (200, 66, 245), (66, 230, 245)]


# -------------------------------------------------------------------------------------------- frame pack


class FramePackWriter:
    """Frames as JPEGs one after another in a single file, with an offset table at the end.

    One object per index instead of thousands of small ones; a tap reads one frame with three small reads.
    """

    def __init__(self, path: Path, quality: int = 85) -> None:
        self.handle: BinaryIO = path.open("wb")
        self.offsets: list[int] = [0]
        self.quality = quality

    def add(self, image: np.ndarray) -> None:
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise DetectionError("could not encode an indexed frame as JPEG")
        self.handle.write(data.tobytes())
        self.offsets.append(self.offsets[-1] + len(data))

    def close(self) -> int:
        """Write the offset table and footer; returns the number of frames."""
        count = len(self.offsets) - 1
        self.handle.write(struct.pack(f"<{len(self.offsets)}Q", *self.offsets))
        self.handle.write(struct.pack("<I", count) + PACK_MAGIC)
        self.handle.close()
        return count


def read_packed_frame(handle: BinaryIO, index: int) -> np.ndarray | None:
    """Frame ``index`` of a frame pack (BGR), or None when out of range."""
    handle.seek(-8, 2)
    footer = handle.read(8)
    count = struct.unpack("<I", footer[:4])[0]
    if footer[4:] != PACK_MAGIC:
        raise DetectionError("the indexed frames are damaged; index the video again")
    if not 0 <= index < count:
        return None
    table = handle.seek(0, 2) - 8 - 8 * (count + 1)
    handle.seek(table + 8 * index)
    start, end = struct.unpack("<2Q", handle.read(16))
    handle.seek(start)
    data = np.frombuffer(handle.read(end - start), np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_COLOR)  # our own JPEG, written above; never an upload


# --------------------------------------------------------------------------------------------- pipeline


def refine_outlines(frame: np.ndarray, detections: Detections) -> Detections:
    """Replace each detection's outline by a GrabCut cut-out seeded with its box and outline."""
    if not len(detections):
        return detections
    polygons = detections.data.get(POLYGON)
    refined = []
    for i in range(len(detections)):
        prior = polygons[i] if polygons is not None else None
        cut = cut_out(frame, box=detections.xyxy[i], prior=prior)
        outline = mask_to_polygon(cut.mask) if cut is not None else None
        refined.append(outline if outline is not None and len(outline) >= 3 else prior)
    data = dict(detections.data)
    data[POLYGON] = _as_object_array(refined)
    return Detections(xyxy=detections.xyxy, confidence=detections.confidence, class_id=detections.class_id,
                      tracker_id=detections.tracker_id, data=data)


def index_video(source: Path, *, demuxer: str, detector: Detector, fps: float, frame_side: int,
                settings: Mapping[str, Any], staging: Path, progress: Callable[[float], None] = lambda f: None,
                refine: bool = True) -> dict[str, Any]:
    """Detect and track products in ``source``; writes ``frames.pack``, ``tracks.json`` and ``contact_sheet.jpg``.

    Returns the summary (tracks with normalised coordinates, frame size and count, timings).
    """
    import time

    limits = media_options.ingest_limits(settings)
    geometry = VideoGeometry.probe(source, demuxer, limits)
    width, height = geometry.output_size(frame_side)
    duration = geometry.duration or 0.0
    tracker = ProductTracker()
    pack = FramePackWriter(staging / "frames.pack")
    detection_count = 0
    started = time.perf_counter()
    detect_seconds = 0.0
    frames = prefetch(stream_frames(source, demuxer=demuxer, geometry=geometry, fps=fps, max_side=frame_side,
                                    limits=limits), depth=max(4, 2 * detector.batch_size))
    for group in batched(frames, max(1, detector.batch_size)):
        tick = time.perf_counter()
        results = detector.detect_batch([frame.image for frame in group])
        if refine:
            results = [refine_outlines(frame.image, found) for frame, found in zip(group, results, strict=True)]
        detect_seconds += time.perf_counter() - tick
        for frame, found in zip(group, results, strict=True):
            tracker.update(found, frame.index, frame.t)
            detection_count += len(found)
            pack.add(frame.image)
        if duration > 0:
            progress(min(0.95, group[-1].t / duration))
    frame_count = pack.close()
    tracks = tracker.finish()
    records = [track_to_record(track, width, height) for track in tracks]
    (staging / "tracks.json").write_text(json.dumps({"fps": fps, "width": width, "height": height,
                                                     "tracks": records}, separators=(",", ":")))
    write_contact_sheet(staging / "frames.pack", staging / "contact_sheet.jpg", tracks, frame_count)
    progress(1.0)
    elapsed = time.perf_counter() - started
    return {
        "frame_count": frame_count, "width": width, "height": height, "duration": duration, "fps": fps,
        "tracks": records,
        "stats": {"detector": detector.name, "frames": frame_count, "seconds": round(elapsed, 3),
                  "detect_seconds": round(detect_seconds, 3),
                  "frames_per_second": round(frame_count / elapsed, 2) if elapsed else None,
                  "detections": detection_count, "tracks": len(records)},
    }


def write_contact_sheet(pack_path: Path, target: Path, tracks: list[Track], frame_count: int) -> None:
    """A grid of frames with each track's box, number and SKU: what the merchant reviews.

    One tile per track (its most confident frame) first, then evenly spaced frames up to 16 tiles.
    """
    chosen: list[int] = []
    for track in tracks:
        best = max(track.samples, key=lambda s: s.score)
        if best.frame_index not in chosen:
            chosen.append(best.frame_index)
    spare = CONTACT_MAX_TILES - len(chosen)
    if spare > 0 and frame_count:
        step = max(1, frame_count // spare)
        chosen += [i for i in range(0, frame_count, step) if i not in chosen][:spare]
    chosen = sorted(chosen[:CONTACT_MAX_TILES]) or []
    tiles: list[np.ndarray] = []
    with pack_path.open("rb") as handle:
        for index in chosen:
            frame = read_packed_frame(handle, index)
            if frame is None:
                continue
            scale = CONTACT_TILE_WIDTH / frame.shape[1]
            tile = cv2.resize(frame, (CONTACT_TILE_WIDTH, max(2, round(frame.shape[0] * scale))),
                              interpolation=cv2.INTER_AREA)
            for track in tracks:
                for sample in track.samples:
                    if sample.frame_index != index:
                        continue
                    colour = TRACK_COLOURS[track.track_id % len(TRACK_COLOURS)]
                    x0, y0, x1, y1 = (int(np.rint(v * scale)) for v in sample.xyxy)
                    if sample.polygon is not None:
                        outline = np.round(sample.polygon * scale).astype(np.int32).reshape(-1, 1, 2)
                        cv2.polylines(tile, [outline], True, colour, 1, cv2.LINE_AA)
                    cv2.rectangle(tile, (x0, y0), (x1, y1), colour, 2)
                    label = f"#{track.track_id} {track.sku or '?'} {sample.score:.2f}"
                    cv2.rectangle(tile, (x0, max(0, y0 - 14)), (x0 + 7 * len(label), y0), colour, -1)
                    cv2.putText(tile, label, (x0 + 2, max(10, y0 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                                (255, 255, 255), 1, cv2.LINE_AA)
            cv2.putText(tile, f"{index}", (4, tile.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
            tiles.append(tile)
    if not tiles:
        tiles = [np.full((180, CONTACT_TILE_WIDTH, 3), 32, np.uint8)]
    columns = min(4, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    tile_h = max(t.shape[0] for t in tiles)
    sheet = np.full((rows * (tile_h + 4) + 4, columns * (CONTACT_TILE_WIDTH + 4) + 4, 3), 24, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        y, x = 4 + r * (tile_h + 4), 4 + c * (CONTACT_TILE_WIDTH + 4)
        sheet[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    cv2.imwrite(str(target), sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])


# ------------------------------------------------------------------------------------------ the job


def build_detector(params: Mapping[str, Any], storage: Any, settings: Mapping[str, Any]) -> Detector:
    """The detector a job asked for, from the catalog's stored features or the model files."""
    name = params.get("detector", "catalog")
    if name == "catalog":
        return CatalogDetector(load_catalog(storage, params.get("catalog", [])), detector_config(settings))
    if name == "torchvision":
        from media_service.media.detection.torchvision import TorchvisionDetector  # torch is optional

        return TorchvisionDetector.from_manifest(str(params["model"]), media_options.models_dir(settings),
                                                 device=str(settings["TORCHVISION_DEVICE"]),
                                                 batch_size=int(settings["TORCHVISION_BATCH_SIZE"]),
                                                 min_score=float(settings["TORCHVISION_MIN_SCORE"]))
    if name == "none":
        return NullDetector()
    raise DetectionError(f"unknown detector {name!r}; use catalog, torchvision or none", code="unknown_detector")


def index_prefix(merchant_id: str, index_id: str) -> str:
    return f"indexes/{merchant_id}/{index_id}"


def _record_index(session: Session, job: Job) -> list[str]:
    """Success hook: tracks become rows (the video's hotspots), the index becomes the ready one."""
    result = job.result or {}
    index = session.get(VideoIndex, job.params["index_id"])
    if index is None:  # deleted while running
        return [result["output_prefix"]] if result.get("output_prefix") else []
    index.state = ResourceState.READY
    index.ready_at = utcnow()
    index.output_prefix = result.get("output_prefix")
    index.contact_sheet_key = result.get("contact_sheet_key")
    index.width, index.height = result.get("width"), result.get("height")
    index.frame_count, index.duration = result.get("frame_count"), result.get("duration")
    index.stats = result.get("stats") or {}
    previous = session.scalars(select(ProductTrack).join(VideoIndex, VideoIndex.id == ProductTrack.index_id).where(
        VideoIndex.asset_id == index.asset_id, VideoIndex.merchant_id == index.merchant_id,
        VideoIndex.id != index.id, ProductTrack.state != "detected")).all()
    for record in result.get("tracks") or []:
        samples = [{k: v for k, v in sample.items() if k != "polygon"} for sample in record["samples"]]
        track = ProductTrack(index_id=index.id, merchant_id=index.merchant_id, number=record["number"],
                             sku=record["sku"], sku_confidence=record["sku_confidence"],
                             candidates=record["candidates"], start_t=record["start"], end_t=record["end"],
                             samples=samples, outlines=[sample.get("polygon") for sample in record["samples"]])
        reviewed = _matching_review(track, previous)
        if reviewed is not None:
            track.state, track.confirmed_sku, track.reviewed_at = (reviewed.state, reviewed.confirmed_sku,
                                                                   reviewed.reviewed_at)
        session.add(track)
    # The rows hold the tracks now; keep the job's result small (it is shown by /v1/jobs and webhooks).
    job.result = {**{k: v for k, v in result.items() if k != "tracks"}, "track_count": len(result.get("tracks") or [])}
    return []


def _matching_review(track: ProductTrack, reviewed: list[ProductTrack]) -> ProductTrack | None:
    """The reviewed track of an earlier index that is the same product at the same place and time."""
    best, best_iou = None, 0.5
    for other in reviewed:
        if other.end_t < track.start_t or other.start_t > track.end_t:
            continue
        by_time = {round(s["t"], 2): s["box"] for s in other.samples}
        ious = [box_iou(np.array(s["box"]), np.array(by_time[round(s["t"], 2)]))
                for s in track.samples if round(s["t"], 2) in by_time]
        if ious and float(np.mean(ious)) > best_iou:
            best, best_iou = other, float(np.mean(ious))
    return best


def run_index(ctx: JobContext) -> dict[str, Any]:
    params = ctx.params
    detector = build_detector(params, ctx.storage, ctx.settings)
    prefix = index_prefix(ctx.merchant_id or "system", params["index_id"])
    with ctx.storage.local_path(params["source_key"]) as source, ctx.storage.staging_dir() as staging:
        ctx.progress(0.01)
        outcome = index_video(source, demuxer=params["format"], detector=detector, fps=float(params["fps"]),
                              frame_side=int(params["frame_side"]), settings=ctx.settings, staging=staging,
                              progress=lambda fraction: ctx.progress(0.02 + 0.93 * fraction),
                              refine=bool(params.get("refine", True)))
        for name in ("frames.pack", "tracks.json", "contact_sheet.jpg"):
            ctx.storage.put_file(f"{prefix}/{name}", staging / name, move=True)
    return {"index_id": params["index_id"], "output_prefix": prefix,
            "contact_sheet_key": f"{prefix}/contact_sheet.jpg", **outcome}


INDEX_JOB = JobKind(JOB_KIND, run_index, on_success=_record_index)
