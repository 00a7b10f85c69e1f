"""Float group sums that do not depend on polars' threads.

Polars adds a group's floats in the order its thread pool meets them, so the last bits of
`group_by().agg(pl.col(x).sum())` change with the machine's core count and even from run to run (measured:
3 M rows in 50 groups, 2 threads, a new result each run). Where such a sum reaches a published value or a
decision (a rounded size, a draw count), it is summed here instead, exactly: `math.fsum` returns the
correctly rounded sum of a group's values, which no order of addition, thread count or CPU can change (numpy's
reductions add pairwise in blocks whose grouping is theirs to choose). No numba, so the states that draw
nothing still start without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl


def group_sums(df: pl.DataFrame, keys: Sequence[str | pl.Expr], values: Sequence[str]) -> pl.DataFrame:
    """One row per distinct key, sorted by key, with each of `values` summed (a null counts as 0) as Float64
    under its own name."""
    keyed = df.select(*keys, *(pl.col(v).cast(pl.Float64).fill_null(0.0) for v in values))
    names = keyed.columns[: len(keys)]
    if keyed.height == 0:
        return keyed.head(0)
    rows = keyed.sort(names)
    starts = np.flatnonzero(rows.select(pl.struct(names).is_first_distinct()).to_series().to_numpy())
    sums = [
        pl.Series(
            v, [math.fsum(group) for group in np.split(rows[v].to_numpy(), starts[1:])], dtype=pl.Float64
        )
        for v in values
    ]
    return rows[starts].select(names).with_columns(sums)


def sum_over(df: pl.DataFrame, keys: Sequence[str], value: str) -> pl.Series:
    """`pl.col(value).sum().over(keys)` for each row of `df`, from group_sums."""
    sums = group_sums(df, keys, [value])
    return df.select(keys).join(sums, on=list(keys), how="left", maintain_order="left")[value]


def exact_sum(values: pl.Series | np.ndarray) -> float:
    """The correctly rounded sum of a float column (a null counts as 0): polars and numpy add a column chunk
    by chunk or block by block, and the chunks of a frame depend on the threads of the query that made it."""
    if isinstance(values, pl.Series):
        values = values.cast(pl.Float64).fill_null(0.0).to_numpy()
    return math.fsum(values)


def group_means(df: pl.DataFrame, keys: Sequence[str], value: str) -> pl.DataFrame:
    """One row per distinct key, sorted by key: the group's exact sum of `value` over its row count (nulls
    left out), as Float64 under the value's name."""
    rows = df.filter(pl.col(value).is_not_null()).with_columns(pl.lit(1.0).alias("_n"))
    sums = group_sums(rows, keys, [value, "_n"])
    return sums.select(*keys, (pl.col(value) / pl.col("_n")).alias(value))


def group_std(df: pl.DataFrame, keys: Sequence[str], value: str) -> pl.DataFrame:
    """One row per distinct key, sorted by key: the sample standard deviation (n − 1, null for one row) of
    `value`, two-pass from exact sums, under the value's name."""
    rows = df.filter(pl.col(value).is_not_null()).select(*keys, pl.col(value).cast(pl.Float64))
    means = group_means(rows, keys, value).rename({value: "_mean"})
    centred = rows.join(means, on=list(keys), how="left").select(
        *keys, ((pl.col(value) - pl.col("_mean")) ** 2).alias("_sq"), pl.lit(1.0).alias("_n")
    )
    sums = group_sums(centred, keys, ["_sq", "_n"])
    return sums.select(
        *keys,
        pl.when(pl.col("_n") > 1).then((pl.col("_sq") / (pl.col("_n") - 1.0)).sqrt()).alias(value),
    )
