"""What the OpenAPI schema says about the asset and share routes, which parse their own input.

The handlers read `/-/` modifiers and query parameters themselves (labels are open-ended), and
the share routes decode their JSON body themselves (for their own limits and error messages),
so the parameters, bodies and answers are described here rather than inferred from signatures.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, Parameter, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from konifer_edge.domain import parameters as transformation
from konifer_edge.domain.selectors import MAX_ENTRY_ID
from konifer_edge.domain.shares import MAX_DOWNLOADS, MAX_LIFETIME_SECONDS
from konifer_edge.http.collection_wire import AssetPageWire, FilterMetadataWire, PathChildrenWire
from konifer_edge.http.wire import AssetMetadataWire, ErrorWire, ShareWire

_STRING = Schema(type=OpenAPIType.STRING)
_INTEGER = Schema(type=OpenAPIType.INTEGER)


# Sizes are stated as plain integers, their limit only in the description: a client that generates
# requests from the schema then also sends sizes past the limit, which must be refused with a 400.
_OPEN_ENDED: Final = frozenset({"w", "h"})


def _schema_of(parameter: transformation.Parameter) -> Schema:
    """A parameter's value, as OpenAPI can state it: bounds of numbers, spellings of choices."""
    kind = parameter.kind
    if isinstance(kind, transformation.WholeNumber):
        if parameter.key in _OPEN_ENDED:
            return Schema(type=OpenAPIType.INTEGER)
        return Schema(type=OpenAPIType.INTEGER, minimum=kind.minimum, maximum=kind.maximum)
    if isinstance(kind, transformation.Number):
        return Schema(type=OpenAPIType.NUMBER, minimum=kind.minimum, maximum=kind.maximum)
    if isinstance(kind, transformation.Choice | transformation.FormatName):
        return Schema(type=OpenAPIType.STRING, enum=list(kind.choices))
    return _STRING


_TRANSFORMATION_PARAMETERS = [(p.key, _schema_of(p), p.description) for p in transformation.PARAMETERS]

_PATH_DESCRIPTION = (
    "The asset path, optionally followed by `/-/` and modifiers in any order: a return format (link, content,"
    " download, redirect, metadata, info, entries), an order (created, new, modified), a limit (a number, -1 for all),"
    " `entry/{id}`; on delete also `all` and `recursive`."
)


def _query(name: str, schema: Schema, description: str) -> Parameter:
    return Parameter(name=name, param_in="query", schema=schema, description=description, required=False)


_LIMIT = _query("limit", _INTEGER, "How many assets (link, metadata, entries: default 20; delete); -1 for all")
_LABELS = _query("{label}", _STRING, "Any other key filters by label; `label:KEY` forces a label whose key is reserved")


@dataclass
class _AssetOperation(Operation):
    extra_parameters: list[Parameter] = field(default_factory=list)

    def __post_init__(self) -> None:
        for parameter in self.parameters or []:
            if isinstance(parameter, Parameter) and parameter.name == "asset_path":
                parameter.description = _PATH_DESCRIPTION
        self.parameters = [*(self.parameters or []), *self.extra_parameters]


@dataclass
class FetchOperation(_AssetOperation):
    extra_parameters: list[Parameter] = field(
        default_factory=lambda: [_LIMIT, _LABELS, *(_query(*p) for p in _TRANSFORMATION_PARAMETERS)]
    )


@dataclass
class DeleteOperation(_AssetOperation):
    extra_parameters: list[Parameter] = field(default_factory=lambda: [_LIMIT, _LABELS])


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorWire, description=description, generate_examples=False)


_COMMON_ERRORS = {400: _error("Invalid path, selector, parameter or body"), 503: _error("A dependency is down")}

FETCH_RESPONSES = {
    200: ResponseSpec(
        data_container=AssetMetadataWire,
        description="metadata: the asset's metadata (a JSON array with a limit); entries: {entries: [metadata]};"
        + " link: {url, lqip, attributes, alt, expiresAt}; content and download: the image bytes",
        generate_examples=False,
    ),
    304: ResponseSpec(data_container=None, description="Not modified (If-None-Match)"),
    307: ResponseSpec(data_container=None, description="redirect: Location holds the image URL"),
    404: _error("No such path or entry"),
    **_COMMON_ERRORS,
}

STORE_RESPONSES = {
    201: ResponseSpec(data_container=AssetMetadataWire, description="Stored", generate_examples=False),
    403: _error("Format not allowed at this path, or URL host refused"),
    413: _error("Body or remote image over the size limit"),
    415: _error("Not multipart or JSON, or not an image in a supported format"),
    422: _error("The URL cannot be used"),
    502: _error("The URL's server failed, or the S3 source could not be read (no credentials, or an S3 error code)"),
    504: _error("The URL's server timed out"),
    **_COMMON_ERRORS,
}

UPDATE_RESPONSES = {
    200: ResponseSpec(data_container=AssetMetadataWire, description="Updated", generate_examples=False),
    404: _error("No such entry"),
    **_COMMON_ERRORS,
}

DELETE_RESPONSES = {204: ResponseSpec(data_container=None, description="Deleted, or nothing matched"), **_COMMON_ERRORS}


# --- share links ---------------------------------------------------------------------------------


def _transformation_object(description: str) -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        additional_properties=False,
        properties={name: replace(schema, description=text) for name, schema, text in _TRANSFORMATION_PARAMETERS},
        description=f"Transformation parameters: {description}",
    )


_SHARE_CREATE_BODY = Schema(
    type=OpenAPIType.OBJECT,
    required=["path"],
    additional_properties=False,
    properties={
        "path": Schema(type=OpenAPIType.STRING, description="The asset path, as after /assets/: `/users/123`"),
        "entryId": Schema(
            type=OpenAPIType.INTEGER,
            minimum=0,
            maximum=MAX_ENTRY_ID,
            description="Share this entry; leave out to share whatever is newest at the path",
        ),
        "expiresAt": Schema(
            type=OpenAPIType.STRING,
            format=OpenAPIFormat.DATE_TIME,
            description="When the link stops working (in the future; UTC when no offset is given)",
        ),
        "expiresIn": Schema(
            type=OpenAPIType.INTEGER,
            minimum=1,
            maximum=MAX_LIFETIME_SECONDS,
            description="Seconds until the link stops working (not together with expiresAt)",
        ),
        "maxDownloads": Schema(
            type=OpenAPIType.INTEGER,
            minimum=1,
            maximum=MAX_DOWNLOADS,
            description="GETs answered with the image before the link stops working",
        ),
        "transformation": _transformation_object("Applied to every serve (as query parameters of content)"),
    },
)


@dataclass
class ShareCreateOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=_SHARE_CREATE_BODY)},
            required=True,
            description="What to share, for how long, how often, and transformed how",
        )


@dataclass
class ShareListOperation(Operation):
    def __post_init__(self) -> None:
        self.parameters = [
            *(self.parameters or []),
            _query("asset", _STRING, "The shares of one asset: `/users/123/-/entry/0`"),
            _query("path", _STRING, "Every share at this exact path (asset and path shares): `/users/123`"),
        ]


@dataclass
class ShareServeOperation(Operation):
    def __post_init__(self) -> None:
        for parameter in self.parameters or []:
            if isinstance(parameter, Parameter) and parameter.name == "token":
                parameter.description = "The token of the share link, as returned once by POST /shares"


_SHARE_AUTH_ERRORS = {
    401: _error("An API key is required, or the key is unknown or revoked"),
    403: _error("The key lacks the scope, or the path is outside its prefix"),
}
_SHARE_RECORD = ResponseSpec(data_container=ShareWire, description="The share", generate_examples=False)

SHARE_CREATE_RESPONSES = {
    201: ResponseSpec(
        data_container=ShareWire,
        description="Created: the record with its token and url, shown this once",
        generate_examples=False,
    ),
    404: _error("No such path or entry"),
    413: _error("Body over 64 KiB"),
    415: _error("Not application/json"),
    **_SHARE_AUTH_ERRORS,
    **_COMMON_ERRORS,
}

SHARE_LIST_RESPONSES = {
    200: ResponseSpec(data_container=list[ShareWire], description="Shares, newest first", generate_examples=False),
    404: _error("No such entry"),
    **_SHARE_AUTH_ERRORS,
    **_COMMON_ERRORS,
}

SHARE_GET_RESPONSES = {200: _SHARE_RECORD, 404: _error("No such share"), **_SHARE_AUTH_ERRORS, **_COMMON_ERRORS}

SHARE_REVOKE_RESPONSES = {
    204: ResponseSpec(data_container=None, description="Revoked (also when it already was)"),
    404: _error("No such share"),
    **_SHARE_AUTH_ERRORS,
    **_COMMON_ERRORS,
}

SHARE_SERVE_RESPONSES = {
    200: ResponseSpec(data_container=bytes, media_type="image/*", description="The image", generate_examples=False),
    206: ResponseSpec(
        data_container=bytes, media_type="image/*", description="A byte range of the image", generate_examples=False
    ),
    304: ResponseSpec(data_container=None, description="Not modified (If-None-Match)"),
    404: _error("No such share link, or nothing to serve at its path or entry"),
    410: _error("The link has expired, was revoked, or reached its download limit"),
    416: ResponseSpec(data_container=None, description="Range not satisfiable"),
    **_COMMON_ERRORS,
}


# --- collection routes (konifer-edge's own) -------------------------------------------

_BOOLEAN = Schema(type=OpenAPIType.BOOLEAN)
_SORT = _query("sort", Schema(type=OpenAPIType.STRING, enum=["created", "modified"]), "Order by (default created)")
_ORDER = _query("order", Schema(type=OpenAPIType.STRING, enum=["asc", "desc"]), "Direction (default desc)")
_RECURSIVE = _query("recursive", _BOOLEAN, "Include assets below the path (same as /-/list/recursive)")


@dataclass
class ListOperation(_AssetOperation):
    extra_parameters: list[Parameter] = field(
        default_factory=lambda: [
            _query("limit", Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=250), "Assets per page (default 50)"),
            _query("cursor", _STRING, "The nextCursor of the previous page"),
            _SORT,
            _ORDER,
            _RECURSIVE,
            _query("include_total", _BOOLEAN, "Add the count of all matches"),
            _LABELS,
        ]
    )


@dataclass
class ZipOperation(_AssetOperation):
    extra_parameters: list[Parameter] = field(
        default_factory=lambda: [
            _query("limit", Schema(type=OpenAPIType.INTEGER, minimum=1), "The first N (at most bundle.max-entries)"),
            _SORT,
            _ORDER,
            _RECURSIVE,
            _LABELS,
            *(_query(*p) for p in _TRANSFORMATION_PARAMETERS),
        ]
    )


@dataclass
class PathsOperation(Operation):
    def __post_init__(self) -> None:
        self.parameters = [
            *(self.parameters or []),
            _query("limit", Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=1000), "Children per page"),
            _query("cursor", _STRING, "The nextCursor of the previous page"),
        ]


@dataclass
class FiltersOperation(Operation):
    def __post_init__(self) -> None:
        self.parameters = [_query("path", _STRING, "Also list the label keys in use at or below this path")]


_BUNDLE_ITEM = Schema(
    type=OpenAPIType.OBJECT,
    required=["path", "entryId"],
    properties={"path": _STRING, "entryId": Schema(type=OpenAPIType.INTEGER, minimum=0)},
)


@dataclass
class BundleOperation(Operation):
    def __post_init__(self) -> None:
        schema = Schema(
            type=OpenAPIType.OBJECT,
            required=["assets"],
            properties={
                "assets": Schema(type=OpenAPIType.ARRAY, items=_BUNDLE_ITEM, min_items=1),
                "transformation": _transformation_object("applied to every image"),
            },
        )
        self.request_body = RequestBody(content={"application/json": OpenAPIMediaType(schema=schema)}, required=True)


_ZIP = ResponseSpec(
    data_container=bytes,
    media_type="application/zip",
    description="A ZIP of the images, streamed: {path}/{entryId}.{format}",
    generate_examples=False,
)
_KEY_ERRORS = {401: _error("An API key is needed"), 403: _error("The key may not read here, or a signature is missing")}

LIST_RESPONSES = {
    200: ResponseSpec(data_container=AssetPageWire, description="A page of assets", generate_examples=False),
    **_KEY_ERRORS,
    **_COMMON_ERRORS,
}
ZIP_RESPONSES = {200: _ZIP, 404: _error("Nothing matches"), **_KEY_ERRORS, **_COMMON_ERRORS}
BUNDLE_RESPONSES = {
    200: _ZIP,
    404: _error("A listed entry does not exist"),
    413: _error("The request body is too large"),
    415: _error("Not application/json"),
    **_KEY_ERRORS,
    **_COMMON_ERRORS,
}
PATHS_RESPONSES = {
    200: ResponseSpec(data_container=PathChildrenWire, description="Child paths with counts", generate_examples=False),
    **_KEY_ERRORS,
    **_COMMON_ERRORS,
}
FILTERS_RESPONSES = {
    200: ResponseSpec(data_container=FilterMetadataWire, description="What listing accepts", generate_examples=False),
    **_KEY_ERRORS,
    **_COMMON_ERRORS,
}
