"""The merchant's view of the job system: list, show, cancel, retry (HTTP and CLI)."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.jobs import api, cli

FEATURE = Feature("jobs", commands=cli.register, blueprints=(api.bp,))
