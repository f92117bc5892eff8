"""The merchant's web console at ``/console/``: sign-in for merchant users (owner, editor, reviewer), the
library with resumable uploads, buyer-show review, panoramas and spins, products in videos, embeds,
insights, jobs and prize campaigns; ``media-service users`` invites people."""

from __future__ import annotations

from media_service.feature import Feature
from media_service.features.console import api, campaigns, cli, insights, service, studio

_PAGES = (insights, studio, campaigns)  # their views register on ``api.bp``

FEATURE = Feature("console", blueprints=(api.bp,), commands=cli.register,
                  token_verifiers={service.UPLOAD_PREFIX: service.verify_upload_credential})
