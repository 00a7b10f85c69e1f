"""5B.S1 on hand-made inputs: the bucket grid, zone bands from the tz cache, and groups shared by a merchant's
rows of one stratum (layer2_3 §2.3)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from engine.core.horizon import Horizon
from engine.kernels.arrivals import Clock
from engine.segments.l2.s5b.s1_grid_grouping import grouping, time_grid, zone_bands

START = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
START_US = int(START.timestamp()) * 1_000_000


def test_time_grid_covers_the_horizon_hour_by_hour() -> None:
    grid = time_grid(Horizon(start_utc="2026-03-02T00:00:00Z", days=3))
    assert grid.height == 72
    starts = grid["bucket_start_utc"].to_list()
    assert starts[0] == START and starts[-1] == START + dt.timedelta(hours=71)
    assert grid["utc_day_index"].to_list() == [b // 24 for b in range(72)]
    assert grid["utc_date"][25] == dt.date(2026, 3, 3)


def test_zone_bands_from_the_offset_at_the_start() -> None:
    # tz 0: UTC−05:00; tz 1: UTC+05:45 (Kathmandu); tz 2: UTC+14:00; tz 3: −12:00
    offsets = [-5 * 3600, 5 * 3600 + 45 * 60, 14 * 3600, -12 * 3600]
    clock = Clock(np.arange(5, dtype=np.int64), np.full(4, START_US - 10**12), np.array(offsets, np.int64))
    bands = zone_bands(np.array([826 << 16 | t for t in range(4)], np.uint64), clock, START_US)
    # ⌊(minutes + 720) / 120⌋
    assert bands.tolist() == [(-300 + 720) // 120, (345 + 720) // 120, (840 + 720) // 120, 0]


def test_groups_are_shared_within_merchant_and_stratum_and_dense() -> None:
    profile = pl.DataFrame(
        {
            "merchant_id": [1, 1, 1, 2, 2, 3],
            "legal_country_iso": ["US", "US", "CA", "US", "US", "US"],
            "tzid": ["A", "B", "C", "A", "A", "A"],
            "channel_group": ["CP", "CP", "CP", "CP", "CNP", "CP"],
            "demand_class": ["grocery_daily"] * 6,
            "virtual_mode": ["PHYSICAL", "PHYSICAL", "PHYSICAL", "HYBRID", "HYBRID", "PHYSICAL"],
        }
    )
    u = np.array([0.30, 0.30, 0.30, 0.99, 0.99, 0.31])
    bands = np.array([3, 3, 4, 3, 3, 3], np.uint8)
    rows = grouping(profile, u, bands, 8)
    g = rows["group_id"].to_list()
    assert g[0] == g[1] != g[2]  # same merchant, same stratum → one group; another zone band → another
    assert g[5] == g[0]  # merchant 3 drew the same in_stratum bucket ⌊8·0.31⌋ = 2
    assert rows["in_stratum"].to_list() == [2, 2, 2, 7, 7, 2]
    assert rows["virtual_band"].cast(pl.String).to_list()[3:5] == ["PHYSICAL", "VIRTUAL"]
    assert sorted(set(g)) == list(range(len(set(g))))  # dense from 0
