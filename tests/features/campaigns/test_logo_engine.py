"""The logo engine on the real logos: alpha and keying, fragments, the placement planner, the burned-in render.

Real files (shared/media/logos, shared/media/video), real OpenCV and ffmpeg. The preview sheet and a frame of the
burned-in video are written to test-artifacts/campaigns/ to be looked at.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from media_service.errors import MediaServiceError
from media_service.media.logo.fragments import FragmentOptions, cut_fragments, encode_png
from media_service.media.logo.planner import AvoidRegion, PlanOptions, check_plan, plan_placements
from media_service.media.logo.prepare import prepare_logo
from media_service.media.logo.render import RenderOptions, preview_sheet, render_burned
from tests.conftest import REPO, media

LOGOS = ["moviepy_logo.png", "python_logo.png", "scikit-video_logo.png", "solidus_logo.png"]
ARTIFACTS = REPO / "test-artifacts" / "campaigns"


def frame_at(path: Path, t: float) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{t:.3f}", "-i", str(path), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "bgr24", "-"], check=True, capture_output=True).stdout
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True).stdout
    w, h = (int(v) for v in probe.strip().split(","))
    return np.frombuffer(raw, np.uint8).reshape(h, w, 3)


@pytest.mark.parametrize("name", LOGOS)
def test_real_logos_keep_their_alpha_and_reach_the_working_size(name: str) -> None:
    original = cv2.imread(str(media(f"logos/{name}")), cv2.IMREAD_UNCHANGED)
    logo = prepare_logo(media(f"logos/{name}"))
    assert not logo.keyed and max(logo.rgba.shape[:2]) == 480
    # the transparent share is about the same after trimming margins and scaling
    visible = (original[..., 3] > 16).sum() / original[..., 3].size
    assert (logo.rgba[..., 3] > 16).mean() >= visible * 0.95


def test_a_logo_on_a_flat_background_is_keyed_out(tmp_path: Path) -> None:
    original = cv2.imread(str(media("logos/scikit-video_logo.png")), cv2.IMREAD_UNCHANGED)
    alpha = original[..., 3:4].astype(np.float32) / 255
    on_white = (original[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    path = tmp_path / "on_white.jpg"
    cv2.imwrite(str(path), on_white, [cv2.IMWRITE_JPEG_QUALITY, 90])
    logo = prepare_logo(path)
    assert logo.keyed
    ys, xs = np.nonzero(original[..., 3] > 16)  # the prepared logo is trimmed to its visible pixels
    trimmed = original[ys.min():ys.max() + 1, xs.min():xs.max() + 1, 3]
    expected = cv2.resize((trimmed > 128).astype(np.uint8), logo.rgba.shape[1::-1]) > 0
    got = logo.rgba[..., 3] > 128
    iou = (got & expected).sum() / (got | expected).sum()
    assert iou > 0.85, iou


def test_unusable_logos_are_refused_with_a_reason(tmp_path: Path) -> None:
    svg = tmp_path / "logo.svg"
    svg.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">'
                   '<script>alert(1)</script><image href="http://example.com/x.png"/></svg>')
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.dstack([np.zeros((16, 16, 3), np.uint8), np.full((16, 16), 255, np.uint8)]))
    photo = tmp_path / "photo.png"  # no alpha and a busy background: cannot be keyed
    cv2.imwrite(str(photo), cv2.imread(str(media("products/catalog/solidus_bottles_1.png")))[:, :, :3] // 2
                + np.random.default_rng(1).integers(0, 120, (1190, 1360, 3), dtype=np.uint8))
    for path, code in ((svg, "logo_svg_unsupported"), (tiny, "logo_too_small"), (photo, "logo_no_alpha")):
        with pytest.raises(MediaServiceError) as caught:
            prepare_logo(path)
        assert caught.value.code == code, (path.name, caught.value.code)
        assert len(caught.value.detail) > 40  # says what to do


def test_a_32px_logo_is_upscaled_with_clean_edges(tmp_path: Path) -> None:
    big = cv2.imread(str(media("logos/scikit-video_logo.png")), cv2.IMREAD_UNCHANGED).astype(np.float32)
    alpha = big[..., 3:4] / 255  # a clean small export: colour downscaled premultiplied, like a design tool does
    small_alpha = cv2.resize(alpha, (32, 32), interpolation=cv2.INTER_AREA)[..., None]
    colour = cv2.resize(big[..., :3] * alpha, (32, 32), interpolation=cv2.INTER_AREA) / np.maximum(small_alpha, 1e-3)
    small = np.dstack([colour, small_alpha * 255]).clip(0, 255).astype(np.uint8)
    path = tmp_path / "small.png"
    cv2.imwrite(str(path), small)
    logo = prepare_logo(path)
    assert max(logo.rgba.shape[:2]) == 480 and logo.scale > 10
    # premultiplied resizing: no dark fringe where alpha is partial
    edge = (logo.rgba[..., 3] > 20) & (logo.rgba[..., 3] < 200)
    assert logo.rgba[..., :3][edge].mean() > 0.6 * logo.rgba[..., :3][logo.rgba[..., 3] > 250].mean()


@pytest.mark.parametrize("count", [3, 5, 12])
def test_fragments_partition_the_logo_and_are_seeded(count: int) -> None:
    logo = prepare_logo(media("logos/moviepy_logo.png")).rgba
    pieces = cut_fragments(logo, FragmentOptions(count, seed=11))
    assert len(pieces) == count
    assert sum(p.area for p in pieces) == int((logo[..., 3] > 16).sum())  # every visible pixel, once
    again = cut_fragments(logo, FragmentOptions(count, seed=11))
    assert [p.logo_box for p in again] == [p.logo_box for p in pieces]
    other = cut_fragments(logo, FragmentOptions(count, seed=12))
    assert [p.logo_box for p in other] != [p.logo_box for p in pieces]
    for piece in pieces:  # the hit polygon covers the piece's visible pixels
        ys, xs = np.nonzero(piece.rgba[..., 3] > 200)
        inside = [cv2.pointPolygonTest(piece.polygon.reshape(-1, 1, 2), (float(x), float(y)), True) >= -1.5
                  for x, y in zip(xs[::7], ys[::7], strict=True)]
        assert np.mean(inside) > 0.97


def test_bad_counts_are_refused() -> None:
    logo = prepare_logo(media("logos/moviepy_logo.png")).rgba
    for count in (2, 13, True):
        with pytest.raises(MediaServiceError) as caught:
            cut_fragments(logo, FragmentOptions(count, seed=1))  # type: ignore[arg-type]
        assert caught.value.code == "invalid_fragment_count"


def test_plans_keep_every_rule_for_many_seeds_and_are_deterministic() -> None:
    logo = prepare_logo(media("logos/scikit-video_logo.png")).rgba
    face = AvoidRegion(0.0, 3.0, (0.35, 0.1, 0.65, 0.6), "face")
    for count in (3, 6, 12):
        sizes = [p.size for p in cut_fragments(logo, FragmentOptions(count, seed=count))]
        for seed in range(15):
            options = PlanOptions(seed=seed, duration=12.0, width=1280, height=720, avoid=(face,))
            plan = plan_placements(sizes, options)
            assert check_plan(plan, options) == [], (count, seed)
            assert plan.to_dict() == plan_placements(sizes, options).to_dict()
    with pytest.raises(MediaServiceError) as caught:
        plan_placements(sizes, PlanOptions(seed=1, duration=3.0, width=1280, height=720))
    assert caught.value.code == "video_too_short"


def test_check_plan_catches_a_broken_plan() -> None:
    logo = prepare_logo(media("logos/python_logo.png")).rgba
    sizes = [p.size for p in cut_fragments(logo, FragmentOptions(4, seed=2))]
    options = PlanOptions(seed=5, duration=8.0, width=960, height=540)
    plan = plan_placements(sizes, options)
    bad = PlanOptions(seed=5, duration=8.0, width=960, height=540, min_seconds=10.0,
                      avoid=(AvoidRegion(0, 8, (0.0, 0.0, 1.0, 1.0)),))
    problems = check_plan(plan, bad)
    assert any("min_seconds" in p for p in problems) and any("covers" in p for p in problems)


def test_burned_in_fragments_appear_in_their_windows_only(tmp_path: Path) -> None:
    source = media("video/bigbuckbunny.mp4")
    logo = prepare_logo(media("logos/scikit-video_logo.png")).rgba
    pieces = cut_fragments(logo, FragmentOptions(4, seed=3))
    pngs = []
    for piece in pieces:
        path = tmp_path / f"f{piece.index}.png"
        path.write_bytes(encode_png(piece.rgba))
        pngs.append(path)
    options = PlanOptions(seed=9, duration=5.3, width=1280, height=720)
    plan = plan_placements([p.size for p in pieces], options)
    out = tmp_path / "burned.mp4"
    render_burned(source, pngs, plan.placements, 1280, 720, 5.3, out, RenderOptions(audio="aac"))
    first = plan.placements[0]
    middle = (first.start + first.end) / 2
    burned, clean = frame_at(out, middle).astype(int), frame_at(source, middle).astype(int)
    x, y, w, h = first.box()
    inner = (slice(int((y + h * 0.3) * 720), int((y + h * 0.7) * 720)),
             slice(int((x + w * 0.3) * 1280), int((x + w * 0.7) * 1280)))
    assert np.abs(burned[inner] - clean[inner]).mean() > 20  # the fragment is there
    outside = np.ones((720, 1280), bool)
    for p in plan.placements:
        if p.start - 0.1 <= middle <= p.end + 0.1:
            bx, by, bw, bh = p.slot
            outside[max(0, int(by * 720) - 12):int((by + bh) * 720) + 12, max(0, int(bx * 1280) - 12):
                    int((bx + bw) * 1280) + 12] = False
    assert np.abs(burned[outside] - clean[outside]).mean() < 4  # nothing else changed (encoding noise only)
    before = min(p.start for p in plan.placements) - 0.15
    assert np.abs(frame_at(out, before).astype(int) - frame_at(source, before).astype(int)).mean() < 4
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(ARTIFACTS / "burned_frame.png"), burned.astype(np.uint8))
    preview_sheet(source, [p.rgba for p in pieces], plan.placements, [], ARTIFACTS / "preview_sheet.png", tmp_path)
    assert cv2.imread(str(ARTIFACTS / "preview_sheet.png")) is not None
