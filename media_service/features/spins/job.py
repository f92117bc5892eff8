"""``spins.build``: a turntable photo set or video (storage keys) in; frames, sprite and manifest out.

A thin shell around :mod:`media_service.media.panorama.build`, publishing like ``panoramas.stitch`` does.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from sqlalchemy.orm import Session

from media_service import media_options
from media_service.features.panoramas.job import local_input, publish_folder
from media_service.jobs.base import JobContext, JobKind
from media_service.jobs.resources import record_result
from media_service.media.panorama.build import build_spin_from_photos, build_spin_from_video, spin_options
from media_service.media.spin import SpinPhoto
from media_service.models import Job, Spin


def _record_spin(session: Session, job: Job) -> list[str]:
    return record_result(session, session.get(Spin, job.params["spin_id"]), job)


def build_spin(ctx: JobContext) -> dict[str, Any]:
    params = ctx.params
    limits = media_options.spin_limits(ctx.settings)
    options = spin_options(params.get("frames"), params.get("options"), limits)
    prefix = ctx.output_key("spin")
    with ExitStack() as stack:
        staging = stack.enter_context(ctx.storage.staging_dir())
        out_dir = staging / "out"
        out_dir.mkdir()
        progress = lambda f: ctx.progress(0.95 * f)  # noqa: E731
        if params["source"] == "video":
            video = local_input(stack, ctx.storage, params["video"])
            manifest = build_spin_from_video(video, out_dir, limits, options, progress)
        else:
            photos = [SpinPhoto(local_input(stack, ctx.storage, photo), photo.get("name", ""))
                      for photo in params["photos"]]
            manifest = build_spin_from_photos(photos, out_dir, limits, options, progress)
        publish_folder(ctx.storage, out_dir, prefix)
    return {"spin_id": params["spin_id"], "prefix": prefix, "frame_count": manifest["frame_count"],
            "manifest": manifest}


BUILD_JOB = JobKind("spins.build", build_spin, on_success=_record_spin)
