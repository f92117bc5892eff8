"""Webhook subscriptions of a merchant (delivery itself is the platform's ``webhooks`` outbox)."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.webhooks import api

FEATURE = Feature("webhooks", blueprints=(api.bp,))
