"""media-service: rich product media for online merchants, as a Flask service."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Flask is imported by create_app only: the media pipelines run without loading it
    from flask import Flask

__version__ = "0.1.0"

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application: settings, database, storage, error handling, then every feature of ``FEATURES``.

    The imports are here, not at the top, so that ``import media_service`` (done by every engine and job
    process) does not load Flask and every feature.
    """
    # Imported on call: every `import media_service.<anything>` runs this file, and engines and job
    # processes must not load Flask and every feature for it.
    from flask import Flask, request

    from media_service import db
    from media_service.config import load_settings
    from media_service.features import FEATURES, install
    from media_service.jobs.base import LocalExecutor, set_executor
    from media_service.media.ingest.images import configure_image_limits
    from media_service.media_options import ingest_limits
    from media_service.security.ratelimit import RateLimiter
    from media_service.storage import make_storage
    from media_service.web import files
    from media_service.web.compression import register_compression
    from media_service.web.errors import register_error_handlers
    from media_service.web.requests import MediaRequest, remove_spool_files

    settings = load_settings(test_config)
    configure_image_limits(ingest_limits(settings))
    app = Flask(__name__, static_folder=str(PROJECT_ROOT / "static"), static_url_path="/static")
    app.config.update(settings)
    app.request_class = MediaRequest
    if settings["TRUSTED_PROXIES"] > 0:  # the shopper's address and the public scheme/host come from the proxy
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    logging.basicConfig(level=settings["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    db.init_app(app)
    app.extensions["storage"] = make_storage(settings)
    app.extensions["shopper_limiter"] = RateLimiter(settings["SHOPPER_RATE_PER_MINUTE"],
                                                    settings["SHOPPER_RATE_BURST"])
    app.extensions["executor"] = LocalExecutor()
    set_executor(app.extensions["executor"])
    app.teardown_request(remove_spool_files)
    register_error_handlers(app)
    install()
    app.register_blueprint(files.bp)
    for feature in FEATURES:
        for blueprint in feature.blueprints:
            app.register_blueprint(blueprint)
    register_compression(app)

    @app.after_request
    def static_is_embeddable(response: Any) -> Any:
        # the widget script is loaded as a module from merchants' pages, which needs CORS
        if request.path.startswith("/static/"):
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    from media_service.cli import register_cli  # on call, as above (the CLI imports every feature)

    register_cli(app)
    return app
