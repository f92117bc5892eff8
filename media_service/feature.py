"""What a feature package contributes to the service, declared in one place.

Each package under ``media_service/features/`` exposes one ``FEATURE``; ``media_service.features.FEATURES``
lists them, and the application factory, the worker and the CLI iterate that list. Nothing registers itself
by being imported: what exists is readable in ``features/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import click
    from flask import Blueprint
    from sqlalchemy.orm import Session

    from media_service.jobs.base import JobKind
    from media_service.jobs.resources import DependentsFinder
    from media_service.security.api_keys import TokenVerifier

#: Describes an item of the feature for the embeddable widget: ``(session, merchant_id, item_id) -> manifest``.
EmbedProvider = Callable[["Session", str, str], dict[str, Any]]


@dataclass(frozen=True)
class Feature:
    """One capability of the service: its HTTP views, job kinds, CLI commands and hooks into shared rules.

    ``embed_providers`` maps an embeddable kind (``"video"``) to the function that describes such an item;
    ``asset_dependents`` find what the feature made from an asset (deleted with it); ``token_verifiers``
    check bearer credentials other than API keys, by prefix; ``commands`` adds the feature's CLI commands
    to the root group; ``chores`` are periodic housekeeping the worker's supervisor runs.
    """

    name: str
    blueprints: tuple[Blueprint, ...] = ()
    job_kinds: tuple[JobKind, ...] = ()
    embed_providers: Mapping[str, EmbedProvider] = field(default_factory=dict)
    asset_dependents: tuple[DependentsFinder, ...] = ()
    token_verifiers: Mapping[str, TokenVerifier] = field(default_factory=dict)
    commands: Callable[[click.Group], None] | None = None
    #: Run by the worker's supervisor every round: ``chore(session, settings)`` (e.g. expiring uploads).
    chores: tuple[Callable[[Session, Mapping[str, Any]], Any], ...] = ()
    #: Webhook event names the feature sends (``campaign.drawn``); merchants may subscribe to them by name.
    webhook_events: tuple[str, ...] = ()
