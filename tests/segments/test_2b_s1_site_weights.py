"""2B.S1 on the tiny world: weights re-derived by hand from the keyed lanes, population and the policy."""

import math
from pathlib import Path

import polars as pl
import pytest

from engine.core.rng import family_key
from engine.core.validation import PhiloxBlocks, u01
from tests.conftest import shipped_policy, tiny_plan


def part(root: Path, seg: str, name: str) -> pl.DataFrame:
    return pl.read_parquet(next(root.glob(f"data/layer1/{seg}/{name}/**/part-00000.parquet")))


def test_weights_sum_to_one_and_single_sites_weigh_one(tiny_world: Path) -> None:
    w = part(tiny_world, "2B", "s1_site_weights")
    loc = part(tiny_world, "1B", "site_locations")
    assert sorted(w["site_id"].to_list()) == sorted(loc["site_id"].to_list())
    sums = w.group_by("merchant_id").agg(pl.col("p_weight").sum(), pl.len())
    assert (sums["p_weight"] - 1.0).abs().max() <= 1e-12
    single = w.join(sums.filter(pl.col("len") == 1), on="merchant_id", how="semi")
    assert set(single["profile"]) == {"SINGLE"} and (single["p_weight"] == 1.0).all()
    assert single["noise_z"].null_count() == single.height
    # exactly one flagship per HUB merchant and none elsewhere
    flags = w.group_by("merchant_id").agg(pl.col("profile").first(), pl.col("flagship").sum())
    assert (flags.filter(pl.col("profile") == "HUB")["flagship"] == 1).all()
    assert (flags.filter(pl.col("profile") != "HUB")["flagship"] == 0).all()


def _by_hand(rows: list[dict], mid: int, key_p: tuple, key_z: tuple, pol) -> tuple[str, dict[int, float]]:
    """layer1 §2B.S1 written out in plain Python for one merchant."""
    n = len(rows)
    tier = [t for t in pol.profiles if t.min_sites <= n][-1]
    u = u01(PhiloxBlocks(key_p).block(mid, 0, 0, 0)[0])
    cum, profile = 0.0, "FLAT"
    for name in ("HUB", "HEAVY", "FLAT"):
        cum += getattr(tier, name)
        if u < cum:
            profile = name
            break
    sigma = getattr(pol.sigma, profile)
    gen = PhiloxBlocks(key_z)
    raw = {}
    for r in rows:
        w0, w1, _, _ = gen.block(mid, r["site_id"], 0, 0)
        z = math.sqrt(-2 * math.log(u01(w0))) * math.cos(2 * math.pi * u01(w1))
        raw[r["site_id"]] = max(r["pop"], 1.0) ** pol.pop_exponent * math.exp(sigma * z - sigma * sigma / 2)
    if profile == "HUB":
        top = min(raw, key=lambda s: (-raw[s], s))
        raw[top] *= pol.hub_boost
    total = sum(raw.values())
    p = {s: v / total for s, v in raw.items()}
    top = min(p, key=lambda s: (-p[s], s))
    if p[top] > pol.top1_cap:
        rest = 1.0 - p[top]
        p = {s: (pol.top1_cap if s == top else v * (1.0 - pol.top1_cap) / rest) for s, v in p.items()}
    return profile, p


def test_multi_site_weights_re_derived_by_hand(tiny_world: Path) -> None:
    w = part(tiny_world, "2B", "s1_site_weights")
    loc = part(tiny_world, "1B", "site_locations").select("site_id", "legal_country_iso", "tile_id")
    tiles = part(tiny_world, "1B", "tile_weights").select(
        pl.col("country_iso").alias("legal_country_iso"), "tile_id", "pop"
    )
    sites = w.join(loc, on="site_id").join(tiles, on=["legal_country_iso", "tile_id"], how="left")
    sites = sites.with_columns(pl.col("pop").fill_null(0.0))
    ph = tiny_plan(tiny_world)["2B"].parameter_hash
    key_p, key_z = family_key(42, ph, "2B.site_profile"), family_key(42, ph, "2B.site_noise")
    pol = shipped_policy("2B", "site_weights")
    multi = sites.filter(pl.len().over("merchant_id") > 1)
    checked = 0
    for (mid,), grp in multi.group_by(["merchant_id"]):
        profile, p = _by_hand(grp.to_dicts(), mid, key_p, key_z, pol)
        assert grp["profile"][0] == profile
        for s, pw in grp.select("site_id", "p_weight").iter_rows():
            assert pw == pytest.approx(p[s], rel=1e-12, abs=1e-15)
        checked += 1
    assert checked >= 20
