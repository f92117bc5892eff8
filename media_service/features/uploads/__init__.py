"""Resumable uploads (tus 1.0) that become assets."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.uploads import api, service

FEATURE = Feature("uploads", blueprints=(api.bp,), chores=(service.expire_uploads,))
