"""DST gaps (local times that never happen) and folds (local times that happen twice).

`dst_windows` derives them from the transition table; `independent_windows` finds them again by asking
zoneinfo, for local wall-clock times, whether fold=0 and fold=1 disagree — a different method, so
validation can cross-check the two (2A.R09).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl

US = 1_000_000
SCHEMA = {
    "tz_index": pl.UInt16,
    "tzid": pl.String,
    "kind": pl.String,
    "transition_utc": pl.Int64,
    "local_start": pl.Int64,
    "local_end": pl.Int64,
    "delta_s": pl.Int32,
    "in_horizon": pl.Boolean,
}


def dst_windows(table: pl.DataFrame, horizon_start: dt.datetime, horizon_end: dt.datetime) -> pl.DataFrame:
    """For consecutive rows o0 → o1 at t: GAP [t+o0, t+o1) if o1 > o0, FOLD [t+o1, t+o0) if o1 < o0."""
    h0, h1 = int(horizon_start.timestamp()) * US, int(horizon_end.timestamp()) * US
    t = table.sort("tz_index", "valid_from").with_columns(
        pl.col("utc_offset_s").shift(1).over("tz_index").alias("o0")
    )
    t = t.filter(pl.col("o0").is_not_null() & (pl.col("o0") != pl.col("utc_offset_s")))
    o0 = pl.col("o0").cast(pl.Int64) * US
    o1 = pl.col("utc_offset_s").cast(pl.Int64) * US
    gap = pl.col("utc_offset_s") > pl.col("o0")
    return t.select(
        pl.col("tz_index").cast(pl.UInt16),
        "tzid",
        pl.when(gap).then(pl.lit("GAP")).otherwise(pl.lit("FOLD")).alias("kind"),
        pl.col("valid_from").alias("transition_utc"),
        (pl.col("valid_from") + pl.when(gap).then(o0).otherwise(o1)).alias("local_start"),
        (pl.col("valid_from") + pl.when(gap).then(o1).otherwise(o0)).alias("local_end"),
        (pl.col("utc_offset_s") - pl.col("o0")).cast(pl.Int32).alias("delta_s"),
        ((pl.col("valid_from") >= h0) & (pl.col("valid_from") < h1)).alias("in_horizon"),
    )


def _odd(zone: ZoneInfo, local: dt.datetime) -> int:
    """offset(fold=1) − offset(fold=0) in seconds: > 0 inside a gap, < 0 inside a fold, 0 elsewhere."""
    a = local.replace(tzinfo=zone, fold=0).utcoffset()
    b = local.replace(tzinfo=zone, fold=1).utcoffset()
    return int((b - a).total_seconds()) if a is not None and b is not None else 0


def _edge(zone: ZoneInfo, inside: dt.datetime, outside: dt.datetime) -> dt.datetime:
    """Bisect to the second between a local time inside a window and one outside it; returns the later of
    the two final neighbours: the first inside second (start edge) or the first outside one (end edge)."""
    while abs((outside - inside).total_seconds()) > 1:
        mid = inside + (outside - inside) / 2
        mid = mid.replace(microsecond=0)
        if _odd(zone, mid):
            inside = mid
        else:
            outside = mid
    return inside if inside > outside else outside


def independent_windows(
    tzids: list[str], horizon_start: dt.datetime, horizon_end: dt.datetime
) -> pl.DataFrame:
    """Gaps and folds whose transition instant lies in the horizon, found by probing local wall-clock time
    every 15 minutes (±1 day around the horizon) and bisecting each window's edges to the second."""
    step = dt.timedelta(minutes=15)
    h0, h1 = int(horizon_start.timestamp()), int(horizon_end.timestamp())
    rows = []
    for i, tzid in enumerate(tzids):
        zone = ZoneInfo(tzid)
        local = (horizon_start - dt.timedelta(days=1)).replace(tzinfo=None)
        stop = (horizon_end + dt.timedelta(days=1)).replace(tzinfo=None)
        prev = local - step
        while local <= stop:
            delta = _odd(zone, local)
            if delta:
                start = _edge(zone, local, prev) if not _odd(zone, prev) else local
                end = local
                while _odd(zone, end + step):
                    end += step
                end = _edge(zone, end, end + step)
                a = start.replace(tzinfo=zone, fold=0).utcoffset()
                b = start.replace(tzinfo=zone, fold=1).utcoffset()
                o0, o1 = int(a.total_seconds()), int(b.total_seconds())  # type: ignore[union-attr]
                naive_s = int(start.replace(tzinfo=dt.UTC).timestamp())
                t = naive_s - (o0 if o1 > o0 else o1)
                end_s = int(end.replace(tzinfo=dt.UTC).timestamp())  # exclusive
                if h0 <= t < h1:
                    rows.append(
                        (
                            i,
                            tzid,
                            "GAP" if o1 > o0 else "FOLD",
                            t * US,
                            naive_s * US,
                            end_s * US,
                            o1 - o0,
                            True,
                        )
                    )
                local = end + step
                prev = end
                continue
            prev = local
            local += step
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")
