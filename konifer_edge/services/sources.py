"""Reading the image a store or a rule evaluation names by URL or by S3 ARN, instead of sending it."""

from __future__ import annotations

from typing import Protocol

from konifer_edge.observability import metrics
from konifer_edge.services.ports import S3ObjectDownloads, UrlDownloads
from konifer_edge.sources.requested import UrlSource
from konifer_edge.sources.s3_object import S3ObjectSource
from konifer_edge.sources.url import UrlSourceError


class SourceParts(Protocol):
    @property
    def url_downloader(self) -> UrlDownloads: ...
    @property
    def s3_objects(self) -> S3ObjectDownloads: ...


async def download_source(parts: SourceParts, source: UrlSource | S3ObjectSource) -> bytes:
    """The bytes behind ``source``.

    A URL that cannot be read raises `UrlSourceError`, counted by its reason (the caller says
    which status that is); an ARN raises `S3SourceError` or a 413, already API errors.
    """
    if isinstance(source, S3ObjectSource):
        # As for URLs: the URL sources' size cap and timeout; credentials from the AWS default chain.
        return await parts.s3_objects.download(source)
    try:
        content = await parts.url_downloader.download(source.url)
    except UrlSourceError as error:
        metrics.URL_DOWNLOADS.labels(error.reason).inc()
        raise
    metrics.URL_DOWNLOADS.labels("ok").inc()
    return content
