"""The HTTP API: one blueprint per resource."""

from __future__ import annotations

from flask import Flask

from media_service.api import assets, files, jobs, system, uploads, webhooks


def register_blueprints(app: Flask) -> None:
    for module in (system, files, assets, uploads, jobs, webhooks):
        app.register_blueprint(module.bp)
