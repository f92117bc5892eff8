"""Merchants and their API keys (operators' commands)."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.merchants import cli

FEATURE = Feature("merchants", commands=cli.register)
