"""group_sums: each group's floats summed exactly (correctly rounded), so a sum depends on the group's values
only, never on the row order, polars' threads or the CPU."""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.group_sums import exact_sum, group_means, group_std, group_sums, sum_over


def _exact(values: list[float]) -> float:
    """The oracle: the sum in exact rational arithmetic, rounded once to a float."""
    return float(sum((Fraction(v) for v in values), Fraction(0)))


def test_every_row_order_gives_the_exact_sum() -> None:
    # left to right, [1e16, 1, -1e16] gives 0 and [1e16, -1e16, 1] gives 1; the exact sum is 1
    for order in itertools.permutations([1e16, 1.0, -1e16]):
        df = pl.DataFrame({"g": ["a"] * 3, "x": list(order)})
        assert group_sums(df, ["g"], ["x"]).rows() == [("a", 1.0)]


def test_groups_come_sorted_by_key_and_nulls_count_as_zero() -> None:
    df = pl.DataFrame(
        {"k1": [2, 1, 2, 1, 3], "k2": ["b", "a", "b", "z", "c"], "x": [0.5, 1.0, None, 2.0, 4.0],
         "y": [1, 2, 3, 4, 5]}
    )  # fmt: skip
    out = group_sums(df, ["k1", "k2"], ["x", "y"])
    assert out.rows() == [(1, "a", 1.0, 2.0), (1, "z", 2.0, 4.0), (2, "b", 0.5, 4.0), (3, "c", 4.0, 5.0)]
    assert out.schema == {"k1": pl.Int64, "k2": pl.String, "x": pl.Float64, "y": pl.Float64}
    assert group_sums(df.head(0), ["k1"], ["x"]).height == 0


def test_a_key_may_be_an_expression() -> None:
    df = pl.DataFrame({"c": ["FR", "DE", "FR"], "w": [1.0, 2.0, 3.0]})
    out = group_sums(df, [pl.col("c").cast(pl.Categorical).cast(pl.String).alias("country")], ["w"])
    assert out.rows() == [("DE", 2.0), ("FR", 4.0)]


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 4), st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)),
        max_size=60,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_sums_match_the_oracle_whatever_the_row_order(rows: list[tuple[int, float]], seed: int) -> None:
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    want = {g: _exact([v for k, v in rows if k == g]) for g in sorted({k for k, _ in rows})}
    for data in (rows, shuffled):
        df = pl.DataFrame(
            {"g": [r[0] for r in data], "x": [r[1] for r in data]}, schema={"g": pl.Int64, "x": pl.Float64}
        )
        assert dict(group_sums(df, ["g"], ["x"]).rows()) == want
        assert sum_over(df, ["g"], "x").to_list() == [want[k] for k, _ in data]


def test_exact_sum_of_a_column_is_the_rational_sum() -> None:
    values = [1e16, 1.0, -1e16, 0.1, 0.2, None]
    assert exact_sum(pl.Series(values)) == _exact([v for v in values if v is not None]) == 1.3
    assert exact_sum(np.array([0.1] * 10)) == 1.0  # left to right: 0.9999999999999999
    assert exact_sum(pl.Series([], dtype=pl.Float64)) == 0.0


def test_group_means_and_std_against_exact_rational_answers() -> None:
    df = pl.DataFrame({"g": ["b", "a", "b", "a", "a", "c", "b"], "x": [1e16, 1.0, 1.0, 2.0, 4.0, 5.0, -1e16]})
    means = group_means(df, ["g"], "x")
    # a: 7/3; b: exactly (1e16 + 1 − 1e16) / 3 = 1/3, where a left-to-right sum gives 0 or 1/3 by order
    assert means.rows() == [("a", float(Fraction(7, 3))), ("b", float(Fraction(1, 3))), ("c", 5.0)]
    sd = group_std(df.filter(pl.col("g") != "b"), ["g"], "x")
    # a: deviations −4/3, −1/3, 5/3 → Σ² = 42/9, / (n − 1) = 7/3; one row has no sample sd
    assert sd["g"].to_list() == ["a", "c"]
    assert sd["x"][0] == math.sqrt(7 / 3) and sd["x"][1] is None


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=2, max_size=40),
    seed=st.integers(0, 2**32 - 1),
)
def test_group_std_is_close_to_the_exact_sample_sd_in_any_order(values: list[float], seed: int) -> None:
    n = len(values)
    mean = sum((Fraction(v) for v in values), Fraction(0)) / n
    want = math.sqrt(float(sum(((Fraction(v) - mean) ** 2 for v in values), Fraction(0)) / (n - 1)))
    shuffled = values[:]
    random.Random(seed).shuffle(shuffled)
    got = [group_std(pl.DataFrame({"g": [0] * n, "x": v}), ["g"], "x")["x"][0] for v in (values, shuffled)]
    assert got[0] == got[1]
    assert math.isclose(got[0], want, rel_tol=1e-9, abs_tol=1e-9)
