"""The UTC-offset transition cache (2A.S3): every zone's offset history over a window, from zoneinfo only.

zoneinfo must already be forced onto the tzdata package (`engine.core.tzdb.force_tzdata()`): the functions
here refuse to run otherwise, and load zones without zoneinfo's cache, so an object built from system
files before the switch cannot leak in.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Sequence

import numpy as np
import polars as pl

STEP_S = 6 * 3600  # scan step; changes are then bisected to the second
MAX_ABS_OFFSET_S = 18 * 3600
US = 1_000_000
SCHEMA = pl.Schema(
    {
        "tz_index": pl.UInt16,
        "tzid": pl.String,
        "valid_from": pl.Int64,
        "utc_offset_s": pl.Int32,
        "is_dst": pl.Boolean,
        "abbrev": pl.String,
    }
)
State = tuple[int, bool, str]


def load_zone(tzid: str) -> zoneinfo.ZoneInfo:
    """A fresh zone from the tzdata package; refuses while zoneinfo may still read system tz files."""
    if zoneinfo.TZPATH:
        raise RuntimeError("zoneinfo is not forced onto the tzdata package; call force_tzdata() first")
    return zoneinfo.ZoneInfo.no_cache(tzid)


def state_at(zone: zoneinfo.ZoneInfo, s: int) -> State:
    """(offset seconds, is_dst, abbreviation) in force at UTC epoch second s."""
    local = dt.datetime.fromtimestamp(s, zone)
    off = local.utcoffset()
    dst = local.dst()
    assert off is not None
    return int(off.total_seconds()), bool(dst), local.tzname() or ""


def epoch_s(t: dt.datetime) -> int:
    """Whole UTC seconds of an aware instant (the cache's valid_from is second-exact)."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{t!r} is naive; pass an aware UTC instant")
    if t.microsecond:
        raise ValueError(f"{t!r} is not on a whole second")
    return int(t.timestamp())


def _check_tzids(tzids: Sequence[str]) -> None:
    """Positions are tz_index, so names must be unique; ASCII order is the caller's (the sealed list's)."""
    if len(set(tzids)) != len(tzids):
        raise ValueError("tzids must be unique (their positions are tz_index)")
    if len(tzids) > np.iinfo(np.uint16).max:
        raise ValueError("more tzids than a u16 tz_index can hold")


def first_change(lo: int, hi: int, changed: Callable[[int], bool]) -> int:
    """Bisect to the first second in (lo, hi] where `changed` holds, given it fails at lo and holds at hi."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if changed(mid):
            hi = mid
        else:
            lo = mid
    return hi


def zone_transitions(zone: zoneinfo.ZoneInfo, start_s: int, end_s: int) -> list[tuple[int, State]]:
    """[(valid_from second, state)]: the window start, then every change found by the 6-hour scan.

    Consecutive states always differ (any of offset, is_dst, abbrev), which is the coalescing rule. A
    change that reverts within one 6-hour step is invisible to the scan; tzdata has none, and the hourly
    re-check would report one.
    """
    rows = [(start_s, state_at(zone, start_s))]
    a, sa = start_s, rows[0][1]
    while a < end_s:
        b = min(a + STEP_S, end_s)
        sb = state_at(zone, b)
        while sb != sa:  # the first second whose state differs from sa; repeat if b differs again
            a = first_change(a, b, lambda s, before=sa: state_at(zone, s) != before)
            sa = state_at(zone, a)
            rows.append((a, sa))
        a, sa = b, sb
    return rows


def transitions(
    tzids: Sequence[str], window_start_utc: dt.datetime, window_end_utc: dt.datetime
) -> pl.DataFrame:
    """`tz_transitions` rows for every tzid over [start, end]; tz_index is the position in `tzids`."""
    _check_tzids(tzids)
    start_s, end_s = epoch_s(window_start_utc), epoch_s(window_end_utc)
    if end_s <= start_s:
        raise ValueError("the window end is not after its start")
    cols: dict[str, list[object]] = {name: [] for name in SCHEMA}
    for i, tzid in enumerate(tzids):
        for s, (off, is_dst, abbrev) in zone_transitions(load_zone(tzid), start_s, end_s):
            cols["tz_index"].append(i)
            cols["tzid"].append(tzid)
            cols["valid_from"].append(s * US)
            cols["utc_offset_s"].append(off)
            cols["is_dst"].append(is_dst)
            cols["abbrev"].append(abbrev)
    return pl.DataFrame(cols, schema=SCHEMA)


def check_hourly(
    df: pl.DataFrame, tzids: Sequence[str], window_start_utc: dt.datetime, window_end_utc: dt.datetime
) -> list[str]:
    """Re-evaluate every whole UTC hour of [start, end] with zoneinfo against the table; [] = agree.

    `tzids` may be any subset of the table's zones (S5 re-checks only the zones in use). Also reports what
    the hourly lookup relies on: each tzid present with one tz_index, the first row at the window start,
    valid_from strictly increasing, |offset| ≤ 18 h. At most one hour mismatch per tzid is spelled out,
    with the count.
    """
    start_s, end_s = epoch_s(window_start_utc), epoch_s(window_end_utc)
    first_hour = -(-start_s // 3600) * 3600
    hours = np.arange(first_hour, end_s + 1, 3600, dtype=np.int64)
    problems: list[str] = []
    groups = {key[0]: g for key, g in df.partition_by("tzid", as_dict=True, maintain_order=True).items()}
    for tzid in tzids:
        g = groups.get(tzid)
        if g is None:
            problems.append(f"{tzid}: not in the table")
            continue
        if g["tz_index"].n_unique() != 1:
            problems.append(f"{tzid}: more than one tz_index")
        vf = g["valid_from"].to_numpy()
        offs = g["utc_offset_s"].to_numpy()
        dsts = g["is_dst"].to_list()
        abbrevs = g["abbrev"].to_list()
        if vf[0] != start_s * US:
            problems.append(f"{tzid}: first row {vf[0]} is not the window start {start_s * US}")
        if (np.diff(vf) <= 0).any():
            problems.append(f"{tzid}: valid_from not strictly increasing")
            continue
        if (np.abs(offs) > MAX_ABS_OFFSET_S).any():
            problems.append(f"{tzid}: an offset beyond ±18 h")
        zone = load_zone(tzid)
        rows = np.searchsorted(vf, hours * US, side="right") - 1
        table = [(dt.timedelta(seconds=int(o)), d, a) for o, d, a in zip(offs, dsts, abbrevs, strict=True)]
        bad: list[str] = []
        for h, r in zip(hours.tolist(), rows.tolist(), strict=True):
            local = dt.datetime.fromtimestamp(h, zone)  # the hot loop: ~3M hours for all zones
            want = table[r] if r >= 0 else None
            if want is None or (local.utcoffset(), bool(local.dst()), local.tzname()) != want:
                got = None if want is None else (int(offs[r]), dsts[r], abbrevs[r])
                bad.append(f"{_iso(h)} table {got} zoneinfo {state_at(zone, h)}")
        if bad:
            problems.append(f"{tzid}: {len(bad)} hours disagree, first {bad[0]}")
    return problems


def _iso(s: int) -> str:
    return dt.datetime.fromtimestamp(s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
