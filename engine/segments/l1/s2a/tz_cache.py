"""The UTC-offset history of tzids over a window, from zoneinfo (forced onto the pinned tzdata package).

Each zone is sampled every 6 hours; a change between two samples is bisected to the exact second. Equal
consecutive states (offset, DST flag, abbreviation) are coalesced; the first row is the window start.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

STEP_S = 6 * 3600
SCHEMA = {
    "tz_index": pl.UInt16,
    "tzid": pl.String,
    "valid_from": pl.Int64,
    "utc_offset_s": pl.Int32,
    "is_dst": pl.Boolean,
    "abbrev": pl.String,
}


def _state(zone: ZoneInfo, t: int) -> tuple[int, bool, str]:
    local = dt.datetime.fromtimestamp(t, tz=zone)
    offset = local.utcoffset()
    dst = local.dst()
    return int(offset.total_seconds()) if offset else 0, bool(dst), local.tzname() or ""


def _bisect(zone: ZoneInfo, lo: int, hi: int, before: tuple[int, bool, str]) -> int:
    """First second in (lo, hi] whose state differs from `before`."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _state(zone, mid) == before:
            lo = mid
        else:
            hi = mid
    return hi


def zone_rows(tzid: str, start: int, end: int) -> list[tuple[int, int, bool, str]]:
    """(valid_from seconds, offset, is_dst, abbrev) for one zone over [start, end]."""
    zone = ZoneInfo(tzid)
    current = _state(zone, start)
    rows = [(start, *current)]
    t = start
    while t < end:
        nxt = min(t + STEP_S, end)
        state = _state(zone, nxt)
        if state != current:
            at = _bisect(zone, t, nxt, current)
            current = _state(zone, at)
            rows.append((at, *current))
            t = at
            continue
        t = nxt
    return rows


def transitions(tzids: list[str], window_start_utc: dt.datetime, window_end_utc: dt.datetime) -> pl.DataFrame:
    """tz_index (position in `tzids`), tzid, valid_from (UTC µs), utc_offset_s, is_dst, abbrev."""
    start, end = int(window_start_utc.timestamp()), int(window_end_utc.timestamp())
    records = [
        (i, tzid, at * 1_000_000, offset, dst, abbrev)
        for i, tzid in enumerate(tzids)
        for at, offset, dst, abbrev in zone_rows(tzid, start, end)
    ]
    return pl.DataFrame(records, schema=SCHEMA, orient="row")


def check_hourly(
    table: pl.DataFrame, tzids: list[str], window_start_utc: dt.datetime, window_end_utc: dt.datetime
) -> list[str]:
    """Every whole hour of the window, re-evaluated with zoneinfo, against the table; returns mismatches."""
    first = int(window_start_utc.timestamp()) // 3600 * 3600
    first = first if first >= window_start_utc.timestamp() else first + 3600
    hours = np.arange(first, int(window_end_utc.timestamp()) + 1, 3600, dtype=np.int64)
    problems: list[str] = []
    for (tzid,), grp in table.sort("tzid", "valid_from").group_by(["tzid"], maintain_order=True):
        valid = grp["valid_from"].to_numpy() // 1_000_000
        offsets = grp["utc_offset_s"].to_numpy()
        pos = np.searchsorted(valid, hours, side="right") - 1
        zone = ZoneInfo(tzid)
        for h, p in zip(hours.tolist(), pos.tolist(), strict=True):
            want = _state(zone, h)[0]
            if p < 0 or offsets[p] != want:
                problems.append(f"{tzid} at {h}: table {offsets[p] if p >= 0 else None}, zoneinfo {want}")
                break
    missing = sorted(set(tzids) - set(table["tzid"].to_list()))
    problems += [f"{tzid}: not in the table" for tzid in missing]
    return problems
