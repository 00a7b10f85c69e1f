"""3A.S3: base shares and α by hand, the gamma kernel against scipy, and every published gamma replayed
from numpy's Philox."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from engine.core.errors import EngineError
from engine.core.rng import family_key
from engine.core.validation import Lanes, PhiloxBlocks
from engine.segments.l1.s1a.replay import gamma
from engine.segments.l1.s3a.policy import ZonePriors
from engine.segments.l1.s3a.s3_zone_shares import component_gammas, dirichlet_params
from tests.conftest import shipped_policy


def test_base_share_and_alpha_by_hand() -> None:
    pol = shipped_policy("3A", "zone_priors")
    assert isinstance(pol, ZonePriors)
    zones = pl.DataFrame(
        {
            "merchant_id": [1, 1, 2, 2],
            "legal_country_iso": ["US", "US", "RU", "RU"],
            "site_count": [4, 4, 500, 500],
            "site_share": [0.75, 0.25, 0.998, 0.002],
            "prior_share": [0.2, 0.6, 0.0, 0.0],
        }
    )
    out = dirichlet_params(zones, pol)
    # pair 1: q = [0.25, 0.75], b = 0.6·s + 0.4·q, κ = 8 + 4 = 12
    assert np.allclose(out["base_share"][:2], [0.55, 0.45], rtol=0, atol=1e-15)
    assert np.allclose(out["alpha"][:2], [6.6, 5.4], rtol=1e-15)
    # pair 2: no prior mass on its zones → q even; κ capped at 200; α floored at 0.05 nowhere here
    assert np.allclose(out["base_share"][2:], [0.6 * 0.998 + 0.2, 0.6 * 0.002 + 0.2], rtol=1e-15)
    assert np.allclose(out["alpha"][2:], 200 * out["base_share"][2:].to_numpy(), rtol=1e-15)


def test_component_gammas_follow_gamma_and_use_their_own_counters() -> None:
    key = (12345, 678)
    n = 4000
    ids = np.arange(1, n + 1, dtype=np.uint64)
    for alpha in (0.3, 2.5):
        g, draws, blocks = component_gammas(key, ids, np.full(n, 840), np.zeros(n), np.full(n, alpha))
        assert stats.kstest(g, stats.gamma(alpha).cdf).pvalue > 1e-3
        assert (draws % 3 == (1 if alpha < 1 else 0)).all() and (blocks == (draws + 3) // 4).all()
    # one component's draw does not depend on which others are drawn with it
    alone, _, _ = component_gammas(key, ids[7:8], np.full(1, 840), np.zeros(1), np.full(1, 2.5))
    assert alone[0] == g[7]


def test_every_gamma_replays_from_numpy_philox(tiny_world: Path) -> None:
    shares = pl.read_parquet(
        next(tiny_world.glob("data/layer1/3A/s3_zone_shares/seed=42/*/part-00000.parquet"))
    )
    report = json.loads(
        next(tiny_world.glob("reports/3A/s3_zone_shares/seed=42/*/run_report.json")).read_text()
    )
    countries = pl.read_parquet(next(tiny_world.glob("resources/ref_countries/build=*/*.parquet")))
    iso_num = dict(countries.select("iso2", "iso_num").iter_rows())
    gen = PhiloxBlocks(family_key(42, report["parameter_hash"], "3A.zone_dirichlet"))
    draws = 0
    for mid, iso2, tzi, alpha, g, blocks in shares.select(
        "merchant_id", "legal_country_iso", "tz_index", "alpha", "gamma_draw", "blocks"
    ).iter_rows():
        lanes = Lanes(gen, (mid, iso_num[iso2], tzi, 0), 3)
        assert gamma(lanes, alpha) == g and lanes.blocks == blocks
        draws += lanes.draws
    assert report["rng_accounting"]["3A.zone_dirichlet"]["draws"] == draws
    per_pair = shares.group_by("merchant_id", "legal_country_iso").agg(
        pl.col("share").sum(),
        (pl.col("share") - pl.col("gamma_draw") / pl.col("gamma_draw").sum()).abs().max().alias("d"),
    )
    assert ((per_pair["share"] - 1.0).abs() <= 1e-12).all() and (per_pair["d"] <= 1e-15).all()


def test_a_nan_concentration_stops_with_the_sampler_bound_code() -> None:
    """A gamma whose shape is NaN comes back as the bound's NaN sentinel: E_SAMPLER_BOUND, not
    E_3A_SHARE_SUM."""
    ids = np.array([1, 2], dtype=np.uint64)
    with pytest.raises(EngineError) as err:
        component_gammas((1, 2), ids, np.full(2, 3, np.uint64), ids - 1, np.array([1.0, np.nan]))
    assert err.value.code == "E_SAMPLER_BOUND" and "3A.zone_dirichlet" in str(err.value)
