"""6A.S4 terminals (design layer2_3.md §3.6) on hand-made sites: the CP-site domain and the weight-rank
percentile by known answers, counts and terminal attributes re-derived in plain Python from numpy's Philox
(not the engine's kernel), and the invariants: every CP site ≥ 1 terminal, counts ≤ caps, ATMs only at ATM
MCCs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.core import yaml12
from engine.core.errors import EngineError
from engine.core.validation import PhiloxBlocks, u01
from engine.segments.l3.s6a import s4_terminals as s4
from engine.segments.l3.s6a.policy import Terminals

REPO = Path(__file__).resolve().parents[2]
KEY = (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321)


@pytest.fixture(scope="module")
def pol() -> Terminals:
    return Terminals.model_validate(yaml12.load((REPO / "config/policies/6A/terminals.yaml").read_text()))


def u64(values: list[int]) -> pl.Series:
    return pl.Series(values, dtype=pl.UInt64)


def hand_sites() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Merchant 10 (grocery, CP) with three sites in one zone, merchant 20 (ATM, 6011) with two sites,
    merchant 30 (CNP only) with one site, merchant 40 with a CP zone in FR
    and a site in a DE zone without a CP row."""
    sites = pl.DataFrame(
        {
            "site_id": u64([101, 102, 103, 201, 202, 301, 401, 402]),
            "merchant_id": u64([10, 10, 10, 20, 20, 30, 40, 40]),
            "legal_country_iso": ["DE", "DE", "DE", "US", "US", "DE", "FR", "DE"],
            "tzid": ["Europe/Berlin"] * 3
            + ["America/New_York"] * 2
            + ["Europe/Berlin", "Europe/Paris", "Europe/Berlin"],
        }
    )
    profile = pl.DataFrame(
        {
            "merchant_id": u64([10, 20, 30, 40]),
            "legal_country_iso": ["DE", "US", "DE", "FR"],
            "tzid": ["Europe/Berlin", "America/New_York", "Europe/Berlin", "Europe/Paris"],
            "channel_group": ["CP", "CP", "CNP", "CP"],
            "demand_class": ["grocery_daily", "cash_access", "online_24h", "fuel_convenience"],
            "mcc": pl.Series([5411, 6011, 5967, 5541], dtype=pl.UInt16),
        }
    )
    weights = pl.DataFrame(
        {
            "site_id": u64([101, 102, 103, 201, 202, 301, 401, 402]),
            "p_weight": [0.2, 0.5, 0.3, 0.5, 0.5, 1, 1, 1],
        }
    )
    return sites, profile, weights


def test_cp_sites_domain_and_rank_percentile() -> None:
    """Only sites of a CP zone; q = (n − rank + ½)/n by descending p_weight (ties by site_id)."""
    rows = s4.cp_sites(*hand_sites())
    assert rows["site_id"].to_list() == [101, 102, 103, 201, 202, 401]
    q = dict(zip(rows["site_id"].to_list(), rows["q"].to_list(), strict=True))
    assert q == pytest.approx({102: 2.5 / 3, 103: 1.5 / 3, 101: 0.5 / 3, 201: 0.75, 202: 0.25, 401: 0.5})


def test_lambdas_by_class_rank_and_atm(pol: Terminals) -> None:
    rows = s4.cp_sites(*hand_sites())
    atm, lam, cap = s4.site_lambdas(rows, pol)
    assert atm.tolist() == [False, False, False, True, True, False]
    assert lam[0] == pytest.approx(4.0 * (1 + 0.5 / 6))  # grocery, q = 1/6, bonus 0.5
    assert lam[3] == lam[4] == 0.8
    assert lam[5] == pytest.approx(3.0 * 1.25)
    assert cap.tolist() == [16, 16, 16, 4, 4, 16]


def replay_count(site_id: int, lam: float, cap: int) -> int:
    """1 + Poisson(λ) on [0, cap − 1] by inversion of lane 0 of ⟨site_id, 0, 0, 0⟩, from numpy's Philox."""
    u = u01(PhiloxBlocks(KEY).block(site_id, 0, 0, 0)[0])
    pmf = [math.exp(-lam) * lam**k / math.factorial(k) for k in range(cap)]
    t, acc = u * sum(pmf), 0.0
    for k, p in enumerate(pmf):
        acc += p
        if t <= acc:
            return 1 + k
    return cap


def test_counts_replay_and_caps(pol: Terminals) -> None:
    sites = np.arange(1, 2001, dtype=np.uint64) * 7919
    lam = np.linspace(0.5, 6.0, sites.shape[0])
    cap = np.where(np.arange(sites.shape[0]) % 2 == 0, 16, 4)
    n = s4.site_counts(KEY, sites, lam, cap)
    assert (n >= 1).all() and (n <= cap).all()
    for i in range(0, 2000, 97):
        assert n[i] == replay_count(int(sites[i]), float(lam[i]), int(cap[i]))
    big = s4.site_counts(KEY, sites, np.full(sites.shape[0], 2.0), np.full(sites.shape[0], 16))
    assert big.mean() == pytest.approx(3.0, abs=0.1)  # 1 + Poisson(2)


def test_terminal_rows_replay_and_invariants(pol: Terminals) -> None:
    rows = s4.cp_sites(*hand_sites())
    atm, lam, cap = s4.site_lambdas(rows, pol)
    n = s4.site_counts(KEY, rows["site_id"].to_numpy(), lam, cap)
    region = pl.Series(["EUROPE"] * 3 + ["NORTH_AMERICA"] * 2 + ["EUROPE"])
    out = s4.terminals(rows, n, atm, region, KEY, pol)
    assert out["terminal_id"].to_list() == list(range(1, int(n.sum()) + 1))
    assert out.group_by("site_id").len().sort("site_id")["len"].to_list() == n.tolist()
    kinds = out.group_by("merchant_id").agg(pl.col("terminal_type").cast(pl.String).unique())
    by_merchant = {m: set(k) for m, k in kinds.iter_rows()}
    assert by_merchant[20] == {"ATM"} and "ATM" not in by_merchant[10] | by_merchant[40]
    assert "KIOSK" not in by_merchant[10]  # grocery has no kiosk share
    assert out["site_ip_id"].unique().sort().to_list() == list(range(1, rows.height + 1))
    gen = PhiloxBlocks(KEY)
    for row in out.iter_rows(named=True):
        k = row["terminal_id"] - int(out.filter(pl.col("site_id") == row["site_id"])["terminal_id"].min()) + 1
        w0, w1, _, _ = gen.block(row["site_id"], k, 0, 0)
        is_atm = row["terminal_type"] == "ATM"
        region_of = "NORTH_AMERICA" if row["legal_country_iso"] == "US" else "EUROPE"
        p = (pol.atm_contactless if is_atm else pol.contactless)[region_of]
        assert row["contactless"] == (u01(w1) < p)
        if row["merchant_id"] == 40:  # fuel: kiosk share 0.3
            assert (row["terminal_type"] == "KIOSK") == (u01(w0) < 0.3)


def test_cap_check(pol: Terminals) -> None:
    s4.check_terminals(pol)
    tight = pol.model_copy(update={"pos": pol.pos.model_copy(update={"cap": 4})})
    with pytest.raises(EngineError) as err:
        s4.check_terminals(tight)
    assert err.value.code == "E_6A_CAP_INCONSISTENT"
