"""Fun-logo prize campaigns: logo fragments in promo videos, collected by shoppers, a verifiable draw."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.campaigns import api, cli, job, service

FEATURE = Feature("campaigns", commands=cli.register, blueprints=(api.bp,), job_kinds=(job.RENDER_JOB,),
                  embed_providers={"campaign": service.describe_campaign_for_embed},
                  asset_dependents=(service.campaigns_of_asset,), chores=(service.close_ended,),
                  webhook_events=service.EVENTS)
