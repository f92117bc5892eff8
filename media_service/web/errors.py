"""Rendering every error as ``application/problem+json``: ours, werkzeug's, and unexpected ones."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from media_service.errors import MediaServiceError

log = logging.getLogger(__name__)

_WERKZEUG_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                   405: "method_not_allowed", 408: "request_timeout", 411: "length_required",
                   413: "payload_too_large", 415: "unsupported_media_type", 429: "too_many_requests"}


def problem_response(problem: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = current_app.json.response(problem)
    response.status_code = problem["status"]
    response.mimetype = "application/problem+json"
    if request.method == "HEAD":
        response.set_data(b"")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(MediaServiceError)
    def handle_ours(exc: MediaServiceError) -> Response:
        if exc.status >= 500:
            log.error("%s: %s", exc.code, exc.detail)
        return problem_response(exc.to_problem(), exc.headers())

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException) -> Response:
        status = exc.code or 500
        detail = exc.description or exc.name
        if status == 404:
            detail = f"no such endpoint: {request.method} {request.path}; see /v1/openapi.json"
        elif status == 405:
            detail = f"{request.method} is not allowed on {request.path}; see /v1/openapi.json"
        problem = {"type": f"https://media-service.dev/problems/{_WERKZEUG_CODES.get(status, 'http_error')}",
                   "title": exc.name, "status": status, "detail": detail,
                   "code": _WERKZEUG_CODES.get(status, "http_error")}
        headers = dict(exc.get_headers()) if status == 405 else {}
        headers.pop("Content-Type", None)
        return problem_response(problem, headers)

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response({"type": "https://media-service.dev/problems/internal_error",
                                 "title": "Internal error", "status": 500, "code": "internal_error",
                                 "detail": "the service failed unexpectedly; the error was logged"})
