"""5B.S5's civil-time audit: ts_local − ts_utc and the settlement date recomputed with Python's zoneinfo (an
implementation independent of 2A's cache and of the S4 kernel) on the sampled arrivals."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import polars as pl

from engine.core.tzdb import force_tzdata

US = 1_000_000
MAX_EXAMPLES = 5


def audit(sample: pl.DataFrame, cutoff_s: int) -> dict[str, Any]:
    """Rows checked, mismatches (offset, local time, settlement date) and the first few examples."""
    force_tzdata()
    if sample.height == 0:
        return {"rows": 0, "mismatches": 0, "examples": []}
    zones: dict[str, zoneinfo.ZoneInfo] = {}
    rows = sample.select(
        "arrival_id",
        pl.col("ts_utc").dt.epoch("us").alias("ts"),
        pl.col("ts_local").dt.epoch("us").alias("local"),
        "utc_offset_s",
        pl.col("tzid_local").cast(pl.String),
        "is_virtual",
        pl.col("tzid_settlement").cast(pl.String),
        "settlement_date",
    ).iter_rows()
    bad, examples = 0, []
    for aid, ts, local, off, tzid, virtual, settle_tz, settle_date in rows:
        when = dt.datetime.fromtimestamp(ts // US, dt.UTC)
        want = int(
            when.astimezone(zones.setdefault(tzid, zoneinfo.ZoneInfo(tzid))).utcoffset().total_seconds()
        )
        ok = off == want and local == ts + want * US
        if virtual:
            there = when.astimezone(zones.setdefault(settle_tz, zoneinfo.ZoneInfo(settle_tz)))
            late = there.hour * 3600 + there.minute * 60 + there.second >= cutoff_s
            ok &= settle_date == there.date() + dt.timedelta(days=int(late))
        if not ok:
            bad += 1
            if len(examples) < MAX_EXAMPLES:
                examples.append(
                    {"arrival_id": str(aid), "tzid": tzid, "ts_utc_us": ts, "offset": off, "zoneinfo": want}
                )
    return {"rows": sample.height, "mismatches": bad, "examples": examples}
