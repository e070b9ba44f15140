"""The one failure type of URL sources, carrying the answer our API gives for it."""

from __future__ import annotations

from typing import Literal

UrlSourceReason = Literal[
    "invalid_url",
    "domain_not_allowed",
    "private_address",
    "too_large",
    "upstream_status",
    "upstream_unreachable",
    "timeout",
    "too_many_redirects",
]


class UrlSourceError(Exception):
    """A URL source could not be downloaded.

    `status` is the HTTP status our API answers with, `reason` a short machine code and `message` a
    sentence for the client. Messages quote user input with `repr` so control characters cannot forge
    log lines or break out of a JSON string built by hand, and never include internal addresses or
    stack traces.
    """

    status: int
    reason: UrlSourceReason
    message: str

    def __init__(self, status: int, reason: UrlSourceReason, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"UrlSourceError(status={self.status}, reason={self.reason!r}, message={self.message!r})"
