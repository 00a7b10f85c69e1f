"""5A end to end on the session's tiny world (both scenarios, one shard): the bundle passes and verifies, and
the published tables agree with independent re-derivations: scale draws from numpy's Philox, H rows per
profile row in key order, the US spring gap, and common random numbers across scenarios."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.core.rng import family_key
from engine.core.validation import PhiloxBlocks, u01

SEED = 42


def part(root: Path, name: str, *tokens: str) -> pl.DataFrame:
    folder = next(root.glob(f"data/layer2/5A/{name}/seed={SEED}/*"))
    for t in tokens:
        folder = folder / t
    return pl.read_parquet(sorted(folder.glob("part-*.parquet")))


@pytest.fixture(scope="module")
def world(tiny_world: Path) -> Path:
    return tiny_world


def test_bundle_passes_and_verifies(world: Path) -> None:
    bundle = next(world.glob(f"data/layer2/5A/validation/seed={SEED}/*"))
    assert (bundle / "_passed.flag").is_file()
    checks = json.loads((bundle / "checks.json").read_text())
    assert not [c["id"] for c in checks if c["status"] == "FAIL" and c["severity"] == "REQUIRED"]
    families = {c["id"] for c in checks if c["id"].startswith("replay.")}
    assert families == {"replay.5A.scale", "replay.5A.shape_variant", "replay.5A.promo"}
    assert json.loads((bundle / "dst_audit.json").read_text())["mismatches"] == 0
    res = subprocess.run(
        [sys.executable, "-m", "engine", "verify", str(world)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout[-2000:]
    assert any(line.startswith("PASS") and "/5A/" in line for line in res.stdout.splitlines())


def test_scale_draws_rederived(world: Path) -> None:
    """weekly_raw of PHYSICAL rows from u(w0) of ⟨merchant_id, zone_code, channel_code, 0⟩ by hand:
    x = median·2^(−1/α)·(1−u)^(−1/α) (clipped at 10 medians) × sites × role × channel × n_outlets^0.02."""
    gate = next(world.glob("data/layer2/5A/gate/*/sealed_inputs.json"))
    key = family_key(SEED, json.loads(gate.read_text())["parameter_hash"], "5A.scale")
    gen = PhiloxBlocks(key)
    profile = part(world, "merchant_zone_profile")
    outlets = pl.read_parquet(
        next(world.glob(f"data/layer1/1A/merchant_catalogue/seed={SEED}/*/part-00000.parquet"))
    )
    rows = profile.join(outlets.select("merchant_id", "n_outlets_total"), on="merchant_id").filter(
        pl.col("virtual_mode").cast(pl.String) == "PHYSICAL"
    )
    medians = {"grocery_daily": (500, 2.4), "consumer_daytime": (300, 2.0), "office_hours": (150, 2.0)}
    role = {"PRIMARY": 1.15, "SECONDARY": 1.0, "TAIL": 0.85}
    chan = {"CP": 1.0, "CNP": 1.2}
    checked = 0
    for r in rows.iter_rows(named=True):
        if r["demand_class"] not in medians:
            continue
        m, a = medians[r["demand_class"]]
        u = u01(gen.block(r["merchant_id"], r["zone_code"], 0 if r["channel_group"] == "CP" else 1, 0)[0])
        x = min(m * 2 ** (-1 / a) * (1 - u) ** (-1 / a), 10 * m)
        want = (
            x
            * r["zone_site_count"]
            * role[r["zone_role"]]
            * chan[r["channel_group"]]
            * r["n_outlets_total"] ** 0.02
        )
        assert r["weekly_raw"] == pytest.approx(want, rel=1e-12)
        checked += 1
    assert checked >= 20


def test_scenario_rows_cover_the_horizon_in_key_order(world: Path) -> None:
    profile = part(world, "merchant_zone_profile")
    df = part(world, "merchant_zone_scenario", "scenario_id=baseline", "shard=0")
    assert df.height == profile.height * 24 * 14
    counts = df.group_by("merchant_id", "legal_country_iso", "tzid", "channel_group").len()
    assert counts["len"].unique().to_list() == [336]
    keys = ["merchant_id", "bucket_index", "legal_country_iso", "tzid", "channel_group"]
    ordered = df.select(  # texts sort as text; channel_group in its code order CP (0), CNP (1)
        "merchant_id",
        "bucket_index",
        pl.col("legal_country_iso").cast(pl.String),
        pl.col("tzid").cast(pl.String),
        pl.col("channel_group").cast(pl.String).replace_strict({"CP": 0, "CNP": 1}),
    )
    assert ordered.equals(ordered.sort(keys))
    assert not df.select(keys).is_duplicated().any()
    ny = (
        df.filter(pl.col("tzid").cast(pl.String) == "America/New_York")
        .unique("bucket_index")
        .sort("bucket_index")
    )
    if ny.height:  # 2026-03-08 07:00Z: EST → EDT between buckets 150 and 151
        off = dict(ny.select("bucket_index", "utc_offset_s").iter_rows())
        assert (off[150], off[151]) == (-18000, -14400)


def test_common_random_numbers_across_scenarios(world: Path) -> None:
    """No counter holds the scenario: the promotions are the same events in both scenarios, and both share
    λ_base, so λ_peak / λ_base = overlay_peak / overlay_base row by row."""
    base = part(world, "scenario_events", "scenario_id=baseline").filter(
        pl.col("event_type").cast(pl.String) == "PROMO"
    )
    peak = part(world, "scenario_events", "scenario_id=holiday_peak").filter(
        pl.col("event_type").cast(pl.String) == "PROMO"
    )
    cols = ["event_id", "merchant_id", "local_start", "local_end", "amplitude"]
    assert base.height > 0 and base.select(cols).equals(peak.select(cols))
    a = part(world, "merchant_zone_scenario", "scenario_id=baseline", "shard=0")
    b = part(world, "merchant_zone_scenario", "scenario_id=holiday_peak", "shard=0")
    assert a.select("merchant_id", "bucket_index", "week_bucket").equals(
        b.select("merchant_id", "bucket_index", "week_bucket")
    )
    la, lb = (
        a["lambda_scenario"].to_numpy().astype(np.float64),
        b["lambda_scenario"].to_numpy().astype(np.float64),
    )
    oa, ob = (
        a["overlay_factor"].to_numpy().astype(np.float64),
        b["overlay_factor"].to_numpy().astype(np.float64),
    )
    live = la > 0
    assert np.allclose(lb[live] / la[live], ob[live] / oa[live], rtol=1e-6)
    assert 1.05 <= lb.sum() / la.sum() <= 1.60


def test_validation_pass_catches_tampered_rows(world: Path) -> None:
    """5A.S5's per-row pass on the published baseline shard: clean rows give no finding; a doubled λ, a
    swapped pair of rows, an edited overlay and rows of another shard are each counted."""
    from engine.core.ids import shard_of
    from engine.segments.l2.s5a import s5_validation as s5

    ident = ["seed", "manifest_fingerprint"]
    profile = part(world, "merchant_zone_profile").drop(ident)
    base = part(world, "merchant_zone_baseline")["lambda_base"].to_numpy().reshape(-1, 168)
    events = part(world, "scenario_events", "scenario_id=baseline")
    first_day = 20513  # 2026-03-01, the local date before the horizon's first UTC date
    start_s = 1_772_409_600  # 2026-03-02T00:00:00Z
    table = s5.factor_table(profile, events, (0.05, 4.0), first_day, 17)
    rows = part(world, "merchant_zone_scenario", "scenario_id=baseline", "shard=0").drop(
        *ident, "scenario_id", "shard"
    )

    clean = s5.ScenarioPass(profile, base, table, first_day, start_s, 336)
    clean.add(rows, 0, 1)
    assert clean.bad == {"keys": 0, "order": 0, "shard": 0, "products": 0, "factors": 0}
    assert (clean.per_row == 336).all()

    i = np.arange(rows.height)
    order = np.where(i == 10, 11, np.where(i == 11, 10, i))
    lam = rows["lambda_scenario"].to_numpy().copy()
    lam[5] *= 2
    ov = rows["overlay_factor"].to_numpy().copy()
    ov[20] = 2.0
    tampered = rows.with_columns(pl.Series("lambda_scenario", lam), pl.Series("overlay_factor", ov))[order]
    dirty = s5.ScenarioPass(profile, base, table, first_day, start_s, 336)
    dirty.add(tampered, 0, 1)
    assert dirty.bad == {"keys": 0, "order": 1, "shard": 0, "products": 2, "factors": 1}

    split = s5.ScenarioPass(profile, base, table, first_day, start_s, 336)
    split.add(rows, 0, 2)
    assert split.bad["shard"] == int((shard_of(rows["merchant_id"].to_numpy(), 2) != 0).sum()) > 0
