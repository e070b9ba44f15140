"""Failures the API reports to clients. Each carries its HTTP status and a sentence that says what is wrong."""

from __future__ import annotations


class ApiError(Exception):
    status = 500
    reason = "internal_error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class BadRequest(ApiError):
    status = 400
    reason = "bad_request"


class Forbidden(ApiError):
    status = 403
    reason = "forbidden"


class NotFound(ApiError):
    status = 404
    reason = "not_found"


class Gone(ApiError):
    status = 410
    reason = "gone"


class PayloadTooLarge(ApiError):
    status = 413
    reason = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    reason = "unsupported_media_type"


class UpstreamFailed(ApiError):
    status = 502
    reason = "upstream_failed"


class ServiceUnavailable(ApiError):
    status = 503
    reason = "service_unavailable"
