"""Row order: a contract may promise a `sort_key`, the order a table's rows keep in each partition
(docs/outputs.md: "Rows sorted by …"). Readers rely on it (streamed joins, 6B.S7's merchant chunks), so
every publish checks it, and so do the validation states that read a table back, batch by batch across a
partition's parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from engine.core.errors import EngineError

if TYPE_CHECKING:
    from engine.core.contracts import TableSchema


def rank(col: str, spec: dict[str, Any]) -> pl.Expr:
    """What a key column sorts by: an enum column by its place in the contract's list, any other categorical
    by its text (a world's vocabulary is its sorted texts), every other column by its value."""
    if spec["dtype"] != "cat":
        return pl.col(col)
    text = pl.col(col).cast(pl.String)
    return text.cast(pl.Enum(spec["enum"])).to_physical() if "enum" in spec else text


def sorts_before_predecessor(keys: tuple[str, ...]) -> pl.Expr:
    """True where a row sorts strictly before the row above it, lexicographically over `keys` (the first
    row, with no row above it, is never out of order)."""
    expr = pl.lit(False)
    for key in reversed(keys):
        here, above = pl.col(key), pl.col(key).shift(1)
        expr = (here < above) | ((here == above) & expr)
    return expr.fill_null(False)


@dataclass
class RowOrder:
    """Follows one partition's rows through its batches (in part and row order) and raises `code` at the
    first row that sorts before the one above it, naming both by their key values."""

    schema: TableSchema
    _last: tuple[pl.DataFrame, pl.DataFrame] | None = None  # the previous batch's last row: values, ranks
    _rows: int = 0

    @property
    def keys(self) -> tuple[str, ...]:
        return self.schema.sort_key

    def check(self, df: pl.DataFrame, *, where: str, state: str, code: str = "E_SCHEMA") -> None:
        if not self.keys or df.height == 0:
            return
        ranks = df.select(rank(k, self.schema.columns[k]).alias(k) for k in self.keys)
        carried = self._last is not None
        joined = pl.concat([self._last[1], ranks]) if self._last is not None else ranks
        first = joined.select(sorts_before_predecessor(self.keys).arg_true().first()).item()
        if first is not None:
            values = self._texts(df)
            if self._last is not None:
                values = pl.concat([self._last[0], values])
            raise EngineError(
                code,
                f"row {self._rows - carried + first} sorts before the row above it by the sort key "
                f"{list(self.keys)}: {values.row(first)} after {values.row(first - 1)}",
                where=where,
                fix="this is an engine defect or a tampered input",
                state=state,
            )
        self._last = (self._texts(df.tail(1)), ranks.tail(1))
        self._rows += df.height

    def _texts(self, df: pl.DataFrame) -> pl.DataFrame:
        """Key values as text, for the message (and so that batches of categoricals concatenate)."""
        return df.select(pl.col(k).cast(pl.String) for k in self.keys)


def is_in_order(df: pl.DataFrame, keys: tuple[str, ...]) -> bool:
    """Whether no row of `df` sorts before the row above it by `keys` (plain values without nulls)."""
    return not df.select(sorts_before_predecessor(keys).any()).item()


def in_key_order(df: pl.DataFrame, keys: tuple[str, ...]) -> pl.DataFrame:
    """`df` sorted by `keys`, cheaply where a table already keeps its contract order: if that order is `keys`,
    one linear check; if it leads with the later keys (6A's links, sorted by device then party, needed by
    party then device), a stable sort by the first key alone (17 M ip_links: ≈ 1.0 s, a two-key sort
    ≈ 2.6 s). Any other order gets the full sort. Every path is stable, so the result is always the stable
    sort of `df` by `keys`."""
    if is_in_order(df, keys):
        return df
    regrouped = df.sort(keys[0], maintain_order=True)
    return regrouped if is_in_order(regrouped, keys) else df.sort(list(keys), maintain_order=True)
