"""Embedding media on merchants' pages: tokens, manifests, the iframe page, oEmbed and view events."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.embed import api

FEATURE = Feature("embed", blueprints=(api.bp,))
