"""Which source a JSON store body names, in Konifer's words (spec 06 section 9)."""

from __future__ import annotations

import pytest

from konifer_edge.domain.errors import BadRequest
from konifer_edge.sources.requested import (
    HttpSourceBody,
    S3SourceBody,
    SourceBody,
    UrlSource,
    choose_source,
    parse_s3_object_arn,
    remove_dot_segments,
)
from konifer_edge.sources.s3_object import S3ObjectSource


def refusal(source: SourceBody | None, url: str | None = None) -> str:
    with pytest.raises(BadRequest) as raised:
        choose_source(source, url)
    assert raised.value.status == 400
    return raised.value.message


def test_an_http_url_is_chosen_with_its_dot_segments_resolved() -> None:
    chosen = choose_source(SourceBody(http=HttpSourceBody("https://assets.example/images/../asset.png")), None)
    assert chosen == UrlSource("https://assets.example/asset.png")


def test_the_deprecated_url_is_used_only_without_source_http_url() -> None:
    assert choose_source(None, "https://a.example/old.png") == UrlSource("https://a.example/old.png")
    assert choose_source(SourceBody(), "https://a.example/old.png") == UrlSource("https://a.example/old.png")
    current = SourceBody(http=HttpSourceBody("https://a.example/current.png"))
    assert choose_source(current, "https://a.example/old.png") == UrlSource("https://a.example/current.png")


def test_an_arn_with_a_nested_key_is_chosen() -> None:
    chosen = choose_source(SourceBody(s3=S3SourceBody("arn:aws:s3:::asset-sources/images/2026/asset.png")), None)
    assert chosen == S3ObjectSource(
        arn="arn:aws:s3:::asset-sources/images/2026/asset.png", bucket="asset-sources", key="images/2026/asset.png"
    )


def test_other_partitions_are_s3_object_arns_too() -> None:
    assert parse_s3_object_arn("arn:aws-cn:s3:::b/k").bucket == "b"


def test_no_source_and_two_sources_are_refused() -> None:
    assert refusal(None) == "URL or S3 ARN must be supplied"
    assert refusal(SourceBody(http=HttpSourceBody(), s3=S3SourceBody())) == "URL or S3 ARN must be supplied"
    both = SourceBody(http=HttpSourceBody("https://a.example/a.png"), s3=S3SourceBody("arn:aws:s3:::b/k"))
    assert refusal(both) == "Only one of source.http.url or source.s3.arn, or url can be supplied"
    assert (
        refusal(SourceBody(s3=S3SourceBody("arn:aws:s3:::b/k")), "https://a.example/a.png")
        == "Only one of source.http.url or source.s3.arn, or url can be supplied"
    )


@pytest.mark.parametrize("url", ["https://[invalid", "https://a.example/a b.png", "https://a.example:99999/", ""])
def test_a_url_that_is_no_url_is_refused_by_itself(url: str) -> None:
    assert refusal(SourceBody(http=HttpSourceBody(url))) == f"{url} is not a valid URL"


@pytest.mark.parametrize(
    ("arn", "message"),
    [
        ("not-an-arn", "Invalid ARN"),
        ("arn:aws:s3:::asset-sources/", "Invalid ARN"),
        ("arn::s3:::b/k", "Invalid ARN"),
        ("arn:aws:lambda:us-east-1:123456789012:function:asset-reader", "Not an S3 object ARN"),
        ("arn:aws:s3:us-east-1::asset-sources/asset.png", "Not an S3 object ARN"),
        ("arn:aws:s3::123456789012:asset-sources/asset.png", "Not an S3 object ARN"),
        ("arn:aws:s3:::asset-sources", "S3 object ARN must contain a bucket and key"),
        ("arn:aws:s3:::/asset.png", "S3 object ARN must contain a bucket and key"),
    ],
)
def test_arns_are_refused_as_konifer_refuses_them(arn: str, message: str) -> None:
    assert refusal(SourceBody(s3=S3SourceBody(arn))) == message


def test_a_bucket_no_s3_client_accepts_is_a_bad_request() -> None:
    assert "not a bucket name" in refusal(SourceBody(s3=S3SourceBody("arn:aws:s3:::b@d/k.png")))


@pytest.mark.parametrize(
    ("path", "resolved"),
    [
        ("/a/b/c/./../../g", "/a/g"),
        ("/a/../b", "/b"),
        ("/../a", "/a"),
        ("/a/b/..", "/a/"),
        ("/a/./b/.", "/a/b/"),
        ("/a//b", "/a//b"),
        ("", ""),
        ("/", "/"),
    ],
)
def test_dot_segments_are_removed_as_rfc_3986_says(path: str, resolved: str) -> None:
    assert remove_dot_segments(path) == resolved
