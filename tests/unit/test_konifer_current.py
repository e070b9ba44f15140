"""Pure rules of spec 06: the `entries` selector, PUT's selector, and query labels."""

from __future__ import annotations

import pytest

from konifer_edge.domain.errors import BadRequest
from konifer_edge.domain.query import split_query
from konifer_edge.domain.selectors import (
    ALL,
    Order,
    ReturnFormat,
    parse_delete_selector,
    parse_fetch_selector,
    parse_update_selector,
)


@pytest.mark.parametrize(
    ("tokens", "limit", "expected_order", "expected_limit"),
    [
        (["entries"], None, Order.CREATED, 20),
        (["new", "entries"], None, Order.CREATED, 20),
        (["modified", "entries"], "5", Order.MODIFIED, 5),
        (["entries", "3"], None, Order.CREATED, 3),
        (["entries"], "-1", Order.CREATED, ALL),
        (["entries"], "1", Order.CREATED, 1),
    ],
)
def test_entries_selector(tokens: list[str], limit: str | None, expected_order: Order, expected_limit: int) -> None:
    selector = parse_fetch_selector(tokens, limit)
    assert selector.return_format is ReturnFormat.ENTRIES
    assert selector.order is expected_order
    assert selector.limit == expected_limit
    assert selector.many, "entries always answer a list"


@pytest.mark.parametrize("tokens", [["entries", "entry", "1"], ["entry", "0", "entries"]])
def test_entries_by_entry_id_are_refused(tokens: list[str]) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_fetch_selector(tokens, None)
    assert caught.value.message == "Entries cannot be selected by entry ID"


def test_entries_mean_nothing_on_delete() -> None:
    with pytest.raises(BadRequest):
        parse_delete_selector(["entries"], None)


def test_delete_with_only_a_query_limit() -> None:
    selector = parse_delete_selector([], "3")
    assert (selector.limit, selector.entry_id) == (3, None)
    assert parse_delete_selector([], "-1").limit == ALL
    with pytest.raises(BadRequest):
        parse_delete_selector([], "abc")


@pytest.mark.parametrize(
    ("tokens", "limit"),
    [
        (["entry", "1"], "2"),
        (["entry", "1", "new"], None),
        (["entry", "1", "link"], None),
        (["metadata", "entry", "1"], None),
        (["entry", "1", "3"], None),
        (["new"], None),
        ([], "1"),
        ([], None),
        (["entry"], None),
        (["entry", "x"], None),
    ],
)
def test_update_takes_only_an_entry(tokens: list[str], limit: str | None) -> None:
    with pytest.raises(BadRequest):
        parse_update_selector(tokens, limit)


def test_update_entry() -> None:
    assert parse_update_selector(["entry", "7"]) == 7
    assert parse_update_selector(["Entry", "0"], None) == 0


def test_query_labels_skip_empty_values_and_reserved_names() -> None:
    parts = split_query(
        [("a", ""), ("label:b", ""), ("label:c", "x"), ("pixel-layout", "RGB"), ("exp", "1"), ("d", "y"), ("a", "z")]
    )
    assert parts.labels == {"c": "x", "exp": "1", "d": "y", "a": "z"}
    assert parts.transformation == {}
