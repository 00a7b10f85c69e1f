"""Deterministic Parquet: fixed writer settings and no wall-clock metadata, so bytes are stable."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_SIZE = 1 << 20
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3


def write_parquet(df: pl.DataFrame | pa.Table, path: Path, *, metadata: dict[str, str] | None = None) -> None:
    """Write one Parquet file with the engine's fixed settings.

    Schema metadata is dropped (pandas/polars write version-dependent blobs) and replaced by `metadata` only,
    e.g. the GeoParquet `geo` key, which the caller must build deterministically.
    """
    table = df.to_arrow() if isinstance(df, pl.DataFrame) else df
    table = table.replace_schema_metadata(metadata)
    pq.write_table(
        table,
        path,
        row_group_size=ROW_GROUP_SIZE,
        compression=COMPRESSION,
        compression_level=COMPRESSION_LEVEL,
        use_dictionary=True,
        write_statistics=True,
        version="2.6",
        data_page_version="1.0",
        store_schema=True,
    )


def read_parquet(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path)
