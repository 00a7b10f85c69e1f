"""6B.S7 reads each consumer part once: every batch is checked against the contract (its columns, and the
row order across the partition's parts) as the scan decodes it, instead of one read per column for the
contract and one per measure for the scan."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from engine.core.contracts import table_schema, validate_columns
from engine.core.errors import EngineError
from engine.core.row_order import RowOrder
from engine.segments.l2.s5b.batches import READ_ROWS, row_batches


@dataclass
class CheckedParts:
    """One partition's parts, read in batches of every column, each batch checked against the contract `ref`
    before the scan sees it. The first violation is kept (its counts are those of the batch it was found in)
    and `verdict` raises it, so the validation book records it as a failed check. The scan's merchant chunks
    rely on the row order, so a stream out of order fails here rather than hiding flows from the checks."""

    paths: list[Path]
    ref: str
    state: str
    error: EngineError | None = None
    order: RowOrder = field(init=False)

    def __post_init__(self) -> None:
        self.order = RowOrder(table_schema(self.ref))

    def frames(self, rows: int = READ_ROWS) -> Iterator[pl.DataFrame]:
        columns = list(table_schema(self.ref).columns)
        for path in self.paths:
            # the footer's schema first: names and types hold even for a part without rows
            self._check(pl.from_arrow(pq.read_schema(path).empty_table()), path, columns)  # type: ignore[arg-type]
            for frame in row_batches([path], None, rows):
                self._check(frame, path, columns)
                yield frame

    def _check(self, frame: pl.DataFrame, path: Path, columns: list[str]) -> None:
        if self.error is None:
            try:
                validate_columns(frame, self.ref, columns, where=str(path), state=self.state)
                self.order.check(frame, where=str(path), state=self.state)
            except EngineError as err:
                self.error = err

    def verdict(self) -> None:
        if self.error is not None:
            raise self.error
