"""Everything a request may need, built once at start-up and shared by all handlers."""

from __future__ import annotations

from dataclasses import dataclass

from konifer_edge.config import Config
from konifer_edge.imaging.pool import ImagingPool
from konifer_edge.services.object_reaper import ObjectReaper
from konifer_edge.sources.url import UrlDownloader
from konifer_edge.storage.object_store import ObjectStore
from konifer_edge.storage.repository import AssetRepository


@dataclass(slots=True)
class Runtime:
    config: Config
    repository: AssetRepository
    objects: ObjectStore
    imaging: ImagingPool
    url_downloader: UrlDownloader
    reaper: ObjectReaper
