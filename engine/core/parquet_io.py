"""Deterministic Parquet: fixed writer settings and no wall-clock metadata, so bytes are stable."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_SIZE = 1 << 20
PART_ROWS = 1 << 24  # layer2_3.md §0.3: parts of at most 16,777,216 rows (16 row groups)
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3
_WRITER_OPTIONS: dict[str, object] = {
    "compression": COMPRESSION,
    "compression_level": COMPRESSION_LEVEL,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "store_schema": True,
}


def write_parquet(df: pl.DataFrame | pa.Table, path: Path, *, metadata: dict[str, str] | None = None) -> None:
    """Write one Parquet file with the engine's fixed settings.

    Schema metadata is dropped (pandas/polars write version-dependent blobs) and replaced by `metadata` only,
    e.g. the GeoParquet `geo` key, which the caller must build deterministically. The columns are written as
    one chunk each: the writer falls back from dictionary to plain pages between chunks, so chunks (which a
    polars query cuts by its thread count) would otherwise move bytes without changing a row.
    """
    table = df.rechunk().to_arrow() if isinstance(df, pl.DataFrame) else df.combine_chunks()
    table = table.replace_schema_metadata(metadata)
    pq.write_table(table, path, row_group_size=ROW_GROUP_SIZE, **_WRITER_OPTIONS)  # type: ignore[arg-type]


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth dictionary-encoding in a large streamed table: strings, categoricals, booleans and
    integers of at most 32 bits (zones, buckets, offsets: few distinct values). 64-bit ids, timestamps and
    floats are near-unique, so the encoder's attempt to build their dictionary (hashing every value until the
    dictionary page overflows) costs a third of the write time and saves nothing."""
    small = (pa.types.is_string, pa.types.is_large_string, pa.types.is_dictionary, pa.types.is_boolean)
    names = []
    for field in schema:
        t = field.type
        if any(test(t) for test in small) or (pa.types.is_integer(t) and t.bit_width <= 32):
            names.append(field.name)
    return names


def delta_columns(schema: pa.Schema) -> dict[str, str]:
    """64-bit integer and timestamp columns get DELTA_BINARY_PACKED: ids and times of a streamed table are
    sorted or clustered (merchant, then time), so their deltas are small; twice as fast to write as plain
    values under zstd, and smaller."""
    wide = [f for f in schema if pa.types.is_timestamp(f.type) or pa.types.is_integer(f.type)]
    return {f.name: "DELTA_BINARY_PACKED" for f in wide if f.type.bit_width == 64}


def statistics_columns(schema: pa.Schema) -> list[str]:
    """The columns of a large streamed table that get min/max statistics: its 64-bit ids and times, the keys
    readers filter row groups by (merchant, flow, party, a time window). Statistics on dictionary and string
    columns cost a quarter of the write time (6B's transactions and events) and prune nothing: every row group
    holds every channel and label."""
    return list(delta_columns(schema))


class PartWriter:
    """Streams batches into `part-00000.parquet`, `part-00001.parquet`, … in `folder`, cutting fixed row
    groups of ROW_GROUP_SIZE rows and parts of PART_ROWS rows whatever the batch sizes, so the bytes depend
    only on the rows. Memory: the batch being written plus at most one row group of buffered rows.

    Dictionary (categorical) columns must carry the same dictionary in every batch (a polars Enum over a
    vocabulary fixed for the run): a row group that joins two batches unifies their dictionaries, and only
    equal dictionaries make that independent of where the batches were cut.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._part_rows = 0
        self.parts: list[tuple[str, int]] = []

    def write(self, table: pa.Table) -> None:
        table = table.replace_schema_metadata(None)
        if self._schema is None:
            self._schema = table.schema
        self._pending.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= ROW_GROUP_SIZE:
            buffered = pa.concat_tables(self._pending)
            self._emit(buffered.slice(0, ROW_GROUP_SIZE))
            rest = buffered.slice(ROW_GROUP_SIZE)
            self._pending, self._pending_rows = [rest], rest.num_rows

    def _emit(self, group: pa.Table) -> None:
        if self._writer is None or self._part_rows >= PART_ROWS:
            self._close_part()
            name = f"part-{len(self.parts):05d}.parquet"
            options = {
                **_WRITER_OPTIONS,
                "use_dictionary": dictionary_columns(group.schema),
                "column_encoding": delta_columns(group.schema),
                "write_statistics": statistics_columns(group.schema),
            }
            self._writer = pq.ParquetWriter(self.folder / name, group.schema, **options)  # type: ignore[arg-type]
            self.parts.append((name, 0))
            self._part_rows = 0
        self._writer.write_table(group.combine_chunks(), row_group_size=ROW_GROUP_SIZE)
        self._part_rows += group.num_rows
        name, rows = self.parts[-1]
        self.parts[-1] = (name, rows + group.num_rows)

    def _close_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self, empty_schema: pa.Schema | None = None) -> list[tuple[str, int]]:
        """Flush the last row group and close; an empty stream still writes part-00000 (with
        `empty_schema`), so every partition has a first part. Returns (part file name, rows) in order."""
        if self._pending_rows or not self.parts:
            if self._pending:
                tail = pa.concat_tables(self._pending)
            else:
                assert empty_schema is not None, "an empty stream needs the table's schema"
                tail = empty_schema.empty_table()
            self._emit(tail)
            self._pending, self._pending_rows = [], 0
        self._close_part()
        return self.parts

    def abort(self) -> None:
        """Close any open file (after an error the staging folder is removed by the caller)."""
        self._close_part()


def read_parquet(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path)
