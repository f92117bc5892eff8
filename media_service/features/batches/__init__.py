"""Batches: many videos processed with one profile, with progress, retries and a report."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.batches import api, cli

FEATURE = Feature("batches", commands=cli.register, blueprints=(api.bp,))
