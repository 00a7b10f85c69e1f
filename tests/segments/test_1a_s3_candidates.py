"""1A.S3: the candidate ladder, ranking, openness; on the tiny world, who is open and the rank invariants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.core.contracts import dataset_file
from engine.core.policy import load_policy_file
from engine.core.rng import family_key
from engine.kernels.blocks import block_uniforms
from engine.segments.l1.s1a.common import market_table, tier_value
from engine.segments.l1.s1a.policy import Crossborder
from engine.segments.l1.s1a.s3_candidates import Ladder, openness
from tests.conftest import shipped_policy, tiny_plan

POLICY: Crossborder = shipped_policy("1A", "crossborder")  # type: ignore[assignment]
SEED = 42

# 12 countries, 2 regions, 3 subregions. Hubs present: GB, DE. CU is deny_dest. CL and PE tie on weight.
MARKET = pl.DataFrame(
    [
        ("MX", "Americas", "LatAm", 0.040),
        ("BR", "Americas", "LatAm", 0.060),
        ("AR", "Americas", "LatAm", 0.030),
        ("CL", "Americas", "LatAm", 0.020),
        ("PE", "Americas", "LatAm", 0.020),
        ("CO", "Americas", "LatAm", 0.012),
        ("CU", "Americas", "LatAm", 0.009),
        ("EC", "Americas", "LatAm", 0.008),
        ("GB", "Europe", "West", 0.150),
        ("DE", "Europe", "West", 0.140),
        ("PL", "Europe", "East", 0.030),
        ("CZ", "Europe", "East", 0.010),
    ],
    schema={"iso2": pl.String, "region": pl.String, "subregion": pl.String, "market_weight": pl.Float64},
    orient="row",
).sort("iso2")
W = dict(MARKET.select("iso2", "market_weight").iter_rows())


def _expect(home: str, ranked: list[tuple[str, str]]) -> tuple[tuple[str, str, float], ...]:
    return ((home, "HOME", W[home]), *((c, s, W[c]) for c, s in ranked))


def test_tier_lookup() -> None:
    ladder = Ladder(MARKET, POLICY)
    assert [ladder.tier(n) for n in (2, 9, 10, 49, 50, 5000)] == [0, 0, 1, 1, 2, 2]


def test_tier0_top5_of_home_subregion_only() -> None:
    ladder = Ladder(MARKET, POLICY)
    got = ladder.list_for("MX", 0)
    # LatAm by weight without MX (home) and CU (deny_dest): BR, AR, CL=PE (iso2 tie), CO, EC -> EC is 6th
    assert got == _expect("MX", [("BR", "REGIONAL"), ("AR", "REGIONAL"), ("CL", "REGIONAL"),
                                 ("PE", "REGIONAL"), ("CO", "REGIONAL")])  # fmt: skip
    # PL's subregion has only CZ; same-region West (GB, DE) is not offered at tier 0
    assert ladder.list_for("PL", 0) == _expect("PL", [("CZ", "REGIONAL")])


def test_tier1_region_then_hubs() -> None:
    ladder = Ladder(MARKET, POLICY)
    assert ladder.list_for("MX", 1) == _expect(
        "MX",
        [("BR", "REGIONAL"), ("AR", "REGIONAL"), ("CL", "REGIONAL"), ("PE", "REGIONAL"),
         ("CO", "REGIONAL"), ("EC", "REGIONAL"), ("GB", "HUB"), ("DE", "HUB")],
    )  # fmt: skip
    # a hub home is not its own candidate, and a hub already taken as REGIONAL stays REGIONAL
    assert ladder.list_for("GB", 1) == _expect("GB", [("DE", "REGIONAL"), ("PL", "REGIONAL"),
                                                      ("CZ", "REGIONAL")])  # fmt: skip


def test_tier2_hubs_and_global_deduped_and_capped() -> None:
    full = _expect(
        "MX",
        [("BR", "REGIONAL"), ("AR", "REGIONAL"), ("CL", "REGIONAL"), ("PE", "REGIONAL"), ("CO", "REGIONAL"),
         ("EC", "REGIONAL"), ("GB", "HUB"), ("DE", "HUB"), ("PL", "GLOBAL"), ("CZ", "GLOBAL")],
    )  # fmt: skip
    got = Ladder(MARKET, POLICY).list_for("MX", 2)
    assert got == full
    assert len({c for c, _, _ in got}) == len(got)  # deduped
    capped = Ladder(MARKET, POLICY.model_copy(update={"max_candidates": 7})).list_for("MX", 2)
    assert capped == full[:8]  # home + the 7 best-ranked foreign candidates


def test_ranks_order_source_then_weight_then_iso2() -> None:
    order = {"HOME": 0, "REGIONAL": 1, "HUB": 2, "GLOBAL": 3}
    for home in MARKET["iso2"]:
        for tier in range(3):
            lst = Ladder(MARKET, POLICY).list_for(home, tier)
            assert lst[0] == (home, "HOME", W[home])
            keys = [(order[s], -w, c) for c, s, w in lst]
            assert keys == sorted(keys)
            assert all(c != home and c not in POLICY.deny_dest for c, _, _ in lst[1:])
            assert len(lst) - 1 <= POLICY.max_candidates


def test_market_table_eligible_shares() -> None:
    countries = pl.DataFrame(
        {
            "iso2": ["AA", "BB", "CC"],
            "region": ["r"] * 3,
            "subregion": ["s"] * 3,
            "eligible": [True, False, True],
        }
    )
    macro = pl.DataFrame({"iso2": ["AA", "BB", "CC"], "gdp_usd": [3.0, 100.0, 1.0]})
    out = market_table(countries, macro)
    assert out["iso2"].to_list() == ["AA", "CC"]
    assert out["market_weight"].to_list() == [0.75, 0.25]


def test_openness_adds_deltas_exactly_and_clamps() -> None:
    feats = pl.DataFrame(
        {
            "sector": ["grocery", "travel", "digital_goods", "health"],
            "cnp": [False, True, True, False],
            "gdp_bucket": pl.Series([0, 4, 2, 3], dtype=pl.UInt16),
        }
    )
    got = openness(feats, POLICY)
    assert got.tolist() == [0.06, 0.35 + 0.08 + 0.10, 0.20 + 0.08 + 0.10, 0.28]
    o = POLICY.openness
    hot = POLICY.model_copy(update={"openness": o.model_copy(update={"cnp": 0.95})})
    cold = POLICY.model_copy(update={"openness": o.model_copy(update={"cnp": -0.5})})
    assert openness(feats, hot).tolist() == [0.06, 1.0, 1.0, 0.28]
    assert openness(feats, cold).tolist() == [0.06, 0.0, 0.0, 0.28]


# --- the tiny world ------------------------------------------------------------------------------------


def _tables(root: Path) -> dict[str, pl.DataFrame]:
    plan = tiny_plan(root)
    mf = plan["1A"].manifest_fingerprint
    out = {
        n: pl.read_parquet(dataset_file(root, n, mf=mf, seed=SEED))
        for n in ("s1_hurdle", "s2_outlet_count", "s3_open", "s3_candidates")
    }
    out["universe"] = pl.read_parquet(
        dataset_file(root, "merchant_universe", mf=plan["ING"].manifest_fingerprint)
    )
    for ref in plan["1A"].references:
        out[ref.name] = pl.read_parquet(root / ref.relpath)
    return out


@pytest.fixture(scope="module")
def world(tiny_world: Path) -> dict[str, pl.DataFrame]:
    return _tables(tiny_world)


def _sealed_crossborder(root: Path) -> Crossborder:
    pol = next(p for p in tiny_plan(root)["1A"].policies if p.key == "1A/crossborder.yaml")
    model: Crossborder = load_policy_file("1A", "crossborder", root / pol.relpath, state="test")
    return model


def test_s3_open_covers_exactly_the_multi_site_merchants(world: dict[str, pl.DataFrame]) -> None:
    multi = world["s1_hurdle"].filter(pl.col("is_multi"))["merchant_id"].sort()
    assert world["s3_open"]["merchant_id"].sort().to_list() == multi.to_list()
    assert world["s3_open"].height > 0


def test_denied_merchants_are_never_open(world: dict[str, pl.DataFrame], tiny_world: Path) -> None:
    policy = _sealed_crossborder(tiny_world)
    o = world["s3_open"].join(world["universe"], on="merchant_id")
    assert o.filter(pl.col("deny_reason").is_not_null() & pl.col("is_open")).height == 0
    deny_home = o["home_country_iso"].is_in(policy.deny_home)
    deny_cnp = (o["channel"] == "card_not_present") & o["mcc"].is_in(policy.deny_cnp_mcc)
    assert (o["deny_reason"] == "deny_home").fill_null(False).to_list() == deny_home.to_list()
    assert (o["deny_reason"] == "deny_cnp_mcc").fill_null(False).to_list() == (
        deny_cnp & ~deny_home
    ).to_list()


def test_open_draw_replays(world: dict[str, pl.DataFrame], tiny_world: Path) -> None:
    policy = _sealed_crossborder(tiny_world)
    o = (
        world["s3_open"]
        .join(world["s2_outlet_count"].select("merchant_id", "n_outlets"), on="merchant_id")
        .join(world["universe"].select("merchant_id", "channel"), on="merchant_id")
        .filter(pl.col("deny_reason").is_null())
    )
    n = o["n_outlets"].to_numpy().astype(np.int64)
    p = tier_value(n, [t.n_min for t in policy.open_prob], [t.p for t in policy.open_prob])
    p = p * np.where((o["channel"] == "card_not_present").to_numpy(), policy.cnp_open_multiplier, 1.0)
    assert o["open_prob"].to_numpy().tolist() == p.tolist()
    key = family_key(SEED, tiny_plan(tiny_world)["1A"].parameter_hash, "1A.xb_open")
    u = block_uniforms(key, o["merchant_id"].to_numpy())[:, 0]
    assert o["is_open"].to_list() == (u < p).tolist()


def test_candidates_home_once_contiguous_ranks(world: dict[str, pl.DataFrame]) -> None:
    cands = world["s3_candidates"]
    opened = world["s3_open"].filter(pl.col("is_open"))["merchant_id"].sort()
    assert cands["merchant_id"].unique().sort().to_list() == opened.to_list()
    per = cands.group_by("merchant_id").agg(
        pl.col("candidate_rank").sort().alias("ranks"),
        (pl.col("source") == "HOME").sum().alias("homes"),
        pl.col("country_iso").filter(pl.col("candidate_rank") == 0).first().alias("rank0"),
        pl.col("source").filter(pl.col("candidate_rank") == 0).first().alias("src0"),
    )
    assert (per["homes"] == 1).all() and (per["src0"] == "HOME").all()
    for ranks in per["ranks"]:
        assert ranks.to_list() == list(range(len(ranks)))
    homes = per.join(world["universe"], on="merchant_id")
    assert (homes["rank0"] == homes["home_country_iso"]).all()


def test_candidates_recompute_from_the_ladder(world: dict[str, pl.DataFrame], tiny_world: Path) -> None:
    ladder = Ladder(
        market_table(world["ref_countries"], world["ref_country_macro"]), _sealed_crossborder(tiny_world)
    )
    cands = world["s3_candidates"].sort(["merchant_id", "candidate_rank"])
    opened = (
        world["s3_open"]
        .filter(pl.col("is_open"))
        .join(world["s2_outlet_count"].select("merchant_id", "n_outlets"), on="merchant_id")
        .join(world["universe"].select("merchant_id", "home_country_iso"), on="merchant_id")
    )
    for mid, home, n in opened.select("merchant_id", "home_country_iso", "n_outlets").iter_rows():
        got = cands.filter(pl.col("merchant_id") == mid).select("country_iso", "source", "market_weight")
        assert tuple(got.iter_rows()) == ladder.list_for(home, ladder.tier(n))


def test_hubs_count_only_countries_not_already_picked() -> None:
    """'+ k hubs' adds k hub countries: a hub already taken as REGIONAL does not use up a hub slot."""
    policy = POLICY.model_copy(update={"hubs": ["DE", "PL", "CZ"]})
    tier = policy.ladder[1].model_copy(update={"region_top": 1, "hubs": 2})
    policy = policy.model_copy(update={"ladder": [policy.ladder[0], tier, policy.ladder[2]]})
    got = Ladder(MARKET, policy).list_for("GB", 1)
    # region Europe without GB: DE is REGIONAL (top 1); the hubs then add PL and CZ, not DE again
    assert got == _expect("GB", [("DE", "REGIONAL"), ("PL", "HUB"), ("CZ", "HUB")])
