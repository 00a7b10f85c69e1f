"""3A.S4: largest remainder by hand (ties by tz_index), and conservation on the tiny world."""

from pathlib import Path

import polars as pl

from engine.segments.l1.s3a.s4_zone_counts import largest_remainder


def _pair(site_count: int, shares: list[float], tz_index: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "merchant_id": [1] * len(shares),
            "legal_country_iso": ["US"] * len(shares),
            "tz_index": pl.Series(tz_index, dtype=pl.UInt16),
            "share": shares,
            "site_count": pl.Series([site_count] * len(shares), dtype=pl.UInt32),
            "zones_supported": pl.Series([len(shares)] * len(shares), dtype=pl.UInt16),
        }
    )


def _counts(df: pl.DataFrame) -> dict[int, int]:
    return dict(df.select("tz_index", "zone_site_count").iter_rows())


def test_one_each_then_largest_remainder() -> None:
    # 10 sites over 3 zones: 1 each, the other 7 by 7·share = 3.5, 2.1, 1.4 → 3, 2, 1 and the left one to 0.5
    out = largest_remainder(_pair(10, [0.5, 0.3, 0.2], [4, 9, 2]))
    assert _counts(out) == {4: 5, 9: 3, 2: 2}
    assert dict(out.select("tz_index", "residual_rank").iter_rows()) == {4: 0, 2: 1, 9: 2}


def test_ties_go_to_the_lower_tz_index() -> None:
    out = largest_remainder(_pair(5, [0.5, 0.5], [30, 12]))  # 3 left: 1.5 and 1.5, one extra to tz 12
    assert _counts(out) == {12: 3, 30: 2}
    assert _counts(largest_remainder(_pair(3, [0.9, 0.05, 0.05], [1, 2, 3]))) == {1: 1, 2: 1, 3: 1}


def test_counts_conserve_every_pair(tiny_world: Path) -> None:
    counts = pl.read_parquet(
        next(tiny_world.glob("data/layer1/3A/s4_zone_counts/seed=42/*/part-00000.parquet"))
    )
    pairs = pl.read_parquet(next(tiny_world.glob("data/layer1/3A/s1_pairs/seed=42/*/part-00000.parquet")))
    zones = pl.read_parquet(
        next(tiny_world.glob("data/layer1/3A/s1_pair_zones/seed=42/*/part-00000.parquet"))
    )
    assert (counts["zone_site_count"] >= 1).all()
    totals = counts.group_by("merchant_id", "legal_country_iso").agg(pl.col("zone_site_count").sum())
    both = totals.join(pairs, on=["merchant_id", "legal_country_iso"], how="full", coalesce=True)
    assert both.height == pairs.height and (both["zone_site_count"] == both["site_count"]).all()
    kept = counts.join(zones, on=["merchant_id", "legal_country_iso", "tz_index"]).join(
        pairs.filter(~pl.col("is_escalated")), on=["merchant_id", "legal_country_iso"], how="semi"
    )
    assert (kept["zone_site_count"] == kept["sites_in_zone"]).all() and kept["residual_rank"].is_null().all()
