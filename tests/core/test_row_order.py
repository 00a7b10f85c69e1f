"""A contract's sort_key (engine.core.row_order): the first row that sorts before the one above it is found
wherever the batches are cut, and named by its row in the partition and both rows' key values."""

from __future__ import annotations

import itertools

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.contracts import TableSchema, table_schema
from engine.core.errors import EngineError
from engine.core.row_order import RowOrder, in_key_order

PAIRS = TableSchema(
    name="pairs",
    columns={"a": {"dtype": "u32"}, "b": {"dtype": "i64"}, "note": {"dtype": "str"}},
    primary_key=("a", "b"),
    unique=(),
    sort_key=("a", "b"),
)


def _frame(rows: list[tuple[int, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"a": [r[0] for r in rows], "b": [r[1] for r in rows], "note": ["x"] * len(rows)},
        schema={"a": pl.UInt32, "b": pl.Int64, "note": pl.String},
    )


def _walk(schema: TableSchema, batches: list[pl.DataFrame]) -> None:
    order = RowOrder(schema)
    for batch in batches:
        order.check(batch, where="part", state="T.S1")


def test_rows_in_order_pass_ties_included() -> None:
    _walk(PAIRS, [_frame([(1, 1), (1, 1), (1, 2)]), _frame([(1, 2), (2, -5)]), _frame([]), _frame([(3, 0)])])


def test_a_step_back_inside_a_batch_is_named() -> None:
    with pytest.raises(EngineError) as info:
        _walk(PAIRS, [_frame([(1, 1), (1, 2)]), _frame([(2, 0), (1, 5), (0, 0)])])
    err = info.value
    assert err.code == "E_SCHEMA"
    assert err.what == (
        "row 3 sorts before the row above it by the sort key ['a', 'b']: ('1', '5') after ('2', '0')"
    )
    assert err.where == "part"


def test_a_step_back_across_batches_is_named_by_its_row_in_the_partition() -> None:
    with pytest.raises(EngineError) as info:
        _walk(PAIRS, [_frame([(1, 1), (2, 7)]), _frame([]), _frame([(2, 6), (3, 0)])])
    assert info.value.what == (
        "row 2 sorts before the row above it by the sort key ['a', 'b']: ('2', '6') after ('2', '7')"
    )


def test_a_table_without_a_sort_key_promises_no_order() -> None:
    free = TableSchema(name="free", columns=PAIRS.columns, primary_key=("a",), unique=(), sort_key=())
    _walk(free, [_frame([(3, 0), (1, 0)])])


def test_an_enum_column_sorts_in_its_listed_order() -> None:
    # merchant_zone_profile's channel_group is an enum [CP, CNP]: CP sorts first although "CNP" < "CP"
    schema = table_schema("5A.yaml#/tables/merchant_zone_profile")
    assert schema.sort_key == ("merchant_id", "legal_country_iso", "tzid", "channel_group")
    assert schema.columns["channel_group"]["enum"] == ["CP", "CNP"]
    keyed = TableSchema("t", {c: schema.columns[c] for c in schema.sort_key}, (), (), schema.sort_key)

    def rows(groups: list[str]) -> pl.DataFrame:
        n = len(groups)
        return pl.DataFrame(
            {
                "merchant_id": [7] * n,
                "legal_country_iso": ["FR"] * n,
                "tzid": ["Europe/Paris"] * n,
                "channel_group": groups,
            },
            schema={"merchant_id": pl.UInt64, "legal_country_iso": pl.Categorical, "tzid": pl.Categorical,
                    "channel_group": pl.Enum(["CP", "CNP"])},
        )  # fmt: skip

    _walk(keyed, [rows(["CP", "CNP"])])
    with pytest.raises(EngineError) as info:
        _walk(keyed, [rows(["CNP", "CP"])])
    assert info.value.what.endswith(
        "('7', 'FR', 'Europe/Paris', 'CP') after ('7', 'FR', 'Europe/Paris', 'CNP')"
    )


def test_a_categorical_without_an_enum_sorts_by_its_text_not_its_codes() -> None:
    keyed = TableSchema("t", {"country": {"dtype": "cat"}}, ("country",), (), ("country",))
    pl.Series(["ZW", "FR", "DE"], dtype=pl.Categorical)  # codes in first-seen order: ZW < FR < DE
    _walk(keyed, [pl.DataFrame({"country": ["DE", "FR", "ZW"]}, schema={"country": pl.Categorical})])
    with pytest.raises(EngineError) as info:
        _walk(keyed, [pl.DataFrame({"country": ["DE", "ZW", "FR"]}, schema={"country": pl.Categorical})])
    assert info.value.what.endswith("('FR',) after ('ZW',)")


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 3), st.integers(-2, 2)), max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=5),
)
def test_the_first_step_back_is_found_wherever_the_batches_are_cut(
    rows: list[tuple[int, int]], cuts: list[int]
) -> None:
    # oracle: plain tuple comparison of each row with the one above it
    first = next((i for i in range(1, len(rows)) if rows[i] < rows[i - 1]), None)
    edges = [0, *sorted(min(c, len(rows)) for c in cuts), len(rows)]
    batches = [_frame(rows[lo:hi]) for lo, hi in itertools.pairwise(edges)]
    if first is None:
        _walk(PAIRS, batches)
        return
    with pytest.raises(EngineError) as info:
        _walk(PAIRS, batches)
    here, above = rows[first], rows[first - 1]
    assert info.value.what == (
        f"row {first} sorts before the row above it by the sort key ['a', 'b']: "
        f"{tuple(map(str, here))} after {tuple(map(str, above))}"
    )


def _sorted_by_python(rows: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The oracle: Python's stable sort by (a, b)."""
    return sorted(rows, key=lambda r: (r[0], r[1]))


def test_in_key_order_returns_a_table_in_order_as_it_is() -> None:
    df = pl.DataFrame({"a": [1, 1, 2], "b": [5, 7, 0], "row": [0, 1, 2]})
    assert in_key_order(df, ("a", "b")) is df


def test_in_key_order_regroups_a_table_ordered_by_its_later_key() -> None:
    # ordered by (b, a), as 6A's links are by (device, party) when S1 needs (party, device)
    rows = [(2, 1, 0), (1, 3, 1), (2, 3, 2), (1, 8, 3), (1, 9, 4)]
    df = pl.DataFrame(rows, schema=["a", "b", "row"], orient="row")
    assert in_key_order(df, ("a", "b")).rows() == [(1, 3, 1), (1, 8, 3), (1, 9, 4), (2, 1, 0), (2, 3, 2)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=30))
def test_in_key_order_is_the_stable_sort_whatever_the_input_order(keys: list[tuple[int, int]]) -> None:
    rows = [(a, b, i) for i, (a, b) in enumerate(keys)]  # `row` tells ties apart: they keep their order
    df = pl.DataFrame(rows, schema={"a": pl.Int64, "b": pl.Int64, "row": pl.Int64}, orient="row")
    assert in_key_order(df, ("a", "b")).rows() == _sorted_by_python(rows)
    by_b = sorted(rows, key=lambda r: r[1])  # the links' case: in order by the later key first
    df_b = pl.DataFrame(by_b, schema={"a": pl.Int64, "b": pl.Int64, "row": pl.Int64}, orient="row")
    assert in_key_order(df_b, ("a", "b")).rows() == _sorted_by_python(by_b)
