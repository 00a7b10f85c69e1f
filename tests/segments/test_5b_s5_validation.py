"""5B on the tiny world (both scenarios): the bundle passes and verifies, and the published rows keep the
laws re-checked here from the files alone — counts conserve, times stay in their hour, routes stay inside the
merchant and zone, civil time matches zoneinfo across the US spring gap, ids count each merchant's arrivals in
time order, and a stress scenario reuses the baseline's draws (layer2_3 §2.6–§2.8)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import zoneinfo
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.core.tzdb import force_tzdata

US = 1_000_000
START_US = int(dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp()) * US


def _read(root: Path, layer: str, seg: str, name: str, scenario: str | None = None) -> pl.DataFrame:
    parts = f"scenario_id={scenario}/shard=*/" if scenario else ""
    paths = sorted(
        root.glob(f"data/{layer}/{seg}/{name}/seed=42/manifest_fingerprint=*/{parts}part-*.parquet")
    )
    assert paths, name
    return pl.concat([pl.read_parquet(p) for p in paths]).with_columns(
        pl.col(pl.Categorical, pl.Enum).cast(pl.String)
    )


@pytest.fixture(scope="module")
def arrivals(tiny_world: Path) -> dict[str, pl.DataFrame]:
    return {s: _read(tiny_world, "layer2", "5B", "arrival_events", s) for s in ("baseline", "holiday_peak")}


def test_bundle_passes_every_required_check_and_verifies(tiny_world: Path) -> None:
    bundle = next(tiny_world.glob("data/layer2/5B/validation/seed=42/manifest_fingerprint=*"))
    assert (bundle / "_passed.flag").is_file()
    checks = json.loads((bundle / "checks.json").read_text())
    assert [c["id"] for c in checks if c["severity"] == "REQUIRED" and c["status"] == "FAIL"] == []
    ids = {c["id"] for c in checks}
    assert {"5B.R01", "5B.R02", "5B.R03", "5B.R07", "5B.R08", "s3_rerun", "count_conservation"} <= ids
    audit = json.loads((bundle / "civil_time_audit.json").read_text())
    assert audit["rows"] > 0 and audit["mismatches"] == 0
    res = subprocess.run(
        [sys.executable, "-m", "engine", "verify", str(tiny_world)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout[-2000:]
    assert f"PASS {bundle}" in res.stdout


@pytest.mark.parametrize("scenario", ["baseline", "holiday_peak"])
def test_counts_conserve_and_times_stay_in_their_hour(
    tiny_world: Path, arrivals: dict[str, pl.DataFrame], scenario: str
) -> None:
    a = arrivals[scenario]
    counts = _read(tiny_world, "layer2", "5B", "bucket_counts", scenario)
    per_cell = a.group_by("merchant_id", "bucket_index").len().sort("merchant_id", "bucket_index")
    want = (
        counts.group_by("merchant_id", "bucket_index")
        .agg(pl.col("count").sum())
        .sort("merchant_id", "bucket_index")
    )
    assert per_cell["len"].to_list() == want["count"].to_list()
    assert per_cell["merchant_id"].equals(want["merchant_id"])
    ts = a["ts_utc"].dt.epoch("us").to_numpy()
    start = START_US + a["bucket_index"].to_numpy().astype(np.int64) * 3600 * US
    assert ((ts >= start) & (ts < start + 3600 * US)).all()
    local = a["ts_local"].dt.epoch("us").to_numpy()
    assert (local - ts == a["utc_offset_s"].to_numpy().astype(np.int64) * US).all()


def test_routes_stay_with_the_merchant_and_its_zone(
    tiny_world: Path, arrivals: dict[str, pl.DataFrame]
) -> None:
    sites = _read(tiny_world, "layer1", "2A", "site_timezones").select("site_id", "merchant_id", "tzid")
    edges = _read(tiny_world, "layer1", "3B", "edge_catalogue").select("edge_id", "merchant_id", "tzid")
    for a in arrivals.values():
        phys = a.filter(~pl.col("is_virtual"))
        assert phys["edge_id"].null_count() == phys.height and phys["site_id"].null_count() == 0
        j = phys.join(sites, on="site_id", how="left", suffix="_s")
        assert (j["merchant_id"] == j["merchant_id_s"]).all() and (j["tzid_local"] == j["tzid"]).all()
        virt = a.filter(pl.col("is_virtual"))
        assert virt["site_id"].null_count() == virt.height and virt["settlement_date"].null_count() == 0
        j = virt.join(edges, on="edge_id", how="left", suffix="_e")
        assert (j["merchant_id"] == j["merchant_id_e"]).all() and (j["tzid_local"] == j["tzid"]).all()


def test_new_york_local_time_on_both_sides_of_the_spring_gap(arrivals: dict[str, pl.DataFrame]) -> None:
    force_tzdata()
    ny = zoneinfo.ZoneInfo("America/New_York")
    a = arrivals["baseline"].filter(pl.col("tzid_local") == "America/New_York")
    assert a.height > 0
    gap = int(dt.datetime(2026, 3, 8, 7, tzinfo=dt.UTC).timestamp()) * US
    ts = a["ts_utc"].dt.epoch("us").to_numpy()
    want = [int(dt.datetime.fromtimestamp(t // US, ny).utcoffset().total_seconds()) for t in ts]
    assert a["utc_offset_s"].to_list() == want
    assert set(np.array(want)[ts < gap]) == {-5 * 3600} and set(np.array(want)[ts >= gap]) == {-4 * 3600}


def test_ids_count_each_merchants_arrivals_in_time_order(arrivals: dict[str, pl.DataFrame]) -> None:
    catalogue_rank = {}
    for a in arrivals.values():
        ids = a["arrival_id"].to_numpy()
        assert (np.diff(ids.astype(np.int64)) > 0).all()  # unique and increasing in file order
        for m, g in a.group_by("merchant_id", maintain_order=True):
            ordinal = g["arrival_id"].to_numpy() & np.uint64((1 << 40) - 1)
            assert ordinal.tolist() == list(range(g.height))
            assert (np.diff(g["ts_utc"].dt.epoch("us").to_numpy()) >= 0).all()
            catalogue_rank.setdefault(m[0], int(g["arrival_id"][0]) >> 40)
    # merchant_idx is the merchant's 1-based rank in merchant_id order
    ranked = sorted(catalogue_rank)
    assert [catalogue_rank[m] for m in ranked] == sorted(catalogue_rank.values())


def test_stress_scenario_reuses_the_baselines_draws(
    tiny_world: Path, arrivals: dict[str, pl.DataFrame]
) -> None:
    """Arrival j of a cell has the same counter in every scenario, so of the two scenarios the cell with fewer
    arrivals has a subset of the other's (time, site) pairs (common random numbers)."""
    keys = ["merchant_id", "bucket_index", "tzid", "channel_group"]
    sets = {}
    for s, a in arrivals.items():
        cells = _read(tiny_world, "layer2", "5B", "bucket_counts", s).group_by(keys).len()
        single = cells.filter(pl.col("len") == 1).drop("len")  # one cell per (merchant, hour, zone, channel)
        sets[s] = (
            a.filter(~pl.col("is_virtual"))
            .rename({"tzid_local": "tzid"})
            .join(single, on=keys)
            .group_by(keys)
            .agg(pl.col("ts_utc").dt.epoch("us").alias("t"), pl.col("site_id").alias("site"))
        )
    both = sets["baseline"].join(sets["holiday_peak"], on=keys, suffix="_stress")
    assert both.height > 100
    shared = 0
    for t0, s0, t1, s1 in both.select("t", "site", "t_stress", "site_stress").iter_rows():
        small, large = set(zip(t0, s0, strict=True)), set(zip(t1, s1, strict=True))
        if len(small) > len(large):
            small, large = large, small
        assert small <= large
        shared += len(small)
    assert shared > 1000
