"""One error tree for the whole service.

Every error carries a stable machine-readable ``code``, an HTTP ``status`` and a ``detail`` that tells
the caller what to do about it. The API renders them as RFC 9457 problem details
(``application/problem+json``); jobs record them as their ``error``.
"""

from __future__ import annotations

from typing import Any


class MediaServiceError(Exception):
    """Base of every error the service raises on purpose."""

    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra

    def to_problem(self) -> dict[str, Any]:
        """The error as an RFC 9457 problem-details object."""
        problem: dict[str, Any] = {
            "type": f"https://media-service.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        problem.update(self.extra)
        return problem

    def headers(self) -> dict[str, str]:
        """HTTP headers that go with this error (none by default)."""
        return {}


class ConfigError(MediaServiceError):
    code = "config_error"
    title = "Invalid configuration"


class BadRequest(MediaServiceError):
    status = 400
    code = "bad_request"
    title = "Bad request"


class Unauthorized(MediaServiceError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"


class Forbidden(MediaServiceError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(MediaServiceError):
    status = 404
    code = "not_found"
    title = "Not found"


class MethodNotAllowed(MediaServiceError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class Conflict(MediaServiceError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Gone(MediaServiceError):
    status = 410
    code = "gone"
    title = "Gone"


class PreconditionFailed(MediaServiceError):
    status = 412
    code = "precondition_failed"
    title = "Precondition failed"


class PayloadTooLarge(MediaServiceError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class UnsupportedMediaType(MediaServiceError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class InvalidMedia(MediaServiceError):
    """The file is of an accepted type but cannot be used (truncated, too big, too long, ...)."""

    status = 422
    code = "invalid_media"
    title = "Unusable media"


class Locked(MediaServiceError):
    status = 423
    code = "locked"
    title = "Resource locked"


class ChecksumMismatch(MediaServiceError):
    """tus checksum extension: the body does not match ``Upload-Checksum``."""

    status = 460
    code = "checksum_mismatch"
    title = "Checksum mismatch"


class TooManyRequests(MediaServiceError):
    """A caller went over its rate limit; ``retry_after`` seconds from now it may go on."""

    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extra)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class InsufficientStorage(MediaServiceError):
    """The disk (or bucket) is full: nothing was published; the caller can retry later."""

    status = 507
    code = "storage_full"
    title = "Insufficient storage"


class ServiceUnavailable(MediaServiceError):
    status = 503
    code = "service_unavailable"
    title = "Service unavailable"


class ProcessingError(MediaServiceError):
    """A job step failed on input that passed validation (recorded on the job, not raised to HTTP)."""

    status = 422
    code = "processing_failed"
    title = "Processing failed"


class JobCancelled(MediaServiceError):
    status = 409
    code = "job_cancelled"
    title = "Job cancelled"
