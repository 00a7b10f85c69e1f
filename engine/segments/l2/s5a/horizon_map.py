"""The horizon map of a zone: for every UTC hour bucket of the horizon, its UTC offset, local-week bucket
and local date, from 2A's transition cache (binary search of the bucket midpoint), built once per zone and
gathered.

A spring-forward skips one local hour and a fall-back repeats one, so a week's mass moves by at most one
bucket around a change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

US = 1_000_000
MONDAY_EPOCH_S = 4 * 86_400  # 1970-01-05 00:00, the first Monday of the epoch
WEEK_S = 7 * 86_400
EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class HorizonMap:
    """Per zone position z (rows of `tz_index`) and bucket b: offset (s), week bucket and local day number
    (days since 1970-01-01 of the local date)."""

    tz_index: np.ndarray  # (Z,) u16
    offset_s: np.ndarray  # (Z, H) i32
    week_bucket: np.ndarray  # (Z, H) u8
    local_day: np.ndarray  # (Z, H) i32

    def position(self, tz_index: np.ndarray) -> np.ndarray:
        """Each tz_index's row in the map."""
        pos = np.searchsorted(self.tz_index, tz_index)
        if (pos >= self.tz_index.size).any() or (
            self.tz_index[np.minimum(pos, self.tz_index.size - 1)] != tz_index
        ).any():
            raise KeyError("a tz_index is not in the horizon map")
        return pos


def bucket_midpoints(start_s: int, buckets: int) -> np.ndarray:
    """UTC seconds of each bucket's midpoint: start + 3600·b + 1800."""
    return start_s + 3600 * np.arange(buckets, dtype=np.int64) + 1800


def offsets_at(valid_from_us: np.ndarray, offset_s: np.ndarray, t_s: np.ndarray) -> np.ndarray:
    """The offset in force at each UTC second (the last transition at or before it)."""
    i = np.searchsorted(valid_from_us, t_s * US, side="right") - 1
    if (i < 0).any():
        raise ValueError("an instant lies before the transition cache's window")
    return offset_s[i]


def local_fields(t_s: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(week bucket, local day number) of each UTC second under its offset."""
    local = t_s + off
    week_bucket = ((local - MONDAY_EPOCH_S) % WEEK_S) // 3600
    return week_bucket.astype(np.uint8), (local // 86_400).astype(np.int32)


def build(transitions: pl.DataFrame, tz_index: np.ndarray, start_s: int, buckets: int) -> HorizonMap:
    """The map of every zone in `tz_index` (sorted, unique) from the `tz_transitions` rows."""
    t = bucket_midpoints(start_s, buckets)
    trans = transitions.sort("tz_index", "valid_from")
    offs, wbs, days = [], [], []
    for z in tz_index.tolist():
        rows = trans.filter(pl.col("tz_index") == z)
        off = offsets_at(rows["valid_from"].to_numpy(), rows["utc_offset_s"].to_numpy(), t).astype(np.int32)
        wb, day = local_fields(t, off.astype(np.int64))
        offs.append(off)
        wbs.append(wb)
        days.append(day)
    return HorizonMap(np.asarray(tz_index, dtype=np.uint16), np.array(offs), np.array(wbs), np.array(days))


def day_number(d: dt.date) -> int:
    return (d - EPOCH).days


def date_of(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(day))
