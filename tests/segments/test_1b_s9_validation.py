"""1B.S9: the spatial realism statistics, and both RNG families replayed through the law on the tiny world."""

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import polars as pl
import pytest
from scipy import stats

from engine.core.contracts import dataset_file
from engine.core.gates import SEALED
from engine.core.layout import bundle_dir, gate_dir
from engine.core.policy import load_policy_file
from engine.core.rng import family_key
from engine.core.state import StateContext
from engine.core.validation import CheckBook, run_replays
from engine.segments.l1.s1b.geo import CountryShapes
from engine.segments.l1.s1b.replay import jitter, site_tile
from engine.segments.l1.s1b.s9_validation import distinct_ratio, sparse_cell_site_ratio, stripe_z, tile_chi2_p
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


def _tiles(rows: list[tuple[str, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"country_iso": pl.String, "tile_id": pl.UInt64, "v": pl.Float64}, orient="row"
    )


def _sites(counts: dict[tuple[str, int], int]) -> pl.DataFrame:
    rows = [(c, t) for (c, t), n in counts.items() for _ in range(n)]
    return pl.DataFrame(rows, schema={"legal_country_iso": pl.String, "tile_id": pl.UInt64}, orient="row")


# 100 km² tiles in AA, 50 km² in BB, 10 km² in CC. AA: tile 1 holds 50 (0.5/km²: sparse), tile 2 950, tile 3
# nobody (left out of tile_weights). BB: tile 10 holds 20 (0.4/km²: sparse), tile 11 180. CC: no people.
INDEX = _tiles(
    [
        ("AA", 1, 100.0),
        ("AA", 2, 100.0),
        ("AA", 3, 100.0),
        ("BB", 10, 50.0),
        ("BB", 11, 50.0),
        ("CC", 20, 10.0),
    ]
).rename({"v": "area_km2"})
POP = _tiles(
    [("AA", 1, 50.0), ("AA", 2, 950.0), ("BB", 10, 20.0), ("BB", 11, 180.0), ("CC", 20, 0.0)]
).rename({"v": "pop"})


def test_sparse_cell_site_ratio_hand_computed() -> None:
    """AA: 5 % of its people in sparse tiles, 41 sites of which 4 sparse (3 in tile 1, 1 in the empty tile 3).
    BB: 10 %, 10 sites of which 2 sparse. CC (no people, UNIFORM) is left out. Expected sparse sites
    41·0.05 + 10·0.10 = 3.05, observed 6: ratio 6 / 3.05 over the 51 sites of AA and BB."""
    sites = _sites({("AA", 1): 3, ("AA", 3): 1, ("AA", 2): 37, ("BB", 10): 2, ("BB", 11): 8, ("CC", 20): 5})
    ratio, bound, support = sparse_cell_site_ratio(sites, POP, INDEX, 1.0)
    assert ratio == pytest.approx(6 / 3.05, rel=1e-12) and support == 51
    # the bound λ_L / 3.05 is the Poisson mean at which 6 or more sparse sites has probability 1e-6
    assert stats.poisson.sf(5, bound * 3.05) == pytest.approx(1e-6, rel=1e-6)
    assert 0.10 < bound < 0.11  # six sites prove nothing: λ_L = 0.313…
    # sites spread as the people are: ratio 1
    ratio, bound, support = sparse_cell_site_ratio(_sites({("AA", 1): 10, ("AA", 2): 190}), POP, INDEX, 1.0)
    assert ratio == pytest.approx(1.0, rel=1e-12) and bound < 1.0 and support == 200


def test_sparse_cell_site_ratio_bound_fails_only_a_shown_pile_up() -> None:
    """20,000 AA sites expect 1,000 in the sparse tile 1 (5 %). 1,300 there is a ratio of 1.3 and passes
    (bound < 1.5); 4.5× as many (the old raster's pile-up) fails; 1,520 (ratio 1.52) is not shown to
    exceed 1.5 at α = 1e-6 and passes."""
    for sparse, fails in ((1_300, False), (4_500, True), (1_520, False)):
        sites = _sites({("AA", 1): sparse, ("AA", 2): 20_000 - sparse})
        ratio, bound, _ = sparse_cell_site_ratio(sites, POP, INDEX, 1.0)
        assert ratio == pytest.approx(sparse / 1_000, rel=1e-12)
        assert stats.poisson.sf(sparse - 1, bound * 1_000) == pytest.approx(1e-6, rel=1e-6)
        assert (bound > 1.5) == fails, sparse


def test_sparse_cell_site_ratio_without_sparse_population() -> None:
    """A threshold no tile falls under (0.1 /km²): no one lives sparsely, so no site may either. The empty
    tile 3 still counts as sparse for a site placed there (0 < 0.1·100), which is an error: inf."""
    assert sparse_cell_site_ratio(_sites({("AA", 2): 7, ("BB", 11): 3}), POP, INDEX, 0.1) == (0.0, 0.0, 10)
    ratio, bound, support = sparse_cell_site_ratio(_sites({("AA", 2): 7, ("AA", 3): 1}), POP, INDEX, 0.1)
    assert ratio == bound == float("inf") and support == 8


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
