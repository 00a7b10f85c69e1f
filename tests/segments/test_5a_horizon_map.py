"""5A.S4's horizon map against known civil times: both sides of the US spring gap (America/New_York,
2026-03-08 07:00Z) and the EU autumn fold (Europe/Berlin, 2026-10-25 01:00Z), the transitions built by 2A's
cache code (zoneinfo on the pinned tzdata)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from engine.segments.l1.s2a.tz_cache import transitions
from engine.segments.l2.s5a import horizon_map

UTC = dt.UTC


def map_of(tzid: str, start: dt.datetime, days: int) -> horizon_map.HorizonMap:
    table = transitions(
        [tzid], start - dt.timedelta(days=7), start + dt.timedelta(days=days + 200)
    ).with_columns(tz_index=np.uint16(0))
    return horizon_map.build(table, np.array([0], dtype=np.uint16), int(start.timestamp()), 24 * days)


def test_us_spring_gap(forced_tzdata: str) -> None:
    """From 2026-03-02T00:00Z, bucket 150 is [06:00Z, 07:00Z): 01:30 EST (−18000); bucket 151 is
    [07:00Z, 08:00Z): 03:30 EDT (−14400). Local 02:xx on Sunday (week bucket 146) never occurs."""
    start = dt.datetime(2026, 3, 2, tzinfo=UTC)
    hm = map_of("America/New_York", start, 14)
    assert hm.offset_s[0, 150] == -18000 and hm.offset_s[0, 151] == -14400
    assert hm.week_bucket[0, 150] == 6 * 24 + 1 and hm.week_bucket[0, 151] == 6 * 24 + 3
    assert 6 * 24 + 2 not in set(hm.week_bucket[0, 140:160].tolist())
    # bucket 0 is Sunday 1 March 19:30 EST (local date 2026-03-01), Monday midnight UTC
    assert hm.week_bucket[0, 0] == 6 * 24 + 19
    assert horizon_map.date_of(hm.local_day[0, 0]) == dt.date(2026, 3, 1)
    assert horizon_map.date_of(hm.local_day[0, 5]) == dt.date(2026, 3, 2)


def test_eu_autumn_fold(forced_tzdata: str) -> None:
    """From 2026-10-24T00:00Z, buckets 24 and 25 (00:30Z, 01:30Z on the 25th) are both local 02:30 on
    Sunday, first CEST (+7200) then CET (+3600): the fold repeats week bucket 146."""
    start = dt.datetime(2026, 10, 24, tzinfo=UTC)
    hm = map_of("Europe/Berlin", start, 3)
    assert hm.offset_s[0, 24] == 7200 and hm.offset_s[0, 25] == 3600
    assert hm.week_bucket[0, 24] == hm.week_bucket[0, 25] == 6 * 24 + 2
    assert hm.week_bucket[0, 26] == 6 * 24 + 3


def test_offsets_before_window_refused() -> None:
    with pytest.raises(ValueError):
        horizon_map.offsets_at(np.array([10 * 10**6]), np.array([0]), np.array([5]))
