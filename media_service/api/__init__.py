"""The HTTP API: one blueprint per resource."""

from __future__ import annotations

from flask import Flask

from media_service.api import (
    assets,
    batches,
    embed,
    files,
    jobs,
    panoramas,
    products,
    spins,
    system,
    upload_tokens,
    uploads,
    video_index,
    videos,
    webhooks,
)


def register_blueprints(app: Flask) -> None:
    for module in (system, files, assets, uploads, jobs, webhooks, embed, videos, batches, upload_tokens,
                   panoramas, spins, products, video_index):
        app.register_blueprint(module.bp)
