"""The product catalog: SKUs with photos (indexed for matching), cards and the cart webhook setting."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.products import api, cli

FEATURE = Feature("products", commands=cli.register, blueprints=(api.bp,))
