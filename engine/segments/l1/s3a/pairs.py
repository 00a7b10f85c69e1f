"""What 3A's states share about (merchant, legal country) pairs: their key, and how a state refuses pairs
that break one of its laws."""

from __future__ import annotations

import polars as pl

from engine.core.errors import EngineError

PAIR = ["merchant_id", "legal_country_iso"]


def refuse_pairs(
    bad: pl.DataFrame, code: str, problem: str, detail: str, *, where: str, fix: str, state: str
) -> None:
    """Raise `code` if `bad` holds any pair: how many, and the first in key order, with `detail` formatted
    over that row's columns."""
    if bad.height == 0:
        return
    row = bad.sort(PAIR).row(0, named=True)
    raise EngineError(
        code,
        f"{bad.height} pairs {problem}, e.g. merchant {row['merchant_id']} in {row['legal_country_iso']}: "
        + detail.format(**row),
        where=where,
        fix=fix,
        state=state,
    )
