import pytest

from konifer_edge.domain.errors import BadRequest
from konifer_edge.domain.selectors import (
    ALL,
    DeleteScope,
    Order,
    ReturnFormat,
    parse_delete_selector,
    parse_fetch_selector,
    parse_update_selector,
    split_asset_path,
)


@pytest.mark.parametrize(
    ("raw", "path", "tokens"),
    [
        ("users/1", "/users/1", []),
        ("users/1/", "/users/1", []),
        ("users/1/-/link/created/3", "/users/1", ["link", "created", "3"]),
        ("users/1/-/entry/4/content", "/users/1", ["entry", "4", "content"]),
        ("users/1/-", "/users/1", []),
        ("users/1/-/", "/users/1", []),
    ],
)
def test_split_asset_path(raw: str, path: str, tokens: list[str]) -> None:
    assert split_asset_path(raw) == (path, tokens)


def test_defaults_are_link_created_one() -> None:
    selector = parse_fetch_selector([], None)
    assert (selector.return_format, selector.order, selector.limit, selector.entry_id) == (
        ReturnFormat.LINK,
        Order.CREATED,
        1,
        None,
    )


@pytest.mark.parametrize(
    ("tokens", "limit", "expected"),
    [
        (["metadata", "created", "3"], None, (ReturnFormat.METADATA, Order.CREATED, 3, None)),
        (["metadata", "new"], "3", (ReturnFormat.METADATA, Order.CREATED, 3, None)),
        (["new", "link"], "-1", (ReturnFormat.LINK, Order.CREATED, ALL, None)),
        (["info", "modified"], None, (ReturnFormat.METADATA, Order.MODIFIED, 1, None)),
        (["redirect", "entry", "42"], None, (ReturnFormat.REDIRECT, Order.CREATED, 1, 42)),
        (["entry", "42", "content"], None, (ReturnFormat.CONTENT, Order.CREATED, 1, 42)),
        (["CONTENT"], None, (ReturnFormat.CONTENT, Order.CREATED, 1, None)),
        (["created"], None, (ReturnFormat.LINK, Order.CREATED, 1, None)),
    ],
)
def test_fetch_spellings(tokens: list[str], limit: str | None, expected: tuple[object, ...]) -> None:
    selector = parse_fetch_selector(tokens, limit)
    assert (selector.return_format, selector.order, selector.limit, selector.entry_id) == expected


@pytest.mark.parametrize(
    ("tokens", "limit"),
    [
        (["link", "metadata"], None),  # two formats
        (["new", "modified"], None),  # two orders
        (["metadata", "3", "4"], None),  # two limits
        (["metadata", "3"], "4"),  # positional and query limit
        (["entry", "1", "new"], None),  # order with entry
        (["entry", "1"], "2"),  # limit with entry
        (["entry"], None),  # entry without id
        (["entry", "x"], None),
        (["entry", "-1"], None),
        (["content", "3"], None),  # many only for link/metadata
        (["download"], "-1"),
        (["metadata", "0"], None),
        (["metadata", "-2"], None),
        (["metadata", "100000"], None),
        (["metadata"], "abc"),
        (["bogus"], None),
        (["all"], None),  # a delete word on fetch
    ],
)
def test_fetch_refusals(tokens: list[str], limit: str | None) -> None:
    with pytest.raises(BadRequest):
        parse_fetch_selector(tokens, limit)


def test_delete_selectors() -> None:
    assert parse_delete_selector([], None).scope is DeleteScope.NEWEST
    assert parse_delete_selector(["all"], None).scope is DeleteScope.ALL
    assert parse_delete_selector(["recursive"], None).scope is DeleteScope.RECURSIVE
    newest = parse_delete_selector(["new", "5"], None)
    assert (newest.limit, newest.order) == (5, Order.CREATED)
    assert parse_delete_selector(["modified"], "-1").limit == ALL
    assert parse_delete_selector(["entry", "9"], None).entry_id == 9


@pytest.mark.parametrize(
    "tokens", [["link"], ["all", "3"], ["recursive", "new"], ["all", "entry", "1"], ["all", "recursive"]]
)
def test_delete_refusals(tokens: list[str]) -> None:
    with pytest.raises(BadRequest):
        parse_delete_selector(tokens, None)


def test_update_needs_exactly_an_entry() -> None:
    assert parse_update_selector(["entry", "3"]) == 3
    assert parse_update_selector(["ENTRY", "3"]) == 3
    for tokens in ([], ["metadata"], ["entry", "3", "link"], ["new", "3"]):
        with pytest.raises(BadRequest):
            parse_update_selector(tokens)
