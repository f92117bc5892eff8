"""``campaigns.render``: the logo cut into fragments, their plan, the preview sheet and video, and in
``burned`` mode the burned-in MP4 with its poster.

Inputs are storage keys (the logo asset, the processed video's MP4 rendition); outputs go to a staging
folder and are published under the job's own keys (a re-run overwrites them). Faces are found with the
Haar cascade when it is installed (the plan says when it was not); product regions come with the job's
parameters, from the video's newest ready index when the campaign was created.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from media_service.errors import ProcessingError
from media_service.jobs.base import JobContext, JobKind
from media_service.media.logo.fragments import FragmentOptions, cut_fragments, encode_png
from media_service.media.logo.planner import AvoidRegion, PlanOptions, check_plan, plan_placements
from media_service.media.logo.prepare import prepare_logo
from media_service.media.logo.render import RenderOptions, detect_faces, extract_frame, preview_sheet, render_burned
from media_service.media.video.faces import find_cascade
from media_service.models import Campaign, Job
from media_service.storage import Storage

PREVIEW_HEIGHT = 360


def publish_folder(storage: Storage, folder: Path, prefix: str) -> None:
    """Store every file under ``folder`` at ``prefix/<relative path>``."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        storage.put_file(f"{prefix}/{path.relative_to(folder).as_posix()}", path, move=True)


def render_campaign(ctx: JobContext) -> dict[str, Any]:
    params, settings = ctx.params, ctx.settings
    prefix = ctx.output_key("campaign")
    width, height, duration = int(params["width"]), int(params["height"]), float(params["duration"])
    binary, timeout = settings["FFMPEG_BINARY"], settings["FFMPEG_TIMEOUT_SECONDS"]
    with ExitStack() as stack:
        try:
            logo_path = stack.enter_context(ctx.storage.local_path(params["logo_key"]))
            video_path = stack.enter_context(ctx.storage.local_path(params["video_key"]))
        except FileNotFoundError as exc:
            raise ProcessingError("the logo or the video was deleted after the campaign was created",
                                  code="input_missing") from exc
        work = stack.enter_context(ctx.storage.staging_dir())
        out = work / "out"
        (out / "fragments").mkdir(parents=True)
        logo = prepare_logo(logo_path)
        fragments = cut_fragments(logo.rgba, FragmentOptions(int(params["fragments"]), int(params["seed"])))
        pngs = []
        for fragment in fragments:
            path = out / "fragments" / f"{fragment.index}.png"
            path.write_bytes(encode_png(fragment.rgba))
            pngs.append(path)
        ctx.progress(0.1)
        avoid = [AvoidRegion(r[0], r[1], (r[2], r[3], r[4], r[5]), "product") for r in params.get("avoid") or []]
        notes = []
        try:
            cascade = find_cascade(settings["VIDEO_FACE_CASCADE"])
            faces = detect_faces(video_path, duration, cascade, work, binary=binary, timeout=timeout)
        except ProcessingError as exc:
            faces, notes = [], [f"faces were not avoided: {exc.detail}"]
        avoid += faces
        ctx.progress(0.3)
        options = PlanOptions(seed=int(params["seed"]), duration=duration, width=width, height=height,
                              avoid=tuple(avoid))
        plan = plan_placements([f.size for f in fragments], options)
        problems = check_plan(plan, options)
        if problems:  # the planner's own rules, checked again: never publish an unfair plan
            raise ProcessingError(f"the plan breaks its rules: {'; '.join(problems)}", code="unfair_plan")
        preview_sheet(video_path, [f.rgba for f in fragments], plan.placements, avoid, out / "preview.jpg", work)
        ctx.progress(0.45)
        render_burned(video_path, pngs, plan.placements, width, height, duration, out / "preview.mp4",
                      RenderOptions(binary=binary, timeout=timeout, height=PREVIEW_HEIGHT, audio="none", crf=28),
                      on_progress=lambda f: ctx.progress(0.45 + 0.15 * f))
        outputs: dict[str, Any] = {"prefix": prefix, "sheet": "preview.jpg", "preview": "preview.mp4",
                                   "fragments": [f"fragments/{f.index}.png" for f in fragments]}
        if params["mode"] == "burned":
            render_burned(video_path, pngs, plan.placements, width, height, duration, out / "burned.mp4",
                          RenderOptions(binary=binary, timeout=timeout),
                          on_progress=lambda f: ctx.progress(0.6 + 0.35 * f))
            first = plan.placements[0]
            extract_frame(out / "burned.mp4", (first.start + first.end) / 2, work / "poster.png", binary=binary)
            Path(work / "poster.png").rename(out / "poster.png")
            outputs.update({"burned": "burned.mp4", "poster": "poster.png"})
        publish_folder(ctx.storage, out, prefix)
    notes += ["logo background keyed out"] if logo.keyed else []
    return {"campaign_id": params["campaign_id"], "prefix": prefix, "outputs": outputs, "plan": {
        **plan.to_dict(), "frame": [width, height], "notes": plan.notes + notes,
        "fragments": [{"index": f.index, "polygon": f.normalised_polygon(), "pixels": list(f.size)}
                      for f in fragments],
        "avoided": {"products": len(avoid) - len(faces), "faces": len(faces)}}}


def _record(session: Session, job: Job) -> list[str]:
    campaign = session.get(Campaign, job.params["campaign_id"])
    if campaign is None:
        return [job.result["prefix"]] if job.result else []
    if job.result:
        campaign.plan, campaign.outputs, campaign.rendered = job.result["plan"], job.result["outputs"], True
    return []


RENDER_JOB = JobKind("campaigns.render", render_campaign, on_success=_record)
