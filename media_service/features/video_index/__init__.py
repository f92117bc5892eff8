"""Products in videos: indexing (detection + tracking), tracks, taps with cut-outs, add to cart."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.video_index import api, cli, job, service

FEATURE = Feature("video_index", commands=cli.register, blueprints=(api.bp,), job_kinds=(job.INDEX_JOB,),
                  asset_dependents=(service.indexes_of_asset,))
