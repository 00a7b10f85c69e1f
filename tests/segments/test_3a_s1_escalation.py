"""3A.S1: first-match rules, pair/zone support from the sites, and the escalation draw replayed from numpy's
Philox."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.core.errors import EngineError
from engine.core.rng import family_key
from engine.core.validation import PhiloxBlocks, u01
from engine.segments.l1.s3a.policy import ZoneEscalation
from engine.segments.l1.s3a.s1_escalation import match_rules, pair_zones
from tests.conftest import shipped_policy


def _part(root: Path, seg: str, name: str) -> pl.DataFrame:
    return pl.read_parquet(next(root.glob(f"data/layer1/{seg}/{name}/seed=42/*/part-00000.parquet")))


def test_rules_first_match_wins() -> None:
    policy = shipped_policy("3A", "zone_escalation")
    assert isinstance(policy, ZoneEscalation)
    zones = pl.Series([1, 1, 2, 2, 3, 2, 2, 3], dtype=pl.UInt16)
    sites = pl.Series([1, 50, 2, 5, 3, 20, 19, 2], dtype=pl.UInt32)
    rule, mode = match_rules(policy, zones, sites)
    assert rule.to_list() == [
        "SINGLE_ZONE",
        "SINGLE_ZONE",
        "BELOW_MIN_SITES",
        "DEFAULT",
        "FORCED",
        "FORCED",
        "DEFAULT",
        "BELOW_MIN_SITES",  # 3 zones but 2 sites cannot happen in data; the order decides
    ]
    assert mode.to_list()[:5] == ["never", "never", "never", "theta_mix", "always"]


def test_site_count_mismatch_is_refused() -> None:
    outlets = pl.DataFrame({"merchant_id": [1, 1, 2], "legal_country_iso": ["US", "US", "FR"]})
    site_tz = pl.DataFrame(
        {
            "merchant_id": [1, 2],
            "legal_country_iso": ["US", "FR"],
            "tz_index": pl.Series([5, 7], dtype=pl.UInt16),
            "tzid": ["America/New_York", "Europe/Paris"],
        }
    )
    with pytest.raises(EngineError) as err:
        pair_zones(outlets, site_tz, "3A.S1")
    assert err.value.code == "E_3A_SITE_COUNT"
    ok = pair_zones(outlets, site_tz.vstack(site_tz.head(1)), "3A.S1")
    assert ok.filter(pl.col("merchant_id") == 1)["site_share"].to_list() == [1.0]


def test_pairs_follow_outlets_and_sites(tiny_world: Path) -> None:
    pairs = _part(tiny_world, "3A", "s1_pairs")
    zones = _part(tiny_world, "3A", "s1_pair_zones")
    outlets = _part(tiny_world, "1A", "outlet_catalogue").group_by("merchant_id", "legal_country_iso").len()
    joined = pairs.join(outlets, on=["merchant_id", "legal_country_iso"], how="full", coalesce=True)
    assert joined.height == outlets.height == pairs.height
    assert (joined["site_count"].cast(pl.Int64) == joined["len"].cast(pl.Int64)).all()
    per_pair = zones.group_by("merchant_id", "legal_country_iso").agg(
        pl.col("sites_in_zone").sum(), pl.col("site_share").sum(), pl.len().alias("z")
    )
    both = per_pair.join(pairs, on=["merchant_id", "legal_country_iso"])
    assert (both["sites_in_zone"] == both["site_count"]).all()
    assert ((both["site_share"] - 1.0).abs() < 1e-12).all()
    assert (both["z"] == both["zones_supported"]).all()
    assert not pairs.filter(pl.col("rule").is_in(["SINGLE_ZONE", "BELOW_MIN_SITES"]))["is_escalated"].any()
    assert pairs.filter(pl.col("rule") == "FORCED")["is_escalated"].all()


def test_default_pairs_escalate_by_their_own_uniform(tiny_world: Path) -> None:
    """u(w0) of ⟨merchant_id, iso_num, 0, 0⟩ under key (seed, 3A parameter_hash, "3A.escalate") < θ."""
    pairs = _part(tiny_world, "3A", "s1_pairs").filter(pl.col("rule") == "DEFAULT")
    report = json.loads(
        next(tiny_world.glob("reports/3A/s1_escalation/seed=42/*/run_report.json")).read_text()
    )
    countries = pl.read_parquet(next(tiny_world.glob("resources/ref_countries/build=*/*.parquet")))
    iso_num = dict(countries.select("iso2", "iso_num").iter_rows())
    gen = PhiloxBlocks(family_key(42, report["parameter_hash"], "3A.escalate"))
    theta = shipped_policy("3A", "zone_escalation").theta_mix  # type: ignore[attr-defined]
    for mid, iso2, flag in pairs.select("merchant_id", "legal_country_iso", "is_escalated").iter_rows():
        assert (u01(gen.block(mid, iso_num[iso2], 0, 0)[0]) < theta) == flag
    assert report["rng_accounting"].get("3A.escalate", {"draws": 0})["draws"] == pairs.height
    assert np.all(pairs["merchant_id"].to_numpy() > 0)
