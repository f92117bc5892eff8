"""A job kind used only by the job-system tests: slow enough to be killed mid-run.

It is registered through the real ``JOB_MODULES`` setting and run by real worker processes; it copies
an object in steps, reporting progress, and publishes its single output under the job's own key, like
every pipeline. Each run appends a line to ``runs.log`` in the data folder so tests can count attempts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from media_service.errors import ProcessingError
from media_service.jobs.base import JobContext, job_kind

STEPS = 20


@job_kind("test.slow_copy")
def slow_copy(ctx: JobContext) -> dict:
    log = Path(ctx.settings["DATA_DIR"]) / "runs.log"
    with log.open("a") as handle:
        handle.write(f"{ctx.job_id} {os.getpid()}\n")
    step_seconds = float(ctx.params.get("step_seconds", 0.1))
    with ctx.storage.open(ctx.params["source_key"]) as source:
        data = source.read()
    for step in range(STEPS):
        time.sleep(step_seconds)
        ctx.progress((step + 1) / STEPS)
    key = ctx.output_key("copy.bin")
    with ctx.storage.staging_dir() as staging:
        target = staging / "copy.bin"
        target.write_bytes(data)
        ctx.storage.put_file(key, target, move=True)
    return {"output_key": key, "size": len(data)}


@job_kind("test.fails")
def fails(ctx: JobContext) -> dict:
    raise ProcessingError("the input has no video stream; upload a video", code="no_video_stream")


@job_kind("test.crashes")
def crashes(ctx: JobContext) -> dict:
    return {"value": 1 / 0}
