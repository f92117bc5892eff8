"""360° panoramas stitched from overlapping photos."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.panoramas import api, cli, job, service

FEATURE = Feature("panoramas", commands=cli.register, blueprints=(api.bp,), job_kinds=(job.STITCH_JOB,),
                  embed_providers={"panorama": service.describe_panorama_for_embed})
