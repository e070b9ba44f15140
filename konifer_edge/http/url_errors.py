"""URL-source failures as API errors, with the statuses Konifer answers."""

from __future__ import annotations

from konifer_edge.domain.errors import ApiError
from konifer_edge.sources.url import UrlSourceError

# Konifer: a refused host is 403; a URL it cannot use, or an upstream 4xx, is 422;
# an upstream it cannot reach or that fails is 502; a timeout is 504.
_STATUS_BY_REASON = {
    "domain_not_allowed": 403,
    "private_address": 403,
    "invalid_url": 422,
    "too_many_redirects": 422,
    "upstream_status": 502,
    "upstream_unreachable": 502,
    "too_large": 413,
    "timeout": 504,
}


def url_source_api_error(error: UrlSourceError) -> ApiError:
    api_error = ApiError(error.message, reason=error.reason)
    api_error.status = _STATUS_BY_REASON.get(error.reason, error.status)
    return api_error
