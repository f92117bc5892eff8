"""Assets: uploaded photos and videos (multipart), their thumbnails, listing and deleting."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.assets import api, cli, job, service

FEATURE = Feature("assets", commands=cli.register, blueprints=(api.bp,), job_kinds=(job.THUMBNAIL_JOB,),
                  embed_providers={"asset": service.describe_asset_for_embed})
