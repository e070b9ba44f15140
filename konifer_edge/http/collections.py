"""Collection routes (konifer-edge's own): listing pages, the path tree, filter metadata and ZIP bundles.

`/assets/{path}/-/list` and `/-/zip` are modifiers no Konifer request uses, so they
cannot change an answer the Konifer spec defines: any other modifier still goes to
fetch. The router hands every `/assets/...` GET to the fetch route, which sends these
two here; the routes registered under the same paths below exist so the OpenAPI
schema describes them, and answer the same way should the router ever pick them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import msgspec
from litestar import Response, get, post
from litestar.params import FromPath
from litestar.response import Stream

from konifer_edge.config.model import WireSpelling
from konifer_edge.domain.errors import BadRequest, NotFound
from konifer_edge.domain.listing import (
    BUNDLE_KEYS,
    CHILDREN_KEYS,
    DEFAULT_PAGE_SIZE,
    LISTING_KEYS,
    MAX_PAGE_SIZE,
    ListingQuery,
    SortOrder,
    encode_children_cursor,
    encode_cursor,
    parse_boolean,
    parse_children_query,
    parse_listing_query,
    parse_page_size,
    parse_sort,
    split_collection_query,
)
from konifer_edge.domain.models import Asset
from konifer_edge.domain.paths import normalise_asset_path
from konifer_edge.domain.query import transformation_from_json
from konifer_edge.domain.selectors import MAX_ENTRY_ID, Order
from konifer_edge.http import openapi
from konifer_edge.http.collection_wire import (
    AssetPageWire,
    BundleRequestWire,
    ChildPathWire,
    FilterMetadataWire,
    FilterWire,
    ListedAssetWire,
    PathChildrenWire,
)
from konifer_edge.http.targets import AnyRequest, ParsedTarget, parse_target, public_base_url, query_pairs, runtime_of
from konifer_edge.http.uploads import MAX_JSON_BODY_BYTES, decode_json, read_body, require_json_content_type
from konifer_edge.http.wire import metadata_wire
from konifer_edge.observability.request_log import ROUTE_KIND, mark
from konifer_edge.security.access import enforce_collection_access
from konifer_edge.services.bundles import plan_bundle, stream_bundle
from konifer_edge.services.collections import browse_paths, label_keys, list_assets, listed_entries
from konifer_edge.services.runtime import Runtime

LIST_VIEW = "list"
ZIP_VIEW = "zip"
VIEWS = frozenset({LIST_VIEW, ZIP_VIEW})
PATHS_PREFIX = "/paths/"

# Pages and bundles change with every write, and need a key once keys exist: no shared cache may keep them.
_PRIVATE = {"Cache-Control": "private, no-store"}


def _json(value: msgspec.Struct, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(value), media_type="application/json", headers=_PRIVATE | (headers or {})
    )


def _view_and_recursion(tokens: list[str]) -> tuple[str, bool]:
    words = [token.lower() for token in tokens]
    view = words[0]
    rest = words[1:]
    if rest not in ([], ["recursive"]):
        raise BadRequest(
            f"'/-/{view}' takes only 'recursive' after it, not '{'/'.join(tokens[1:])[:48]}'",
            reason="invalid_selector",
        )
    return view, bool(rest)


async def answer_collection_view(request: AnyRequest, runtime: Runtime, target: ParsedTarget) -> Response[Any]:
    """Answer `/-/list` or `/-/zip` at the target's path."""
    view, recursive = _view_and_recursion(target.tokens)
    mark(request.scope, ROUTE_KIND, view)
    await enforce_collection_access(request, [target.path])
    if view == LIST_VIEW:
        return await _list(request, runtime, target, recursive)
    return await _zip(runtime, target, recursive, head=request.method == "HEAD")


async def _list(request: AnyRequest, runtime: Runtime, target: ParsedTarget, recursive: bool) -> Response[Any]:
    values, labels, _ = split_collection_query(target.pairs, LISTING_KEYS, transformations=False)
    query = parse_listing_query(target.path, recursive, values, labels)
    page = await list_assets(runtime, query)
    next_cursor = encode_cursor(page.following) if page.following is not None else None
    headers = {}
    if next_cursor is not None:
        headers["Link"] = f'<{_next_page_url(request, runtime, next_cursor)}>; rel="next"'
    wire = AssetPageWire(
        assets=[_listed(asset, runtime.config.compat.wire) for asset in page.assets],
        next_cursor=next_cursor,
        total=page.total,
    )
    return _json(wire, headers)


def _listed(asset: Asset, spelling: WireSpelling) -> ListedAssetWire:
    return ListedAssetWire(path=asset.path, **msgspec.structs.asdict(metadata_wire(asset, spelling)))


def _next_page_url(request: AnyRequest, runtime: Runtime, cursor: str) -> str:
    pairs = [(key, value) for key, value in query_pairs(request) if key != "cursor"]
    pairs.append(("cursor", cursor))
    return f"{public_base_url(request, runtime)}{quote(request.url.path)}?{urlencode(pairs)}"


async def _zip(runtime: Runtime, target: ParsedTarget, recursive_token: bool, *, head: bool) -> Response[Any]:
    values, labels, transformation = split_collection_query(target.pairs, BUNDLE_KEYS, transformations=True)
    maximum = runtime.config.bundle.max_entries
    explicit_limit = values.get("limit")
    sort, order = parse_sort(values)
    query = ListingQuery(
        path=target.path,
        recursive=parse_boolean("recursive", values.get("recursive"), recursive_token),
        limit=parse_page_size(explicit_limit, maximum, maximum),
        sort=sort,
        order=order,
        labels=labels,
    )
    page = await list_assets(runtime, query)
    if page.following is not None and explicit_limit is None:
        raise BadRequest(
            f"More than {maximum} images match; narrow the selection or pass a limit", reason="bundle_too_large"
        )
    if not page.assets:
        raise NotFound(f"No asset at {target.path} matches", reason="not_found")
    name = target.path.strip("/").replace("/", "-") or "assets"
    return await _bundle_answer(runtime, page.assets, transformation, name, head=head)


async def _bundle_answer(
    runtime: Runtime, assets: list[Asset], transformation: dict[str, str], name: str, *, head: bool = False
) -> Response[Any]:
    entries = await plan_bundle(runtime, assets, transformation)
    headers = _PRIVATE | {"Content-Disposition": f'attachment; filename="{name}.zip"'}
    if head:
        # Settled exactly as a GET would be (so the status is the same), but no object is read.
        return Response(content=b"", media_type="application/zip", headers=headers)
    return Stream(stream_bundle(runtime, entries), media_type="application/zip", headers=headers)


async def _collection_view(request: AnyRequest, asset_path: FromPath[str]) -> Response[Any]:
    return await answer_collection_view(request, runtime_of(request), parse_target(request))


list_route = get(
    ["/assets/{asset_path:path}/-/list", "/assets/{asset_path:path}/-/list/recursive"],
    responses=openapi.LIST_RESPONSES,
    operation_class=openapi.ListOperation,
    name="list_assets",
    description="A page of the assets at a path (or below it with `recursive`), with a cursor for the next page.",
)(_collection_view)

zip_route = get(
    ["/assets/{asset_path:path}/-/zip", "/assets/{asset_path:path}/-/zip/recursive"],
    responses=openapi.ZIP_RESPONSES,
    operation_class=openapi.ZipOperation,
    name="zip_assets",
    description="A ZIP of the images at a path (or below it with `recursive`), streamed;"
    " named `{path}/{entryId}.{format}`.",
)(_collection_view)


@get("/paths", responses=openapi.PATHS_RESPONSES, operation_class=openapi.PathsOperation, name="root_paths")
async def root_paths(request: AnyRequest) -> Response[Any]:
    """The paths one segment below the root, with how many assets are at and below each."""
    return await _child_paths(request, below_root=True)


@get("/paths/{prefix:path}", responses=openapi.PATHS_RESPONSES, operation_class=openapi.PathsOperation)
async def child_paths(request: AnyRequest, prefix: FromPath[str]) -> Response[Any]:
    """The paths one segment below a prefix, with how many assets are at and below each."""
    return await _child_paths(request, below_root=False)


async def _child_paths(request: AnyRequest, *, below_root: bool) -> Response[Any]:
    runtime = runtime_of(request)
    target = None if below_root else parse_target(request, PATHS_PREFIX)
    path = target.path if target is not None else "/"
    if target is not None and target.tokens:
        raise BadRequest("'/-/' modifiers have no meaning on /paths", reason="invalid_selector")
    await enforce_collection_access(request, [path])
    values, labels, _ = split_collection_query(query_pairs(request), CHILDREN_KEYS, transformations=False)
    if labels:
        raise BadRequest(f"Unknown parameter '{next(iter(labels))[:48]}' on /paths", reason="invalid_query")
    query = parse_children_query(path, values)
    found = await browse_paths(runtime, query)
    base = "" if path == "/" else path
    children = [
        ChildPathWire(path=f"{base}/{child.name}", assets=child.assets_here, assets_below=child.assets_below)
        for child in found.children
    ]
    following = None
    if len(found.children) == query.limit:
        following = encode_children_cursor(path, found.children[-1].name)
    return _json(PathChildrenWire(path=path, assets=found.assets_here, children=children, next_cursor=following))


_LISTING_PARAMETERS = [
    FilterWire(
        name="limit",
        type="integer",
        description="Assets per page",
        default=str(DEFAULT_PAGE_SIZE),
        minimum=1,
        maximum=MAX_PAGE_SIZE,
    ),
    FilterWire(name="cursor", type="string", description="The nextCursor of the previous page"),
    FilterWire(
        name="sort",
        type="string",
        description="What the page is ordered by",
        values=[key.value for key in Order],
        default=Order.CREATED.value,
    ),
    FilterWire(
        name="order",
        type="string",
        description="Ascending or descending",
        values=[order.value for order in SortOrder],
        default=SortOrder.DESC.value,
    ),
    FilterWire(name="recursive", type="boolean", description="Include assets below the path (or /-/list/recursive)"),
    FilterWire(name="include_total", type="boolean", description="Add the count of all matches (slower)"),
]


@get("/filters", responses=openapi.FILTERS_RESPONSES, operation_class=openapi.FiltersOperation)
async def filter_metadata(request: AnyRequest) -> Response[Any]:
    """What listing accepts: sort keys, orders, parameters, and the label keys in use under `path`."""
    runtime = runtime_of(request)
    values, labels, _ = split_collection_query(query_pairs(request), frozenset({"path"}), transformations=False)
    if labels:
        raise BadRequest(f"Unknown parameter '{next(iter(labels))[:48]}' on /filters", reason="invalid_query")
    path = normalise_asset_path(values["path"]) if "path" in values else None
    if path is not None:
        await enforce_collection_access(request, [path])
    wire = FilterMetadataWire(
        sort_keys=[key.value for key in Order],
        orders=[order.value for order in SortOrder],
        parameters=_LISTING_PARAMETERS,
        label_filter="Any other parameter KEY=VALUE keeps assets whose label KEY is VALUE; label:KEY for reserved keys",
        label_keys=await label_keys(runtime, path),
    )
    return _json(wire)


# Room for the longest path in every entry a bundle may hold.
_BYTES_PER_BUNDLE_ENTRY = 1200


@post("/bundles", status_code=200, responses=openapi.BUNDLE_RESPONSES, operation_class=openapi.BundleOperation)
async def create_bundle(request: AnyRequest) -> Response[Any]:
    """A ZIP of the listed entries (path + entryId), each as stored or transformed, streamed."""
    runtime = runtime_of(request)
    require_json_content_type(request.headers.get("content-type", ""))
    max_bytes = MAX_JSON_BODY_BYTES + runtime.config.bundle.max_entries * _BYTES_PER_BUNDLE_ENTRY
    body = await read_body(request.stream(), max_bytes)
    data = decode_json(body, BundleRequestWire, what="bundle request", reason="invalid_bundle")
    requested = _bundle_entries(data, runtime.config.bundle.max_entries)
    await enforce_collection_access(request, [path for path, _ in requested])
    assets = await listed_entries(runtime, requested)
    transformation = transformation_from_json(data.transformation)
    return await _bundle_answer(runtime, assets, transformation, "bundle")


def _bundle_entries(data: BundleRequestWire, max_entries: int) -> list[tuple[str, int]]:
    if not data.assets:
        raise BadRequest("'assets' must list at least one {path, entryId}", reason="invalid_bundle")
    if len(data.assets) > max_entries:
        raise BadRequest(
            f"A bundle holds at most {max_entries} images; {len(data.assets)} are listed", reason="bundle_too_large"
        )
    entries: list[tuple[str, int]] = []
    for item in data.assets:
        if not 0 <= item.entry_id <= MAX_ENTRY_ID:
            raise BadRequest(f"entryId {item.entry_id} is out of range", reason="invalid_entry_id")
        entries.append((normalise_asset_path(item.path), item.entry_id))
    if len(set(entries)) != len(entries):
        raise BadRequest("An entry is listed more than once", reason="invalid_bundle")
    return entries


COLLECTION_ROUTES = [list_route, zip_route, root_paths, child_paths, filter_metadata, create_bundle]
