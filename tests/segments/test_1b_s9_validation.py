"""1B.S9: the spatial realism statistics, and both RNG families replayed through the law on the tiny world."""

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import polars as pl
import pytest

from engine.core.contracts import dataset_file
from engine.core.gates import SEALED
from engine.core.layout import bundle_dir, gate_dir
from engine.core.policy import load_policy_file
from engine.core.rng import family_key
from engine.core.state import StateContext
from engine.core.validation import CheckBook, run_replays
from engine.segments.l1.s1b.geo import CountryShapes
from engine.segments.l1.s1b.replay import jitter, site_tile
from engine.segments.l1.s1b.s9_validation import distinct_ratio, stripe_z, tile_chi2_p
from tests.conftest import tiny_plan


def weights() -> pl.DataFrame:
    return pl.DataFrame({"tile_id": pl.Series(range(20), dtype=pl.UInt64), "weight": np.full(20, 0.05)})


def test_chi2_accepts_fair_draws_and_rejects_skewed_ones() -> None:
    fair = pl.DataFrame({"tile_id": np.repeat(np.arange(20), 50)})
    skewed = pl.DataFrame({"tile_id": np.repeat(np.arange(2), 500)})
    assert tile_chi2_p(fair, weights()) > 0.99
    assert tile_chi2_p(skewed, weights()) < 1e-12


def test_stripe_z_flags_one_overfull_row() -> None:
    index = pl.DataFrame({"tile_id": pl.Series(range(20), dtype=pl.UInt64), "row": np.arange(20) // 4})
    even = pl.DataFrame({"raster_row": np.repeat(np.arange(5), 40)})
    stripe = pl.DataFrame({"raster_row": np.repeat([0], 200)})
    assert stripe_z(even, weights(), index) < 1.0
    assert stripe_z(stripe, weights(), index) > 6.0


def test_distinct_ratio_expectation() -> None:
    used, expected = distinct_ratio(pl.DataFrame({"tile_id": np.arange(20)}), weights())
    assert used == 20 and abs(expected - 20 * (1 - 0.95**20)) < 1e-9


# --- replays on the tiny world ---------------------------------------------------------------------------
FAMILIES = ("1B.site_tile", "1B.jitter")


@pytest.fixture(scope="module")
def world(tiny_world: Path) -> dict[str, Any]:
    mf = tiny_plan(tiny_world)["1B"].manifest_fingerprint
    names = ("s5_site_tile", "s6_site_jitter")
    out: dict[str, Any] = {n: pl.read_parquet(dataset_file(tiny_world, n, mf=mf, seed=42)) for n in names}
    out |= {n: pl.read_parquet(dataset_file(tiny_world, n, mf=mf)) for n in ("tile_sampler", "tile_index")}
    sealed = json.loads((gate_dir(tiny_world, "1B", mf) / SEALED).read_text())
    paths = {i["id"]: tiny_world / i["path"] for i in sealed["inputs"]}
    countries = pl.read_parquet(paths["ref_countries"])
    out["iso_num"] = countries.select(pl.col("iso2").alias("country_iso"), "iso_num")
    out["shapes"] = CountryShapes(pl.read_parquet(paths["ref_country_polygons"]))
    out["placement"] = load_policy_file("1B", "placement", paths["1B/placement.yaml"], state="test")
    out["bundle"] = bundle_dir(tiny_world, "1B", 42, mf)
    out["parameter_hash"] = tiny_plan(tiny_world)["1B"].parameter_hash
    return out


def test_both_families_replayed_in_full_and_accounted(world: dict[str, Any]) -> None:
    by_id = {c["id"]: c for c in json.loads((world["bundle"] / "checks.json").read_text())}
    assert by_id["rng.families"]["status"] == "PASS"
    n = world["s5_site_tile"].height
    for family in FAMILIES:
        assert by_id[f"replay.{family}"]["status"] == "PASS"
        assert by_id[f"replay.{family}"]["detail"] == f"{family}: {n} of {n} draw events replayed bit for bit"
    tries = int(world["s6_site_jitter"]["attempts"].cast(pl.Int64).sum())
    recorded = json.loads((world["bundle"] / "rng_accounting.json").read_text())["recorded"]
    assert [recorded["1B.site_tile"][q] for q in ("draws", "blocks", "streams")] == [n, n, n]
    assert [recorded["1B.jitter"][q] for q in ("draws", "blocks", "streams")] == [2 * tries, tries, tries]


def _replay_world(world: dict[str, Any], **tables: pl.DataFrame) -> dict[str, dict[str, Any]]:
    t = {**world, **tables}
    replays = [
        site_tile(t["s5_site_tile"], t["tile_sampler"], t["iso_num"]),
        jitter(t["s6_site_jitter"], t["s5_site_tile"], t["tile_index"], t["iso_num"], t["shapes"],
               t["placement"].jitter_max_attempts),
    ]  # fmt: skip
    ctx = SimpleNamespace(
        segment="1B", state="1B.S9", facts={},
        family_key=lambda label: family_key(42, world["parameter_hash"], f"1B.{label}"),
    )  # fmt: skip
    recorded = json.loads((world["bundle"] / "rng_accounting.json").read_text())["recorded"]
    book = CheckBook()
    run_replays(cast(StateContext, ctx), book, replays, recorded, code="E_1B_REPLAY")
    return {c["id"]: c for c in book.checks if c["status"] == "FAIL"}


def test_one_changed_tile_or_coordinate_fails_its_replay(world: dict[str, Any]) -> None:
    assert _replay_world(world) == {}
    s5, s6 = world["s5_site_tile"], world["s6_site_jitter"]
    other = s5.with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(pl.col("tile_id") + 1).otherwise("tile_id").alias("tile_id")
    )
    failed = _replay_world(world, s5_site_tile=other.select(s5.columns))
    assert "replay.1B.site_tile" in failed and failed["replay.1B.site_tile"]["code"] == "E_1B_REPLAY"
    lon = s6["lon_deg"].to_numpy().copy()
    lon[3] = np.nextafter(lon[3], np.inf)
    failed = _replay_world(world, s6_site_jitter=s6.with_columns(pl.Series("lon_deg", lon)))
    assert list(failed) == ["replay.1B.jitter"]
    assert "in lon_deg" in failed["replay.1B.jitter"]["detail"]
