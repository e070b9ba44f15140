"""The parts built once at start-up (app.py) and shared by all handlers: infrastructure, no behaviour.

Services do not take this class: each states the parts it reaches as a Protocol of ports
(services/ports.py), and a `Runtime` is handed to them because it has those parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from konifer_edge.cache.bodies import SmallBodyCache, originals_cache
from konifer_edge.cache.resolution import ResolutionCache
from konifer_edge.cache.shared import SharedState
from konifer_edge.cache.single_flight import SingleFlight
from konifer_edge.config import Config
from konifer_edge.domain.models import Variant
from konifer_edge.imaging.decode_pool import DecodePool
from konifer_edge.imaging.pool import ImagingPool
from konifer_edge.rules.engine import RuleEngine
from konifer_edge.security.api_keys import CachedKeys
from konifer_edge.services.background import AccessTracker, BackgroundTasks
from konifer_edge.services.cdn import PurgeHook
from konifer_edge.services.object_reaper import ObjectReaper
from konifer_edge.sources.s3_object import S3ObjectDownloader
from konifer_edge.sources.url import UrlDownloader
from konifer_edge.storage.object_store import ObjectStore
from konifer_edge.storage.repository import AssetRepository
from konifer_edge.storage.shares import ShareRepository


@dataclass(slots=True)
class Runtime:
    config: Config
    repository: AssetRepository
    objects: ObjectStore
    imaging: ImagingPool
    decoding: DecodePool
    url_downloader: UrlDownloader
    s3_objects: S3ObjectDownloader
    reaper: ObjectReaper
    shared: SharedState
    resolutions: ResolutionCache
    bodies: SmallBodyCache
    purge: PurgeHook
    shares: ShareRepository
    keys: CachedKeys
    """API keys by token, over the server's connection pool (security/key_store.py), cached a few seconds."""
    originals: SmallBodyCache = field(default_factory=lambda: originals_cache(0))
    """Originals' bytes recently rendered from (``cache.originals-memory-size``)."""
    renders: SingleFlight[tuple[Variant, bool]] = field(default_factory=SingleFlight)
    access: AccessTracker = field(default_factory=AccessTracker)
    upkeep: BackgroundTasks = field(default_factory=BackgroundTasks)
    rules: RuleEngine | None = None
    """Loaded only when rules are configured or the evaluation API is on (``Config.rules_required``)."""
