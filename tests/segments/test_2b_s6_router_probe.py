"""2B.S6 on the tiny world: P probe arrivals per merchant, all on the merchant's own sites in the routed
group, expected counts that conserve P, and a summary that agrees with the table."""

import json
from pathlib import Path

import polars as pl

from tests.segments.test_2b_s1_site_weights import part

P = 1024  # the tiny preset's probe_arrivals_per_merchant


def test_probe_counts_and_membership(tiny_world: Path) -> None:
    probe = part(tiny_world, "2B", "s6_router_probe")
    w = part(tiny_world, "2B", "s1_site_weights")
    per = probe.group_by("merchant_id").agg(pl.col("observed").sum(), pl.col("expected").sum())
    assert (per["observed"] == P).all() and (per["expected"] - P).abs().max() < 1e-6
    assert per.height == w["merchant_id"].n_unique()
    own = probe.join(w, on=["merchant_id", "tz_index", "site_id"], how="anti")
    assert own.height == 0
    summary = json.loads(
        next(tiny_world.glob("data/layer1/2B/s6_probe_summary/seed=42/*/*.json")).read_text()
    )
    assert summary["arrivals"] == P * per.height and summary["membership_violations"] == 0
    assert summary["slices_tested"] == len(summary["tests"])
    assert all(t["cells"] >= 2 and 0.0 <= t["p"] <= 1.0 for t in summary["tests"])


def test_probe_replay_catches_a_moved_arrival(tiny_world: Path) -> None:
    """The replay re-routes a merchant's arrivals from numpy's Philox and the blob bytes: moving one arrival
    between two of its sites in the published table makes the digests differ."""
    from engine.core.rng import family_key
    from engine.core.validation import PhiloxBlocks
    from engine.segments.l1.s2b.replay import probe
    from tests.conftest import tiny_plan
    from tests.segments.test_2b_s2_site_alias import files as site_files
    from tests.segments.test_2b_s5_group_alias import files as group_files

    table = part(tiny_world, "2B", "s6_router_probe")
    members = part(tiny_world, "2B", "s2_site_alias_members")
    mid = table.filter(pl.len().over("merchant_id") >= 3)["merchant_id"][0]
    key = family_key(42, tiny_plan(tiny_world)["2B"].parameter_hash, "2B.probe")
    spec = probe(table, site_files(tiny_world), group_files(tiny_world), members, P)
    row = spec.rows.filter(pl.col("merchant_id") == mid)
    assert spec.rederive(row, PhiloxBlocks(key))["routes"][0] == row["routes"][0]
    sites = table.filter(pl.col("merchant_id") == mid).sort("observed", descending=True)
    a, b = sites["site_id"][0], sites["site_id"][1]
    moved = table.with_columns(
        observed=pl.when(pl.col("site_id") == a)
        .then(pl.col("observed") - 1)
        .when(pl.col("site_id") == b)
        .then(pl.col("observed") + 1)
        .otherwise("observed")
    )
    spec = probe(moved, site_files(tiny_world), group_files(tiny_world), members, P)
    row = spec.rows.filter(pl.col("merchant_id") == mid)
    assert spec.rederive(row, PhiloxBlocks(key))["routes"][0] != row["routes"][0]


def test_expected_counts_sum_exactly_whatever_the_row_order() -> None:
    """Σ_d n_d · p_group is summed exactly, so the last bit never follows the input's row order (or a thread
    pool's): with p_group = 1e16, 1, −1e16 on days 0, 1, 2 and one probe a day the sum is 1, where adding in
    day order gives (1e16 + 1) − 1e16 = 0 in binary64."""
    from engine.segments.l1.s2b.s6_router_probe import expected_counts

    mix = pl.DataFrame(
        {
            "merchant_id": pl.Series([7, 7, 7], dtype=pl.UInt64),
            "tz_index": pl.Series([3, 3, 3], dtype=pl.UInt16),
            "day_index": pl.Series([0, 1, 2], dtype=pl.UInt16),
            "p_group": [1e16, 1.0, -1e16],
            "base_share": [0.5, 0.5, 0.5],
        }
    )
    weights = pl.DataFrame(
        {
            "merchant_id": pl.Series([7], dtype=pl.UInt64),
            "tz_index": pl.Series([3], dtype=pl.UInt16),
            "site_id": pl.Series([11], dtype=pl.UInt64),
            "p_weight": [0.25],
        }
    )
    for order in ([0, 1, 2], [2, 1, 0], [2, 0, 1], [1, 2, 0]):
        got = expected_counts(weights, mix[order], per_merchant=3, days=3)
        assert got["expected"].to_list() == [0.5]  # 1 · 0.25 / 0.5
