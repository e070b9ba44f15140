"""Konifer's current Kotlin client, call by call, against konifer-edge (spec 06).

Every request here is built the way `client/` of dmaiken/konifer (the `io.konifer.client` package at
202893902 and its `common/` DTOs at 0fd0b68) builds it: the same method, the same path segments in
the same order (`appendAssetPath`, then `-`, then the entry or order selector, then the return
format), the same query parameters in the same order, and the headers its Ktor client sends. Ktor's
ContentNegotiation plugin, which the client installs with kotlinx JSON, adds `Accept:
application/json` to every request, image fetches included; the JSON is written with
`encodeDefaults = false`, so empty labels and tags are left out.

Every answer is then read the way the client reads it: `toKoniferV2Result` decodes a 2xx body with
kotlinx.serialization into the `common` DTOs (`ignoreUnknownKeys = true`, `explicitNulls = false`),
so a required field that is missing or of another type, or an enum value outside the client's enum,
fails the call. `Contract` below mirrors those DTOs field by field; the source file of each call is
named in its test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.integration.conftest import STANDARD_CONFIG, start_deployment
from tests.support.aws import SOURCE_BUCKET, aws_env
from tests.support.deployment import Deployment
from tests.support.images import describe, make_image
from tests.support.services import PostgresService, S3Service
from tests.support.source_server import SourceServer

# What Ktor's client sends on every request of the Konifer client (ContentNegotiation + defaults).
KTOR_HEADERS = {"Accept": "application/json", "Accept-Charset": "UTF-8", "User-Agent": "ktor-client"}
JSON_CONTENT_TYPE = "application/json"  # contentType(ContentType.Application.Json)

# common/.../selector: DEFAULT_ENTRIES_LIMIT, used by fetchEntries() without a limit.
DEFAULT_ENTRIES_LIMIT = 20
# common/.../image/ManipulationParameters.kt: ALL_RESERVED_PARAMETERS, which labels are prefixed against.
RESERVED_PARAMETERS = frozenset(
    {"h", "w", "fit", "g", "format", "r", "f", "filter", "blur", "q", "pad", "pad-c", "strip", "cs", "pixel-layout"}
    | {"profile", "s", "limit"}
)


# --- the DTOs of common/src/commonMain/kotlin/io/konifer/common ------------------------------------


class Contract:
    """kotlinx decoding of `common/.../http/AssetResponse.kt` (0fd0b68) and its enums."""

    ASSET_CLASS = frozenset({"image"})  # asset/AssetClass.kt
    ASSET_SOURCE = frozenset({"upload", "url", "arn"})  # asset/AssetSource.kt
    FIT = frozenset({"fit", "fill", "stretch", "crop"})  # image/Fit.kt
    GRAVITY = frozenset({"center", "entropy", "attention"})  # image/Gravity.kt
    ROTATE = frozenset({"0", "90", "180", "270", "auto"})  # image/Rotate.kt
    FLIP = frozenset({"h", "v", ""})  # image/Flip.kt
    FILTER = frozenset({"", "black_white", "grayscale", "sepia"})  # image/Filter.kt
    METADATA_TYPE = frozenset({"exif", "xmp", "iptc", "icc"})  # image/MetadataType.kt
    FORMAT = frozenset({"jpg", "png", "webp", "avif", "jxl", "heic", "gif"})  # image/ImageFormat.kt (format)

    @staticmethod
    def integer(owner: Mapping[str, Any], name: str, *, optional: bool = False) -> int | None:
        if optional and owner.get(name) is None:
            return None
        value = owner[name]
        assert isinstance(value, int) and not isinstance(value, bool), f"{name}: Int expected, got {value!r}"
        return value

    @staticmethod
    def string(owner: Mapping[str, Any], name: str, *, optional: bool = False) -> str | None:
        if optional and owner.get(name) is None:
            return None
        value = owner[name]
        assert isinstance(value, str), f"{name}: String expected, got {value!r}"
        return value

    @classmethod
    def enum(cls, owner: Mapping[str, Any], name: str, values: frozenset[str]) -> str:
        value = cls.string(owner, name)
        assert value in values, f"{name}: {value!r} is not one of the client's {sorted(values)}"
        return value

    @staticmethod
    def local_date_time(owner: Mapping[str, Any], name: str, *, optional: bool = False) -> datetime | None:
        """serializer/LocalDateTimeSerializer.kt: LocalDateTime.Formats.ISO, no offset."""
        if optional and owner.get(name) is None:
            return None
        value = owner[name]
        assert isinstance(value, str), f"{name}: ISO local date-time expected, got {value!r}"
        parsed = datetime.fromisoformat(value)
        assert parsed.tzinfo is None, f"{name}: {value!r} carries an offset; LocalDateTime has none"
        return parsed

    @classmethod
    def lqip(cls, value: Any) -> None:
        """LQIPResponse: both fields nullable, the object itself required."""
        assert isinstance(value, dict), f"lqip: object expected, got {value!r}"
        cls.string(value, "blurhash", optional=True)
        cls.string(value, "thumbhash", optional=True)

    @classmethod
    def attributes(cls, value: Any) -> dict[str, Any]:
        """AttributeResponse."""
        assert isinstance(value, dict), f"attributes: object expected, got {value!r}"
        cls.integer(value, "height")
        cls.integer(value, "width")
        cls.string(value, "format")
        cls.string(value, "colorSpace")
        cls.integer(value, "pageCount", optional=True)
        cls.integer(value, "loop", optional=True)
        return value

    @classmethod
    def transformation(cls, value: Any) -> dict[str, Any]:
        """TransformationResponse: every field required."""
        assert isinstance(value, dict), f"transformation: object expected, got {value!r}"
        cls.integer(value, "width")
        cls.integer(value, "height")
        cls.enum(value, "fit", cls.FIT)
        cls.enum(value, "gravity", cls.GRAVITY)
        cls.string(value, "format")
        cls.enum(value, "rotate", cls.ROTATE)
        cls.enum(value, "flip", cls.FLIP)
        cls.enum(value, "filter", cls.FILTER)
        cls.integer(value, "blur")
        cls.integer(value, "quality")
        padding = value["padding"]  # PaddingResponse
        assert isinstance(padding, dict)
        cls.integer(padding, "amount")
        assert isinstance(padding["color"], list) and all(isinstance(c, int) for c in padding["color"])
        metadata = value["metadata"]  # MetadataResponse
        assert isinstance(metadata, dict) and isinstance(metadata["strip"], list)
        assert set(metadata["strip"]) <= cls.METADATA_TYPE, metadata["strip"]
        cls.string(value, "colorSpace")
        return value

    @classmethod
    def variant(cls, value: Any) -> dict[str, Any]:
        """VariantResponse."""
        assert isinstance(value, dict), f"variant: object expected, got {value!r}"
        assert isinstance(value["isOriginalVariant"], bool)
        cls.string(value, "storeBucket")
        cls.string(value, "storeKey")
        cls.attributes(value["attributes"])
        if value.get("transformation") is not None:
            cls.transformation(value["transformation"])
        cls.lqip(value["lqip"])
        return value

    @classmethod
    def asset(cls, value: Any) -> dict[str, Any]:
        """AssetResponse."""
        assert isinstance(value, dict), f"asset: object expected, got {value!r}"
        cls.enum(value, "class", cls.ASSET_CLASS)
        cls.string(value, "alt", optional=True)
        cls.integer(value, "entryId")
        labels = value["labels"]
        assert isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values())
        tags = value["tags"]
        assert isinstance(tags, list) and all(isinstance(t, str) for t in tags)
        cls.enum(value, "source", cls.ASSET_SOURCE)
        cls.string(value, "externalSourceAddress", optional=True)
        cls.string(value, "sourceUrl", optional=True)
        variants = value["variants"]
        assert isinstance(variants, list) and variants
        for variant in variants:
            cls.variant(variant)
        cls.local_date_time(value, "createdAt")
        cls.local_date_time(value, "modifiedAt")
        return value

    @classmethod
    def entries(cls, value: Any) -> list[dict[str, Any]]:
        """AssetEntriesResponse."""
        assert isinstance(value, dict) and isinstance(value["entries"], list), value
        return [cls.asset(entry) for entry in value["entries"]]

    @classmethod
    def link(cls, value: Any) -> dict[str, Any]:
        """AssetLinkResponse."""
        assert isinstance(value, dict), f"link: object expected, got {value!r}"
        cls.string(value, "url")
        cls.local_date_time(value, "expiresAt", optional=True)
        cls.string(value, "alt", optional=True)
        cls.lqip(value["lqip"])
        cls.attributes(value["attributes"])
        return value

    @classmethod
    def error_message(cls, response: httpx.Response) -> str | None:
        """toKoniferV2Result on a non-2xx answer: ErrorResponse.message, else null."""
        try:
            body = response.json()
        except ValueError:
            return None
        return body.get("message") if isinstance(body, dict) else None


# --- requests, as the client builds them ----------------------------------------------------------


class KoniferClient:
    """The URL building of client/.../internal/{AssetRequestPath,HttpExtensions,VariantRequestUrl}.kt."""

    def __init__(self, base_url: str) -> None:
        # KoniferClient.kt: Ktor follows redirects by default; RequestInfrastructure's redirect client too.
        self.http = httpx.Client(base_url=base_url, timeout=30.0, follow_redirects=True, headers=KTOR_HEADERS)
        del self.http.headers["accept-encoding"]  # Ktor sends none without its ContentEncoding plugin

    def close(self) -> None:
        self.http.close()

    @staticmethod
    def asset_path(path: str) -> str:
        """appendAssetPath: `assets`, then the path's segments, each encoded."""
        segments = path.removeprefix("/").removesuffix("/").split("/")
        return "/assets/" + "/".join(quote(segment, safe="") for segment in segments)

    @staticmethod
    def labels(labels: Mapping[str, str]) -> list[tuple[str, str]]:
        """appendLabels: keys lower-cased, reserved ones prefixed with `label:`."""
        pairs = []
        for key, value in labels.items():
            lowered = key.lower()
            pairs.append((f"label:{lowered}" if lowered in RESERVED_PARAMETERS else lowered, value))
        return pairs

    @staticmethod
    def transformation(**requested: str) -> list[tuple[str, str]]:
        """appendTransformationParameters: this order, whatever order the caller set them in."""
        order = ("w", "h", "format", "fit", "f", "g", "r", "filter", "blur", "q", "pad", "pad-c", "profile")
        pairs = [(key, requested[key]) for key in order if key in requested]
        if "strip" in requested:
            pairs.append(("strip", requested["strip"]))
        if "cs" in requested:
            pairs.append(("cs", requested["cs"]))
        return pairs

    @staticmethod
    def query(pairs: list[tuple[str, str]]) -> str:
        if not pairs:
            return ""
        return "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)

    def selector_url(
        self,
        path: str,
        return_format: str | None,
        *,
        entry_id: int | None = None,
        order: str | None = None,
        query: list[tuple[str, str]] | None = None,
    ) -> str:
        """appendQuerySelectors: `-`, then `entry/{id}` or the order, then the return format."""
        segments = ["-"]
        if entry_id is not None:
            segments += ["entry", str(entry_id)]
        elif order is not None:
            segments.append(order)
        if return_format is not None:
            segments.append(return_format)
        return f"{self.asset_path(path)}/{'/'.join(segments)}{self.query(query or [])}"

    # -- assets/store/AssetStoreHelper.kt: storeAsset ------------------------------------------------

    def store_bytes(self, path: str, image: bytes, mime_type: str, request: Mapping[str, Any]) -> httpx.Response:
        """AssetByteContentSource: multipart, `metadata` (JSON) first, then `asset` as upload.bin."""
        boundary = uuid.uuid4().hex
        metadata = json.dumps(request, separators=(",", ":")).encode()
        head = (
            f"--{boundary}\r\n"
            "Content-Disposition: form-data; name=metadata\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(metadata)}\r\n\r\n"
        ).encode()
        asset_head = (
            f"\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name=asset; filename="upload.bin"\r\n'
            f"Content-Type: {mime_type}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        def body() -> Iterator[bytes]:  # ChannelProvider: the size is unknown, so the body is chunked
            yield head + metadata + asset_head
            yield image
            yield tail

        return self.http.post(
            self.asset_path(path),
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )

    def store_reference(self, path: str, request: Mapping[str, Any]) -> httpx.Response:
        """AssetReferenceContentSource (UrlSource or S3ArnSource): the StoreAssetRequest as JSON."""
        return self.http.post(
            self.asset_path(path),
            content=json.dumps(request).encode(),
            headers={"Content-Type": JSON_CONTENT_TYPE},
        )

    # -- assets/fetch/AssetFetchHelper.kt -----------------------------------------------------------

    def fetch_info(self, path: str, *, entry_id: int | None = None, labels: Mapping[str, str] = {}) -> httpx.Response:
        """fetchAssetInfo: AbsoluteAssetSelection (entry) or RelativeAssetSelection (order `new`)."""
        if entry_id is not None:
            return self.http.get(self.selector_url(path, "info", entry_id=entry_id))
        return self.http.get(self.selector_url(path, "info", order="new", query=self.labels(labels)))

    def fetch_entries(
        self, path: str, *, limit: int = DEFAULT_ENTRIES_LIMIT, order: str = "new", labels: Mapping[str, str] = {}
    ) -> httpx.Response:
        """fetchAssetEntries: appendLimit, then appendLabels."""
        return self.http.get(
            self.selector_url(path, "entries", order=order, query=[("limit", str(limit)), *self.labels(labels)])
        )

    def variant_url(
        self,
        path: str,
        return_format: str,
        *,
        entry_id: int | None = None,
        labels: Mapping[str, str] = {},
        **requested: str,
    ) -> str:
        """appendVariantRequest: the selection, its labels (relative only), then the transformation."""
        if entry_id is not None:
            return self.selector_url(path, return_format, entry_id=entry_id, query=self.transformation(**requested))
        query = [*self.labels(labels), *self.transformation(**requested)]
        return self.selector_url(path, return_format, order="new", query=query)

    def fetch_content(self, url: str) -> httpx.Response:
        """fetchAssetContentBytes / fetchAssetContentTo: THROUGH_KONIFER is `content`, FOLLOW_REDIRECT `redirect`."""
        return self.http.get(url)

    # -- assets/update/AssetUpdateHelper.kt: updateAsset ---------------------------------------------

    def update(self, path: str, entry_id: int, request: Mapping[str, Any]) -> httpx.Response:
        url = f"{self.asset_path(path)}/-/entry/{entry_id}"
        return self.http.put(url, content=json.dumps(request).encode(), headers={"Content-Type": JSON_CONTENT_TYPE})

    # -- assets/delete/AssetDeleteHelper.kt: deleteAsset ---------------------------------------------

    def delete_entry(self, path: str, entry_id: int) -> httpx.Response:
        return self.http.delete(f"{self.asset_path(path)}/-/entry/{entry_id}")

    def delete_at_path(self, path: str, *, limit: int, labels: Mapping[str, str] = {}) -> httpx.Response:
        """AssetDeleteTarget.AtPath: order, then labels, then the limit."""
        query = self.query([*self.labels(labels), ("limit", str(limit))])
        return self.http.delete(f"{self.asset_path(path)}/-/new{query}")

    def delete_recursively(self, path: str, *, labels: Mapping[str, str] = {}) -> httpx.Response:
        return self.http.delete(f"{self.asset_path(path)}/-/recursive{self.query(self.labels(labels))}")


def store_request(
    *,
    alt: str | None = None,
    labels: Mapping[str, str] | None = None,
    tags: list[str] | None = None,
    url: str | None = None,
    arn: str | None = None,
) -> dict[str, Any]:
    """StoreAssetRequest as kotlinx writes it with encodeDefaults = false: defaults are left out."""
    request: dict[str, Any] = {}
    if alt is not None:
        request["alt"] = alt
    if labels:
        request["labels"] = dict(labels)
    if tags:
        request["tags"] = list(tags)
    if url is not None:
        request["source"] = {"http": {"url": url}}  # AssetContentSource.kt: UrlSource
    if arn is not None:
        request["source"] = {"s3": {"arn": arn}}  # AssetContentSource.kt: S3ArnSource
    return request


def assert_success(response: httpx.Response) -> None:
    assert response.is_success, (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    )


def assert_alt_headers(response: httpx.Response, alt: str) -> None:
    assert response.headers.get("K-Alt") == alt, dict(response.headers)
    assert response.headers.get("Konifer-Alt") == alt, dict(response.headers)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def konifer_api(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresService, s3: S3Service
) -> Iterator[Deployment]:
    s3.create_bucket(SOURCE_BUCKET)
    deployment = start_deployment(
        tmp_path_factory.mktemp("client-contract"),
        STANDARD_CONFIG,
        store="filesystem",
        postgres=postgres,
        s3=s3,
        env=aws_env(s3, credentials=True),
    )
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture
def client(konifer_api: Deployment) -> Iterator[KoniferClient]:
    konifer = KoniferClient(konifer_api.base_url)
    try:
        yield konifer
    finally:
        konifer.close()


@pytest.fixture
def path() -> str:
    return f"/client/{uuid.uuid4().hex[:12]}/photos"


def stored(client: KoniferClient, path: str, **request: Any) -> dict[str, Any]:
    response = client.store_bytes(path, make_image("png", 80, 60), "image/png", store_request(**request))
    assert_success(response)
    return Contract.asset(response.json())


# --- the calls --------------------------------------------------------------------------------


def test_store_multipart(client: KoniferClient, konifer_api: Deployment, path: str) -> None:
    """client/.../assets/store/AssetStoreHelper.kt storeAsset with AssetByteContentSource (newAsset().bytes(...))."""
    request = store_request(alt="A red square", labels={"Team": "blue", "format": "poster"}, tags=["cover"])
    response = client.store_bytes(path, make_image("png", 80, 60), "image/png", request)

    assert_success(response)
    asset = Contract.asset(response.json())
    assert asset["alt"] == "A red square"
    assert asset["labels"] == {"Team": "blue", "format": "poster"}
    assert asset["tags"] == ["cover"]
    assert asset["source"] == "upload"
    original = asset["variants"][0]
    assert original["isOriginalVariant"] is True
    assert (original["attributes"]["width"], original["attributes"]["height"]) == (80, 60)
    assert original["attributes"]["format"] == "png"
    location = response.headers["Location"]
    assert urlsplit(location).path == f"{client.asset_path(path)}/-/entry/{asset['entryId']}"


def test_store_metadata_part_may_be_empty(client: KoniferClient, path: str) -> None:
    """AssetStoreHelper.kt: a request with no alt, labels or tags writes `{}` as the metadata part."""
    response = client.store_bytes(path, make_image("jpg", 32, 32), "image/jpeg", store_request())
    assert_success(response)
    asset = Contract.asset(response.json())
    assert asset["labels"] == {} and asset["tags"] == []
    assert asset["variants"][0]["attributes"]["format"] == "jpg"


def test_store_from_url(client: KoniferClient, source_server: SourceServer, path: str) -> None:
    """AssetStoreHelper.kt storeAsset with AssetReferenceContentSource.UrlSource (newAsset().url(...))."""
    url = source_server.add(f"/client/{uuid.uuid4().hex}.png", make_image("png", 30, 20), "image/png")
    response = client.store_reference(path, store_request(alt="From a URL", url=url))

    assert_success(response)
    asset = Contract.asset(response.json())
    assert asset["source"] == "url"
    assert asset["externalSourceAddress"] == url
    assert asset["sourceUrl"] == url
    assert response.headers["Location"].endswith(f"/-/entry/{asset['entryId']}")


def test_store_from_s3_arn(client: KoniferClient, s3: S3Service, path: str) -> None:
    """AssetStoreHelper.kt storeAsset with AssetReferenceContentSource.S3ArnSource (newAsset().s3Arn(...))."""
    key = f"client/{uuid.uuid4().hex}.png"
    s3.client().put_object(Bucket=SOURCE_BUCKET, Key=key, Body=make_image("png", 24, 24))
    arn = f"arn:aws:s3:::{SOURCE_BUCKET}/{key}"
    response = client.store_reference(path, store_request(arn=arn, tags=["from-s3"]))

    assert_success(response)
    asset = Contract.asset(response.json())
    assert asset["source"] == "arn"
    assert asset["externalSourceAddress"] == arn
    assert asset["sourceUrl"] == arn
    assert asset["tags"] == ["from-s3"]


def test_fetch_info_relative_and_absolute(client: KoniferClient, konifer_api: Deployment, path: str) -> None:
    """assets/fetch/AssetFetchHelper.kt fetchAssetInfo, from RelativeAssetSelection.kt and AbsoluteAssetSelection.kt."""
    first = stored(client, path, alt="first", labels={"team": "red"})
    second = stored(client, path, alt="second", labels={"team": "blue", "format": "poster"})

    newest = client.fetch_info(path)  # assets(path).fetchInfo(): /-/new/info
    assert_success(newest)
    assert newest.request.url.path.endswith("/-/new/info")
    assert Contract.asset(newest.json())["entryId"] == second["entryId"]

    by_label = client.fetch_info(path, labels={"Team": "red"})  # .matchingLabels(...).fetchInfo()
    assert_success(by_label)
    assert Contract.asset(by_label.json())["entryId"] == first["entryId"]

    reserved = client.fetch_info(path, labels={"format": "poster"})  # sent as label:format=poster
    assert_success(reserved)
    assert "label%3Aformat=poster" in str(reserved.request.url)
    assert Contract.asset(reserved.json())["entryId"] == second["entryId"]

    by_entry = client.fetch_info(path, entry_id=first["entryId"])  # .entry(id).fetchInfo(): /-/entry/{id}/info
    assert_success(by_entry)
    assert Contract.asset(by_entry.json())["alt"] == "first"
    assert by_entry.headers.get("K-Cache-Status") == "hit"


def test_fetch_entries(client: KoniferClient, path: str) -> None:
    """AssetFetchHelper.kt fetchAssetEntries, from RelativeAssetSelection.fetchEntries (default and explicit limit)."""
    entries = [stored(client, path, labels={"n": str(n)}) for n in range(3)]

    default = client.fetch_entries(path)  # /-/new/entries?limit=20
    assert_success(default)
    got = Contract.entries(default.json())
    assert [e["entryId"] for e in got] == [e["entryId"] for e in reversed(entries)]

    two = client.fetch_entries(path, limit=2)
    assert_success(two)
    assert len(Contract.entries(two.json())) == 2

    labelled = client.fetch_entries(path, labels={"n": "1"})
    assert_success(labelled)
    assert [e["entryId"] for e in Contract.entries(labelled.json())] == [entries[1]["entryId"]]

    modified = client.fetch_entries(path, order="modified")  # .orderBy(Order.MODIFIED).fetchEntries()
    assert_success(modified)
    assert len(Contract.entries(modified.json())) == 3

    empty = client.fetch_entries(f"{path}/nothing-here")
    assert_success(empty)
    assert Contract.entries(empty.json()) == []


def test_fetch_content_bytes_through_konifer(client: KoniferClient, path: str) -> None:
    """AssetFetchHelper.kt fetchAssetContentBytes with ContentDelivery.THROUGH_KONIFER (fetchContentBytes)."""
    asset = stored(client, path, alt="Content alt", labels={"team": "blue"})

    original = client.fetch_content(client.variant_url(path, "content"))  # /-/new/content, Accept: application/json
    assert_success(original)
    assert original.headers["content-type"] == "image/png"
    assert describe(original.content).width == 80
    assert_alt_headers(original, "Content alt")

    transformed = client.fetch_content(
        client.variant_url(path, "content", labels={"team": "blue"}, w="40", format="webp", fit="fit", r="90")
    )
    assert_success(transformed)
    assert transformed.headers["content-type"] == "image/webp"
    assert (describe(transformed.content).width, describe(transformed.content).height) == (30, 40)

    by_entry = client.fetch_content(
        client.variant_url(path, "content", entry_id=asset["entryId"], h="30", strip="exif,xmp", cs="srgb")
    )
    assert_success(by_entry)
    assert describe(by_entry.content).height == 30

    # Flip.NONE and Filter.NONE have the query value "": the client sends f= and filter=.
    none_values = client.fetch_content(
        client.variant_url(path, "content", entry_id=asset["entryId"], w="20", f="", filter="")
    )
    assert_success(none_values)
    assert describe(none_values.content).width == 20

    info = Contract.asset(client.fetch_info(path, entry_id=asset["entryId"]).json())
    generated = [v for v in info["variants"] if not v["isOriginalVariant"]]
    assert generated and all(v["transformation"] is not None for v in generated)


def test_fetch_content_following_the_redirect(client: KoniferClient, path: str) -> None:
    """AssetFetchHelper.kt fetchAssetContentBytes with ContentDelivery.FOLLOW_REDIRECT: `redirect`, followed."""
    asset = stored(client, path, alt="Redirected")
    response = client.fetch_content(client.variant_url(path, "redirect", entry_id=asset["entryId"], w="40"))
    assert_success(response)
    assert response.history and response.history[0].status_code == 307
    assert response.history[0].request.headers["accept"] == "application/json"
    assert response.headers["content-type"] == "image/png"
    assert describe(response.content).width == 40


def test_fetch_link(client: KoniferClient, path: str) -> None:
    """AssetFetchHelper.kt fetchAssetLink (VariantSelection.fetchLink)."""
    asset = stored(client, path, alt="Linked")
    response = client.http.get(client.variant_url(path, "link", w="40", format="jpg"))
    assert_success(response)
    link = Contract.link(response.json())
    assert link["alt"] == "Linked"
    assert (link["attributes"]["width"], link["attributes"]["format"]) == (40, "jpg")
    assert "expiresAt" not in link  # not a presigned URL
    assert_alt_headers(response, "Linked")
    assert response.headers.get("K-Cache-Status") in ("hit", "miss")

    followed = client.fetch_content(link["url"])
    assert_success(followed)
    assert followed.headers["content-type"] == "image/jpeg"

    by_entry = client.http.get(client.variant_url(path, "link", entry_id=asset["entryId"]))
    assert_success(by_entry)
    original = Contract.link(by_entry.json())
    assert (original["attributes"]["width"], original["attributes"]["format"]) == (80, "png")


def test_update(client: KoniferClient, path: str) -> None:
    """assets/update/AssetUpdateHelper.kt updateAsset (AssetAtPath.updateAsset(current))."""
    asset = stored(client, path, alt="before", labels={"a": "1"}, tags=["x"])
    response = client.update(path, asset["entryId"], store_request(alt="after", labels={"b": "2"}, tags=["y", "z"]))
    assert_success(response)
    updated = Contract.asset(response.json())
    assert (updated["alt"], updated["labels"], sorted(updated["tags"])) == ("after", {"b": "2"}, ["y", "z"])

    # Clearing everything: kotlinx leaves the defaults out, so the body is `{}`.
    cleared = client.update(path, asset["entryId"], store_request())
    assert_success(cleared)
    body = Contract.asset(cleared.json())
    assert body.get("alt") is None and body["labels"] == {} and body["tags"] == []


def test_delete_entry(client: KoniferClient, path: str) -> None:
    """assets/delete/AssetDeleteHelper.kt deleteAsset with AssetDeleteTarget.Entry (entry(id).deleteFirst())."""
    keep = stored(client, path)
    gone = stored(client, path)
    assert_success(client.delete_entry(path, gone["entryId"]))
    assert client.fetch_info(path, entry_id=gone["entryId"]).status_code == 404
    assert_success(client.fetch_info(path, entry_id=keep["entryId"]))


def test_delete_first_at_path(client: KoniferClient, path: str) -> None:
    """AssetDeleteHelper.kt with AssetDeleteTarget.AtPath: /-/new?{labels}&limit=N (deleteFirst, deleteFirst(limit))."""
    oldest = stored(client, path, labels={"team": "red"})
    stored(client, path, labels={"team": "blue"})
    newest = stored(client, path, labels={"team": "red"})

    assert_success(client.delete_at_path(path, limit=1, labels={"Team": "red"}))
    remaining = {e["entryId"] for e in Contract.entries(client.fetch_entries(path).json())}
    assert newest["entryId"] not in remaining and oldest["entryId"] in remaining

    assert_success(client.delete_at_path(path, limit=5))
    assert Contract.entries(client.fetch_entries(path).json()) == []


def test_delete_recursively(client: KoniferClient, path: str) -> None:
    """AssetDeleteHelper.kt with AssetDeleteTarget.Recursive (deleteRecursively())."""
    stored(client, path)
    stored(client, f"{path}/nested")
    assert_success(client.delete_recursively(path))
    assert Contract.entries(client.fetch_entries(path).json()) == []
    assert Contract.entries(client.fetch_entries(f"{path}/nested").json()) == []


def test_failures_read_as_error_response(client: KoniferClient, path: str) -> None:
    """KoniferResult.kt toKoniferV2Result: a non-2xx answer's ErrorResponse.message."""
    missing = client.fetch_info(path, entry_id=999_999)
    assert missing.status_code == 404
    assert isinstance(Contract.error_message(missing), str)

    refused = client.store_reference(path, store_request())
    assert refused.status_code == 400
    assert Contract.error_message(refused) == "URL or S3 ARN must be supplied"


def test_health_as_konifers_load_harness_polls_it(konifer_api: Deployment) -> None:
    """Not the client: performance/k6/load.ts polls GET /health for {"status":"okay"} (spec 06 section 7)."""
    response = httpx.get(f"{konifer_api.base_url}/health", headers=KTOR_HEADERS)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "okay"}
