"""DST gaps (local times that never happen) and folds (local times that happen twice), 2A.S4.

`dst_windows` derives them from the transition table (UTC → offset history). `independent_windows` finds
them again from the other direction — asking zoneinfo, for naive local wall-clock times, whether fold=0 and
fold=1 give different offsets — so validation can cross-check the two (2A.R09) without sharing code.
Local times are naive wall-clock microseconds since 1970-01-01T00:00 (as if the wall clock were UTC).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence

import polars as pl

from engine.segments.l1.s2a.tz_cache import US, epoch_s, first_change, load_zone

PROBE_S = 15 * 60  # shorter than any gap or fold in tzdata's modern rules (the shortest are 30 min)
COARSE_S = 6 * 3600
_EPOCH = dt.datetime(1970, 1, 1)
SCHEMA = pl.Schema(
    {
        "tz_index": pl.UInt16,
        "tzid": pl.String,
        "kind": pl.String,
        "transition_utc": pl.Int64,
        "local_start": pl.Int64,
        "local_end": pl.Int64,
        "delta_s": pl.Int32,
        "in_horizon": pl.Boolean,
    }
)


def dst_windows(
    transitions_df: pl.DataFrame, horizon_start: dt.datetime, horizon_end: dt.datetime
) -> pl.DataFrame:
    """For consecutive rows of a tzid, o0 → o1 at t: GAP [t+o0, t+o1) if o1 > o0, FOLD [t+o1, t+o0) if
    o1 < o0; rows that change only is_dst or the abbreviation are neither. delta_s = o1 − o0 (signed), and
    in_horizon means t ∈ [horizon_start, horizon_end)."""
    h0, h1 = epoch_s(horizon_start) * US, epoch_s(horizon_end) * US
    t = transitions_df.sort("tz_index", "valid_from").with_columns(
        pl.col("utc_offset_s").shift(1).over("tz_index").alias("o0")
    )
    t = t.filter(pl.col("o0").is_not_null() & (pl.col("o0") != pl.col("utc_offset_s")))
    o0 = pl.col("o0").cast(pl.Int64) * US
    o1 = pl.col("utc_offset_s").cast(pl.Int64) * US
    gap = pl.col("utc_offset_s") > pl.col("o0")
    return t.select(
        pl.col("tz_index").cast(pl.UInt16),
        pl.col("tzid").cast(pl.String),
        pl.when(gap).then(pl.lit("GAP")).otherwise(pl.lit("FOLD")).alias("kind"),
        pl.col("valid_from").cast(pl.Int64).alias("transition_utc"),
        (pl.col("valid_from") + pl.when(gap).then(o0).otherwise(o1)).alias("local_start"),
        (pl.col("valid_from") + pl.when(gap).then(o1).otherwise(o0)).alias("local_end"),
        (pl.col("utc_offset_s").cast(pl.Int64) - pl.col("o0")).cast(pl.Int32).alias("delta_s"),
        ((pl.col("valid_from") >= h0) & (pl.col("valid_from") < h1)).alias("in_horizon"),
    ).cast(dict(SCHEMA))  # type: ignore[arg-type]


def _offsets(zone: zoneinfo.ZoneInfo, local_s: int) -> tuple[int, int]:
    """(offset with fold=0, offset with fold=1) of a naive local second: equal outside gaps and folds;
    in a gap fold=0 gives the offset before the change (smaller), in a fold the one before (larger)."""
    naive = _EPOCH + dt.timedelta(seconds=local_s)
    a = naive.replace(tzinfo=zone, fold=0).utcoffset()
    b = naive.replace(tzinfo=zone, fold=1).utcoffset()
    assert a is not None and b is not None
    return int(a.total_seconds()), int(b.total_seconds())


def _odd(zone: zoneinfo.ZoneInfo, local_s: int) -> bool:
    a, b = _offsets(zone, local_s)
    return a != b


def independent_windows(
    tzids: Sequence[str], horizon_start: dt.datetime, horizon_end: dt.datetime
) -> pl.DataFrame:
    """The gaps and folds whose transition instant lies in [horizon_start, horizon_end), found in local
    wall-clock time: a 6-hour local probe (fold=0 offset) flags where the offset changes, those stretches
    (±6 h) are probed every 15 minutes for times where fold=0 and fold=1 disagree, and each window's edges
    are bisected to the second. Same schema as `dst_windows` (in_horizon always true); tz_index is the
    position in `tzids`."""
    h0, h1 = epoch_s(horizon_start), epoch_s(horizon_end)
    # local = utc + offset with |offset| ≤ 18 h, so a day either side catches every window of the horizon
    lo_s, hi_s = h0 - 86_400, h1 + 86_400
    rows: list[tuple[object, ...]] = []
    for i, tzid in enumerate(tzids):
        zone = load_zone(tzid)
        for a, b in _changing_stretches(zone, lo_s, hi_s):
            for start, end in _scan(zone, a, b):
                rows.extend(_window_row(zone, i, tzid, start, end, h0, h1))
    return pl.DataFrame(rows, schema=SCHEMA, orient="row").sort("tz_index", "transition_utc")


def _changing_stretches(zone: zoneinfo.ZoneInfo, lo: int, hi: int) -> list[tuple[int, int]]:
    """Merged local stretches [a, b] around each coarse step whose fold=0 offset changes: every gap and
    fold changes the offset across it, and none lasts longer than the 6-hour margin added either side."""
    probes = list(range(lo - COARSE_S, hi + 2 * COARSE_S, COARSE_S))
    offs = [_offsets(zone, p)[0] for p in probes]
    out: list[tuple[int, int]] = []
    for k in range(len(probes) - 1):
        if offs[k] != offs[k + 1]:
            a, b = probes[k] - COARSE_S, probes[k + 1] + COARSE_S
            if out and a <= out[-1][1]:
                out[-1] = (out[-1][0], b)
            else:
                out.append((a, b))
    return out


def _scan(zone: zoneinfo.ZoneInfo, lo: int, hi: int) -> list[tuple[int, int]]:
    """Windows [start, end) of odd local seconds inside [lo, hi], probed every 15 minutes."""
    out: list[tuple[int, int]] = []
    prev, prev_odd = lo, _odd(zone, lo)
    start: int | None = lo if prev_odd else None
    s = lo + PROBE_S
    while s <= hi:
        odd = _odd(zone, s)
        if odd != prev_odd:
            edge = first_change(prev, s, lambda x, was=prev_odd: _odd(zone, x) != was)
            if odd:
                start = edge
            elif start is not None:
                out.append((start, edge))
                start = None
        prev, prev_odd = s, odd
        s += PROBE_S
    return out


def _window_row(
    zone: zoneinfo.ZoneInfo, i: int, tzid: str, start: int, end: int, h0: int, h1: int
) -> list[tuple[object, ...]]:
    """One window [start, end) local seconds, if its transition instant lies in [h0, h1)."""
    o0, o1 = _offsets(zone, start)  # fold=0 is the offset before the change, fold=1 the one after
    gap = o1 > o0
    t = start - (o0 if gap else o1)
    if not h0 <= t < h1:
        return []
    return [(i, tzid, "GAP" if gap else "FOLD", t * US, start * US, end * US, o1 - o0, True)]
