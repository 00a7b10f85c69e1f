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
