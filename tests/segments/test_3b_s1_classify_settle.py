"""3B.S1: first-match classification, the hybrid Beta share law, and the settlement draw replayed by hand."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from engine.core.errors import EngineError
from engine.core.layout import gate_dir
from engine.core.rng import family_key
from engine.core.validation import PhiloxBlocks
from engine.segments.l1.s3b.draws import beta_shares
from engine.segments.l1.s3b.rules import classify
from tests.conftest import shipped_policy, tiny_plan

KEY = (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321)
CNP, CP = "card_not_present", "card_present"


def test_first_matching_shipped_rule_decides() -> None:
    cases = [  # sector, mcc, channel, n_outlets → rule
        ("digital_goods", 5818, CNP, 1, "V01"),
        ("digital_goods", 5818, CP, 1, "P99"),
        ("utilities_telecom", 4814, CNP, 3, "V02"),
        ("travel", 4511, CNP, 1, "V03"),
        ("travel", 3005, CNP, 1, "V03"),  # an airline code from the range
        ("travel", 4722, CNP, 1, "V03"),
        ("travel", 7011, CNP, 1, "H02"),
        ("travel", 3600, CNP, 1, "H02"),  # a hotel code from the range
        ("travel", 7011, CP, 1, "P99"),
        ("apparel", 5651, CNP, 1, "H01"),
        ("apparel", 5651, CP, 25, "H04"),
        ("apparel", 5651, CP, 19, "P99"),
        ("entertainment", 7832, CNP, 1, "H03"),
        ("grocery", 5411, CNP, 1, "P99"),
    ]
    merchants = pl.DataFrame(
        [c[:4] for c in cases], schema=["sector", "mcc", "channel", "n_outlets_total"], orient="row"
    )
    out = classify(shipped_policy("3B", "virtual_rules"), merchants)
    assert out["rule_id"].to_list() == [c[4] for c in cases]
    decision = {"V": "VIRTUAL_ONLY", "H": "HYBRID", "P": "PHYSICAL"}
    assert out["virtual_mode"].to_list() == [decision[c[4][0]] for c in cases]
    assert set(out["rule_version"]) == {"1"}


def test_hybrid_share_follows_beta_and_clips() -> None:
    ids = np.arange(1, 20_001, dtype=np.uint64) * np.uint64(7919)
    share, draws, blocks = beta_shares(KEY, ids, 3.5, 6.5, (0.0, 1.0))
    assert stats.kstest(share, stats.beta(3.5, 6.5).cdf).pvalue > 1e-3
    assert abs(share.mean() - 0.35) < 0.005
    # two Marsaglia–Tsang gammas: 3 lanes per try, at least one try each; blocks = ⌈draws / 4⌉
    assert (draws >= 6).all() and (draws % 3 == 0).all() and (blocks == -(-draws // 4)).all()
    clipped, *_ = beta_shares(KEY, ids, 3.5, 6.5, (0.3, 0.4))
    assert clipped.min() == 0.3 and clipped.max() == 0.4
    assert np.array_equal(clipped, np.clip(share, 0.3, 0.4))  # the same draws, only clipped
    assert abs((clipped == 0.3).mean() - stats.beta(3.5, 6.5).cdf(0.3)) < 0.015


def _u01(x: int) -> float:
    return min(((x >> 11) + 0.5) * 2.0**-53, 1.0 - 2.0**-53)


def test_settlement_country_replayed_by_hand_from_the_counter(tiny_world: Path) -> None:
    mf = tiny_plan(tiny_world)["3B"].manifest_fingerprint
    sealed = json.loads((gate_dir(tiny_world, "3B", mf) / "sealed_inputs.json").read_text())
    gen = PhiloxBlocks(family_key(42, sealed["parameter_hash"], "3B.settlement"))
    policy = shipped_policy("3B", "settlement")
    part = "seed=42/*/part-00000.parquet"
    settle = pl.read_parquet(next(tiny_world.glob(f"data/layer1/3B/virtual_settlement/{part}")))
    modes = pl.read_parquet(next(tiny_world.glob(f"data/layer1/3B/virtual_classification/{part}")))
    homes = pl.read_parquet(next(tiny_world.glob(f"data/layer1/1A/merchant_catalogue/{part}")))
    modes, homes = (
        modes.select("merchant_id", "virtual_mode"),
        homes.select("merchant_id", "home_country_iso"),
    )
    rows = settle.join(modes, on="merchant_id").join(homes, on="merchant_id")
    assert rows.height == settle.height == (modes["virtual_mode"] != "PHYSICAL").sum() > 0
    hubs = sorted(policy.hubs)  # inverse CDF over the hubs in iso2 order
    bounds = np.cumsum([policy.hubs[h] for h in hubs])
    for mid, mode, home, country, offshore in rows.select(
        "merchant_id", "virtual_mode", "home_country_iso", "country_iso", "offshore"
    ).iter_rows():
        w0, w1, _, _ = gen.block(mid, 0, 0, 0)
        drawn = _u01(w0) < policy.offshore_prob[mode]
        hub = hubs[int(np.sum(bounds <= _u01(w1) * bounds[-1]))]
        assert (offshore, country) == (drawn, hub if drawn else home)
    assert rows["city_id"].null_count() == 0  # every settlement country has GeoNames places


def test_a_bounded_gamma_is_not_clipped_into_a_share() -> None:
    """The bound's NaN sentinel would pass min/max clipping as a valid share; it raises E_SAMPLER_BOUND."""
    with pytest.raises(EngineError) as err:
        beta_shares((1, 2), np.array([1, 2], np.uint64), float("nan"), 2.0, (0.05, 0.95))
    assert err.value.code == "E_SAMPLER_BOUND" and "3B.hybrid_share" in str(err.value)
