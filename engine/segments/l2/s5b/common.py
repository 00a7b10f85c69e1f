"""5B's keys, closed vocabularies and the cell rules its states share."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from engine.segments.l2.s5a.common import CHANNEL, CLASS, PROFILE_KEY

BAND = pl.Enum(["PHYSICAL", "VIRTUAL"])
US = 1_000_000
BUCKET_US = 3600 * US
__all__ = ["BAND", "CHANNEL", "CLASS", "PROFILE_KEY", "enum_codes", "is_virtual", "tz_of_zone", "world_enum"]


def is_virtual() -> pl.Expr:
    """A cell routes to an edge iff its channel is CNP and its merchant is not PHYSICAL (§2.5 step 5): a
    PHYSICAL-mode CNP merchant (mail/phone order) bills from its sites."""
    return (pl.col("channel_group").cast(pl.String) == "CNP") & (
        pl.col("virtual_mode").cast(pl.String) != "PHYSICAL"
    )


def tz_of_zone(zone_code: np.ndarray) -> np.ndarray:
    """tz_index from `zone_code = iso_num << 16 | tz_index`."""
    return (np.asarray(zone_code, dtype=np.uint64) & np.uint64(0xFFFF)).astype(np.int64)


def world_enum(values: pl.Series) -> pl.Enum:
    """A vocabulary fixed for the run: the sorted distinct texts (physical order = text order)."""
    return pl.Enum(sorted(values.cast(pl.String).unique().to_list()))


def enum_codes(values: pl.Series, enum: pl.Enum) -> np.ndarray:
    """Each value's position in `enum` (i32), through the column's own dictionary: a lookup per distinct
    text, not a string per row. Raises KeyError for a text outside the vocabulary."""
    arr = values.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    cats = enum.categories.to_numpy()
    if not pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_encode()
    texts = np.asarray(arr.dictionary.to_pylist(), dtype=object)
    lut = np.searchsorted(cats, texts) if texts.size else np.zeros(0, dtype=np.int64)
    if texts.size and not (cats[np.minimum(lut, cats.size - 1)] == texts).all():
        raise KeyError(f"values outside the vocabulary: {sorted(set(texts) - set(cats))[:3]}")
    return lut.astype(np.int32)[arr.indices.to_numpy(zero_copy_only=False)]
