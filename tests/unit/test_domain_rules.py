import pytest

from konifer_edge.domain.errors import BadRequest
from konifer_edge.domain.formats import ImageFormat, sniff_format
from konifer_edge.domain.metadata_rules import validate_metadata
from konifer_edge.domain.models import AssetMetadataInput
from konifer_edge.domain.paths import normalise_asset_path
from konifer_edge.domain.query import split_query
from tests.support.images import make_image


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("jpg", ImageFormat.JPEG),
        ("png", ImageFormat.PNG),
        ("webp", ImageFormat.WEBP),
        ("avif", ImageFormat.AVIF),
        ("jxl", ImageFormat.JPEG_XL),
        ("heic", ImageFormat.HEIC),
        ("gif", ImageFormat.GIF),
    ],
)
def test_sniff_real_images(fmt: str, expected: ImageFormat) -> None:
    assert sniff_format(make_image(fmt)[:64]) is expected


@pytest.mark.parametrize(
    "head",
    [b"", b"%PDF-1.7\n", b"<svg xmlns='http://www.w3.org/2000/svg'>", b"BM6\x00\x00\x00", b"RIFF\x00\x00\x00\x00WAVE"],
)
def test_sniff_refuses_other_content(head: bytes) -> None:
    assert sniff_format(head) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("users/123/profile-picture", "/users/123/profile-picture"), ("/Users/A_b~c/", "/Users/A_b~c")],
)
def test_paths_normalise(raw: str, expected: str) -> None:
    assert normalise_asset_path(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "/", "a//b", "a/../b", "a/./b", "a/b c", "a/\x00", "a/%2e%2e", "a/-/b", "é", "a" * 1025, "a/" * 65]
)
def test_paths_refused(raw: str) -> None:
    with pytest.raises(BadRequest):
        normalise_asset_path(raw)


def test_query_split_labels_transformations_and_limit() -> None:
    parts = split_query(
        [("w", "10"), ("phone", "android"), ("label:w", "wide"), ("limit", "3"), ("s", "sig"), ("phone", "ios")]
    )
    assert parts.transformation == {"w": "10"}
    assert parts.labels == {"phone": "android", "w": "wide"}
    assert parts.limit == "3"


def test_metadata_limits() -> None:
    validate_metadata(AssetMetadataInput(alt="a" * 125, labels={"k" * 128: "v" * 256}, tags=["t" * 256] * 50))
    bad = [
        AssetMetadataInput(alt="a" * 126),
        AssetMetadataInput(labels={f"k{i}": "v" for i in range(51)}),
        AssetMetadataInput(labels={"k" * 129: "v"}),
        AssetMetadataInput(labels={"k": "v" * 257}),
        AssetMetadataInput(labels={"": "v"}),
        AssetMetadataInput(tags=["t"] * 51),
        AssetMetadataInput(tags=["t" * 257]),
        AssetMetadataInput(tags=["bad\nline"]),
    ]
    for metadata in bad:
        with pytest.raises(BadRequest):
            validate_metadata(metadata)
