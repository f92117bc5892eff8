"""Buyer upload tokens: one upload each, minted by the merchant's backend for a buyer."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.upload_tokens import api, service

FEATURE = Feature("upload_tokens", blueprints=(api.bp,),
                  token_verifiers={service.TOKEN_PREFIX: service.verify_upload_token})
