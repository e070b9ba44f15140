"""Which external source a JSON store request names: ``source.http.url``, ``source.s3.arn`` or ``url``.

Konifer's current body is ``{"source": {"http": {"url": ...}}}`` or ``{"source": {"s3": {"arn": ...}}}``;
the top-level ``url`` of spec 03 still works and is read only when ``source.http.url`` is absent. The
messages of every refusal are Konifer's own, word for word, so clients that show them stay unchanged.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import msgspec

from konifer_edge.domain.errors import BadRequest
from konifer_edge.sources.s3_object import S3ObjectSource

NO_SOURCE: Final = "URL or S3 ARN must be supplied"
TWO_SOURCES: Final = "Only one of source.http.url or source.s3.arn, or url can be supplied"
INVALID_ARN: Final = "Invalid ARN"
NOT_S3_OBJECT_ARN: Final = "Not an S3 object ARN"
NO_BUCKET_AND_KEY: Final = "S3 object ARN must contain a bucket and key"

# What java.net.URI refuses in a URL, which is where Konifer's "is not a valid URL" comes from.
_NOT_IN_URLS: Final = re.compile(r'[\x00-\x20\x7f"<>\\^`{|}]')
# What S3 clients accept as a bucket name (S3 itself is stricter, and answers for the rest).
_BUCKET: Final = re.compile(r"[a-zA-Z0-9._-]{1,255}")


class HttpSourceBody(msgspec.Struct, frozen=True):
    url: str | None = None


class S3SourceBody(msgspec.Struct, frozen=True):
    arn: str | None = None


class SourceBody(msgspec.Struct, frozen=True):
    http: HttpSourceBody | None = None
    s3: S3SourceBody | None = None

    @property
    def url(self) -> str | None:
        return None if self.http is None else self.http.url

    @property
    def arn(self) -> str | None:
        return None if self.s3 is None else self.s3.arn

    @property
    def names_any(self) -> bool:
        return self.url is not None or self.arn is not None


class UrlSource(msgspec.Struct, frozen=True):
    url: str


def choose_source(source: SourceBody | None, deprecated_url: str | None) -> UrlSource | S3ObjectSource:
    """The one source a store body names, validated; every problem is a 400 in Konifer's words."""
    arn = None if source is None else source.arn
    current = None if source is None else source.url
    url = current if current is not None else deprecated_url
    if url is None and arn is None:
        raise BadRequest(NO_SOURCE, reason="missing_source")
    if url is not None and arn is not None:
        raise BadRequest(TWO_SOURCES, reason="two_sources")
    if url is not None:
        return UrlSource(normalized_url(url))
    assert arn is not None
    return parse_s3_object_arn(arn)


def normalized_url(url: str) -> str:
    """``url`` with its dot segments resolved (``/a/../b`` is ``/b``), or 400 when it is no URL at all."""
    invalid = BadRequest(f"{url} is not a valid URL", reason="invalid_url")
    if not url or _NOT_IN_URLS.search(url):
        raise invalid
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it is what validates it
    except ValueError:
        raise invalid from None
    if parts.scheme and not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", parts.scheme):
        raise invalid
    return urlunsplit(parts._replace(path=remove_dot_segments(parts.path)))


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4."""
    output: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(output) > 1 or (output and output[0] != ""):
                output.pop()
        elif segment != ".":
            output.append(segment)
    if path.endswith(("/.", "/..")):
        output.append("")
    resolved = "/".join(output)
    if path.startswith("/") and not resolved.startswith("/"):
        resolved = "/" + resolved
    return resolved


def parse_s3_object_arn(arn: str) -> S3ObjectSource:
    """``arn:<partition>:s3:::<bucket>/<key>``, checked in the order Konifer checks it."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2] or not parts[5]:
        raise BadRequest(INVALID_ARN, reason="invalid_arn")
    _, _, service, region, account, resource = parts
    # The AWS SDK reads `type/` or `type:` with nothing after it as an ARN without a resource.
    separator = re.search(r"[:/]", resource)
    if separator is not None and separator.end() == len(resource):
        raise BadRequest(INVALID_ARN, reason="invalid_arn")
    if service != "s3" or region or account:
        raise BadRequest(NOT_S3_OBJECT_ARN, reason="invalid_arn")
    slash = resource.find("/")
    if slash <= 0 or slash == len(resource) - 1:
        raise BadRequest(NO_BUCKET_AND_KEY, reason="invalid_arn")
    bucket = resource[:slash]
    if not _BUCKET.fullmatch(bucket):
        # Konifer leaves this to S3; refusing it here keeps a bad request a 400, not an upstream failure.
        raise BadRequest(f"{bucket!r} in the S3 object ARN is not a bucket name", reason="invalid_arn")
    return S3ObjectSource(arn=arn, bucket=bucket, key=resource[slash + 1 :])
