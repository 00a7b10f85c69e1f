"""5B.S5's streaming scan: id and time order across batches, exact for ids above 2^53 (large worlds have
merchant_idx ≥ 8192, so arrival_id = merchant_idx << 40 | ordinal exceeds float64's exact integers)."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.segments.l2.s5b.scan import ArrivalScan

US = 1_000_000
START_US = 1_772_409_600 * US  # 2026-03-02T00:00:00Z
TZ = pl.Enum(["Europe/Paris"])


def _batch(ids: list[int], merchant: int, ts_s: list[int]) -> pl.DataFrame:
    n = len(ids)
    ts = [START_US + s * US for s in ts_s]
    return pl.DataFrame(
        {
            "arrival_id": pl.Series(ids, dtype=pl.UInt64),
            "merchant_id": pl.Series([merchant] * n, dtype=pl.UInt64),
            "bucket_index": pl.Series([s // 3600 for s in ts_s], dtype=pl.UInt32),
            "ts_utc": pl.Series(ts).cast(pl.Datetime("us", "UTC")),
            "ts_local": pl.Series([t + 3600 * US for t in ts]).cast(pl.Datetime("us")),
            "utc_offset_s": pl.Series([3600] * n, dtype=pl.Int32),
            "tzid_local": pl.Series(["Europe/Paris"] * n, dtype=TZ),
            "channel_group": pl.Series(["CP"] * n),
            "is_virtual": [False] * n,
            "site_id": pl.Series([7] * n, dtype=pl.UInt64),
            "edge_id": pl.Series([None] * n, dtype=pl.UInt64),
        }
    )


def _scan() -> ArrivalScan:
    return ArrivalScan(
        START_US,
        pl.DataFrame(
            {"tzid": [], "transition_utc": []}, schema={"tzid": pl.String, "transition_utc": pl.Int64}
        ),
    )


def test_consecutive_ids_above_2_53_are_in_order_across_batches() -> None:
    base = (9_000 << 40) | 5  # 9.9e15 > 2^53: neighbours differ by 1, below float64's spacing of 2
    merchant = (1 << 62) + 1
    scan = _scan()
    scan.add(_batch([base, base + 1], merchant, [10, 20]))
    scan.add(_batch([base + 2, base + 3], merchant, [20, 30]))
    assert (scan.id_disorder, scan.ts_disorder, scan.outside_bucket, scan.local_mismatch) == (0, 0, 0, 0)
    assert scan.rows == 4


def test_a_repeated_id_and_a_time_going_back_are_counted() -> None:
    base = (9_000 << 40) | 5
    scan = _scan()
    scan.add(_batch([base, base + 1], 42, [10, 20]))
    scan.add(_batch([base + 1, base + 2], 42, [5, 30]))  # id repeats across the batch cut; time goes back
    assert (scan.id_disorder, scan.ts_disorder) == (1, 1)
    assert np.asarray(scan.hours["CP"]).sum() == 4
