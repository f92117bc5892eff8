"""Tracking: detections across frames become tracks with SKU votes (pure numpy, tiny factories)."""

from __future__ import annotations

import numpy as np

from media_service.media.detection.detections import CANDIDATES, SKU, Detections
from media_service.media.detection.tracking import ProductTracker, track_to_record


def frame(*items: tuple[list[float], float, str]) -> Detections:
    """Detections from (box, score, sku) triples."""
    if not items:
        return Detections.empty()
    return Detections(xyxy=np.array([i[0] for i in items], np.float32), confidence=[i[1] for i in items],
                      class_id=[0] * len(items), data={SKU: np.array([i[2] for i in items], dtype=object)})


def run(frames: list[Detections], fps: float = 4.0, **options: object) -> list:
    tracker = ProductTracker(**options)  # type: ignore[arg-type]
    for index, detections in enumerate(frames):
        tracker.update(detections, index, index / fps)
    return tracker.finish()


def test_two_moving_products_keep_their_tracks() -> None:
    frames = [frame(([10 + 8 * i, 10, 60 + 8 * i, 80], 0.9, "A"), ([200 - 8 * i, 20, 260 - 8 * i, 90], 0.8, "B"))
              for i in range(10)]
    tracks = run(frames)
    assert [t.sku for t in tracks] == ["A", "B"]
    assert all(len(t.samples) == 10 for t in tracks)
    assert tracks[0].start == 0.0 and tracks[0].end == 9 / 4


def test_one_wrong_frame_does_not_rename_a_track_and_a_gap_is_bridged() -> None:
    frames = [frame(([100, 100, 200, 220], 0.8, "CAP-BLACK")) for _ in range(8)]
    frames[3] = frame(([101, 100, 201, 221], 0.6, "CAP-RED"))  # one confusable frame
    frames[5] = frame()  # a blurry frame: nothing detected
    frames[6] = frame(([102, 101, 202, 221], 0.4, "CAP-BLACK"))  # weak: joins through the second pass
    (track,) = run(frames)
    assert track.sku == "CAP-BLACK" and len(track.samples) == 7
    candidates = dict(track.candidates())
    assert candidates["CAP-BLACK"] > candidates["CAP-RED"] > 0
    assert 0 < track.sku_confidence < 1


def test_lost_tracks_end_and_weak_detections_never_start_one() -> None:
    box = [50, 50, 150, 150]
    frames = [frame((box, 0.9, "A"))] * 3 + [frame()] * 6 + [frame((box, 0.9, "A"))] * 3
    frames.append(frame(([400, 50, 450, 100], 0.35, "B")))  # weak and alone: no track
    tracks = run(frames, max_lost=4)
    assert [(len(t.samples), t.sku) for t in tracks] == [(3, "A"), (3, "A")]
    assert tracks[0].track_id != tracks[1].track_id
    assert run([frame((box, 0.9, "A"))]) == []  # a single sighting is not a track (min_samples=2)


def test_tracker_ids_are_returned_and_candidates_vote() -> None:
    tracker = ProductTracker()
    detections = Detections(xyxy=[[0, 0, 10, 10]], confidence=[0.9], class_id=[0],
                            data={SKU: np.array(["A"], dtype=object),
                                  CANDIDATES: np.array([[("A", 0.9), ("B", 0.7)], None], dtype=object)[:1]})
    first = tracker.update(detections, 0, 0.0)
    second = tracker.update(detections, 1, 0.25)
    assert first.tracker_id.tolist() == second.tracker_id.tolist() == [1]
    (track,) = tracker.finish()
    assert track.votes["A"] > track.votes["B"] > 0
    record = track_to_record(track, 100, 50)
    assert record["samples"][0]["box"] == [0.0, 0.0, 0.1, 0.2] and record["sku"] == "A"
