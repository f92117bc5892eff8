"""Product spins from turntable photo sets or a turntable video."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.spins import api, cli, job, service

FEATURE = Feature("spins", commands=cli.register, blueprints=(api.bp,), job_kinds=(job.BUILD_JOB,),
                  embed_providers={"spin": service.describe_spin_for_embed})
