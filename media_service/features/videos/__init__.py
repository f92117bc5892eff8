"""Buyer-show, promo and home-page videos: processing, moderation, publishing."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.videos import api, cli, job, service

FEATURE = Feature("videos", commands=cli.register, blueprints=(api.bp,), job_kinds=(job.PROCESS_JOB,),
                  embed_providers={"video": service.describe_video_for_embed},
                  asset_dependents=(service.videos_of_asset,))
