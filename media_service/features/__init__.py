"""The features of the service, in one list: what exists is readable here.

Each feature is a package with ``service.py`` (its rules), ``api.py`` (thin HTTP views), ``job.py`` (its job
kinds) and ``cli.py`` (its commands), as it needs them, and declares what it contributes in one ``FEATURE``
(``media_service.feature.Feature``). The application factory, the worker and the CLI iterate ``FEATURES``.
To add a feature: create its package and add one line below.
"""

from __future__ import annotations

from typing import Any

from media_service import feature
from media_service.features import (
    assets,
    batches,
    campaigns,
    console,
    embed,
    jobs,
    merchants,
    panoramas,
    products,
    spins,
    system,
    upload_tokens,
    uploads,
    video_index,
    videos,
    webhooks,
)
from media_service.features.assets.service import register_dependents
from media_service.features.embed.service import register_providers
from media_service.jobs.base import JobKind, register_job_kinds
from media_service.security.api_keys import register_token_verifier
from media_service.webhooks import register_events

FEATURES: tuple[feature.Feature, ...] = (
    system.FEATURE,
    assets.FEATURE,
    uploads.FEATURE,
    jobs.FEATURE,
    webhooks.FEATURE,
    embed.FEATURE,
    videos.FEATURE,
    batches.FEATURE,
    upload_tokens.FEATURE,
    panoramas.FEATURE,
    spins.FEATURE,
    products.FEATURE,
    video_index.FEATURE,
    merchants.FEATURE,
    campaigns.FEATURE,
    console.FEATURE,
)


def job_kinds() -> list[JobKind]:
    """Every feature's job kinds (a module-level function: worker processes receive it by reference)."""
    return [kind for item in FEATURES for kind in item.job_kinds]


def chores() -> list[Any]:
    """Every feature's periodic housekeeping, for the worker's supervisor."""
    return [chore for item in FEATURES for chore in item.chores]


def install() -> None:
    """Hand the features' job kinds, embed providers, asset dependents, token verifiers and webhook events to
    the shared registries. Idempotent; the application factory and every worker process call it."""
    register_job_kinds(job_kinds())
    for item in FEATURES:
        register_providers(item.embed_providers)
        register_dependents(item.asset_dependents)
        register_events(item.webhook_events)
        for prefix, verifier in item.token_verifiers.items():
            register_token_verifier(prefix, verifier)
