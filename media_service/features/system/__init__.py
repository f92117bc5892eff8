"""Service-level pages: the landing page, health, the OpenAPI document and its docs page."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.system import api

FEATURE = Feature("system", blueprints=(api.bp,))
