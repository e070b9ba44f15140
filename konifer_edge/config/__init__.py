"""Configuration: Konifer's key tree read from TOML or HOCON, plus the environment.

``load_config`` is the entry point; everything it returns is validated and
frozen. ``Config.paths.resolve(path)`` gives the settings that govern an asset
path (spec 05 section 5). ``docs/configuration.md`` is the reference for keys.
"""

from konifer_edge.config.decode import parse_duration
from konifer_edge.config.errors import ConfigError
from konifer_edge.config.load import load_config
from konifer_edge.config.model import (
    SUPPORTED_CONTENT_TYPES,
    AccessSettings,
    AssetLimits,
    CacheControlSettings,
    CacheSettings,
    Config,
    DataStoreSettings,
    FilesystemSettings,
    HttpSettings,
    ImageSettings,
    MultipartSettings,
    ObjectStoreSettings,
    PathObjectStore,
    PathSettings,
    PostgresSettings,
    PreprocessingSettings,
    RedirectSettings,
    ReturnFormatSettings,
    S3Settings,
    SourceSettings,
    TransformationParams,
    TransformLimits,
    TransformSettings,
    UrlSigningSettings,
    UrlSourceSettings,
    VariantCacheSettings,
    VariantGenerationSettings,
)
from konifer_edge.config.paths import PathConfiguration
from konifer_edge.config.transformations import TRANSFORMATION_KEYS

__all__ = [
    "SUPPORTED_CONTENT_TYPES",
    "TRANSFORMATION_KEYS",
    "AccessSettings",
    "AssetLimits",
    "CacheControlSettings",
    "CacheSettings",
    "Config",
    "ConfigError",
    "DataStoreSettings",
    "FilesystemSettings",
    "HttpSettings",
    "ImageSettings",
    "MultipartSettings",
    "ObjectStoreSettings",
    "PathConfiguration",
    "PathObjectStore",
    "PathSettings",
    "PostgresSettings",
    "PreprocessingSettings",
    "RedirectSettings",
    "ReturnFormatSettings",
    "S3Settings",
    "SourceSettings",
    "TransformLimits",
    "TransformSettings",
    "TransformationParams",
    "UrlSigningSettings",
    "UrlSourceSettings",
    "VariantCacheSettings",
    "VariantGenerationSettings",
    "load_config",
    "parse_duration",
]
