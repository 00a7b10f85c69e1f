"""6A.S1 parties (design layer2_3.md §3.3): world size and largest-remainder quotas by known answers, the
household-size law by its mean, and each party's draws re-derived in plain Python from numpy's Philox (not the
engine's kernel); invariants: counts conserve, households are runs of one country's RETAIL parties."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from engine.core import yaml12
from engine.core.validation import PhiloxBlocks, u01
from engine.segments.l3.s6a import s1_parties as s1
from engine.segments.l3.s6a.common import PARTY_TYPE, REGION, SEGMENT, largest_remainder
from engine.segments.l3.s6a.policy import Population, World

REPO = Path(__file__).resolve().parents[2]
KEY = (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321)
START = dt.date(2026, 3, 2)


def shipped(name: str):  # type: ignore[no-untyped-def]
    model = {"world": World, "population": Population}[name]
    return model.model_validate(yaml12.load((REPO / f"config/policies/6A/{name}.yaml").read_text()))


@pytest.fixture(scope="module")
def pop() -> Population:
    return shipped("population")


def fake_ctx() -> SimpleNamespace:
    """The two StateContext services the draws use: the family key and the draw ledger."""
    calls: list[tuple[str, tuple, dict]] = []
    return SimpleNamespace(
        family_key=lambda label: KEY,
        record_draws=lambda label, counter, **kw: calls.append((label, counter, kw)),
        calls=calls,
        facts={},
    )


def normal(w0: int, w1: int) -> float:
    return math.sqrt(-2.0 * math.log(u01(w0))) * math.cos(2.0 * math.pi * u01(w1))


def test_largest_remainder_known_answers() -> None:
    # Hamilton on 10 seats for 42/33/25: quotas 4.2, 3.3, 2.5 → floors 4, 3, 2 and the seat left goes to .5
    assert largest_remainder(10, np.array([42.0, 33.0, 25.0])).tolist() == [4, 3, 3]
    # three equal parts of 7: one seat left, equal remainders, so the smallest tie-break wins it
    assert largest_remainder(7, np.ones(3), np.array([0.9, 0.1, 0.5])).tolist() == [2, 3, 2]
    assert largest_remainder(7, np.ones(3)).tolist() == [3, 2, 2]  # no tie-break: by position
    assert largest_remainder(0, np.array([1.0, 2.0])).tolist() == [0, 0]
    with pytest.raises(ValueError):
        largest_remainder(3, np.zeros(2))


def test_world_size_and_country_floors() -> None:
    world = shipped("world")
    assert s1.world_size(50_000.0, world, 1.1) == 22_917  # 50 000 / (4 · 0.6) · 1.1 = 22 916.67
    assert s1.size_noise(10.0, world) == 1.1 and s1.size_noise(-10.0, world) == 0.9
    assert s1.size_noise(0.0, world) == pytest.approx(math.exp(-(0.05**2) / 2))
    weekly = np.array([100.0, 1_000.0, 10_000.0])
    counts, n, floor = s1.country_counts(weekly, 500, world, np.zeros(3))
    # floor 50 each, 350 left ∝ W^0.9: 100^.9 = 63.10, 1000^.9 = 501.19, 10^3.6 = 3981.07 of 4545.36
    # → quotas 4.86, 38.59, 306.55 → floors 4, 38, 306 and the two seats left to the remainders .86 and .59
    assert (n, floor) == (500, 50)
    assert counts.tolist() == [55, 89, 356] and counts.sum() == n
    counts, n, _ = s1.country_counts(weekly, 100, world, np.zeros(3))  # floors exceed N: N = Σ floors
    assert counts.tolist() == [50, 50, 50] and n == 150


def test_geometric_household_law() -> None:
    assert s1.geometric_cdf(1.0, 5).tolist() == [1.0] * 5  # mean 1: every household is one person
    assert np.allclose(s1.geometric_cdf(3.0, 5), [0.2, 0.4, 0.6, 0.8, 1.0])  # mean 3 of 1..5: r = 1
    cdf = s1.geometric_cdf(2.8, 5)
    pmf = np.diff(np.concatenate([[0.0], cdf]))
    assert cdf[-1] == 1.0 and (pmf > 0).all() and np.all(np.diff(pmf) < 0)
    assert 1.0 + (np.arange(5) * pmf).sum() == pytest.approx(2.8, abs=1e-9)


def test_type_and_segment_quotas(pop: Population) -> None:
    countries = pl.DataFrame({"country_iso": ["DE", "US"], "region": ["EUROPE", "NORTH_AMERICA"],
                              "subregion": ["Western Europe", "Northern America"]})  # fmt: skip
    cells = s1.cell_counts(countries, np.array([1000, 77]), pop)
    de = cells.filter(pl.col("country_iso") == "DE")
    # EUROPE RETAIL .965 / BUSINESS .035 of 1000: 965 and 35, then the segment mixes by largest remainder
    assert de.group_by("party_type").agg(pl.col("count").sum()).sort("party_type").rows() == [
        ("BUSINESS", 35),
        ("RETAIL", 965),
    ]
    retail = dict(de.filter(pl.col("party_type") == "RETAIL").select("segment", "count").iter_rows())
    # 965 × (.07 .12 .20 .25 .08 .10 .14 .04) = 67.55 115.8 193 241.25 77.2 96.5 135.1 38.6: floors sum 962,
    # the 3 left go to the largest remainders .8 (EARLY_CAREER), .6 (VALUE), .55 (STUDENT), not .5 (MATURE)
    assert retail == {
        "RETAIL_STUDENT": 68, "RETAIL_EARLY_CAREER": 116, "RETAIL_FAMILY": 193, "RETAIL_MASS_MARKET": 241,
        "RETAIL_AFFLUENT": 77, "RETAIL_MATURE": 96, "RETAIL_RETIRED": 135, "RETAIL_VALUE": 39,
    }  # fmt: skip
    assert cells["count"].sum() == 1077 and (cells["count"] > 0).all()


def draw_world(pop: Population, counts: list[int]) -> tuple[pl.DataFrame, SimpleNamespace]:
    countries = pl.DataFrame({"country_iso": ["AT", "BE"], "region": ["EUROPE", "EUROPE"],
                              "subregion": ["Western Europe", "Western Europe"]})  # fmt: skip
    cells = s1.cell_counts(countries, np.array(counts), pop).with_columns(
        pl.col("country_iso").cast(pl.Enum(["AT", "BE"])),
        pl.col("region").cast(REGION),
        pl.col("subregion").cast(pl.Enum(["Western Europe"])),
        pl.col("party_type").cast(PARTY_TYPE),
        pl.col("segment").cast(SEGMENT),
    )
    ctx = fake_ctx()
    return s1.parties(ctx, cells, pop, START), ctx  # type: ignore[arg-type]


def test_party_draws_replay(pop: Population) -> None:
    out, _ = draw_world(pop, [300, 200])
    assert out["party_id"].to_list() == list(range(1, 501))
    gen = PhiloxBlocks(KEY)
    alpha, cap = pop.activity.pareto_alpha, pop.activity.cap_to_median * 2 ** (1 / pop.activity.pareto_alpha)
    for row in out.sample(60, seed=7).iter_rows(named=True):
        pid, prof = row["party_id"], pop.profiles[row["segment"]]
        w = min((1.0 - u01(gen.block(pid, 0, 0, 0)[0])) ** (-1.0 / alpha), cap) * prof.activity_factor
        assert row["activity_weight"] == pytest.approx(w, rel=1e-6)
        t = gen.block(pid, 1, 0, 0)
        months = min(
            max(prof.tenure_median_months * math.exp(pop.tenure.sigma * normal(t[0], t[1])), 1.0), 480
        )
        assert row["onboarding_date"] == START - dt.timedelta(days=math.floor(months * 365.2425 / 12 + 0.5))
        a, b = gen.block(pid, 2, 0, 0), gen.block(pid, 2, 0, 1)
        zs = [normal(a[0], a[1]), normal(a[2], a[3]), normal(b[0], b[1]), normal(b[2], b[3])]
        means = [prof.income, prof.digital, prof.cash, prof.cross_border]
        got = [row[c] for c in s1.SCORE_COLUMNS]
        want = [min(max(m + pop.score_noise_sigma * z, 0.0), 1.0) for m, z in zip(means, zs, strict=True)]
        assert got == pytest.approx(want, abs=1e-6)


def test_households_replay_and_invariants(pop: Population) -> None:
    out, ctx = draw_world(pop, [300, 200])
    gen = PhiloxBlocks(KEY)
    cdfs = {s: s1.geometric_cdf(m, pop.households.max_size) for s, m in pop.households.mean_size.items()}
    # walk each country's RETAIL run in party order, drawing a size at each head, cut at the run's end
    want_size, want_head = {}, set()
    for (_, ptype), grp in out.group_by("country_iso", "party_type", maintain_order=True):
        rows = grp.select("party_id", "segment").rows()
        i = 0
        while i < len(rows):
            pid, seg = rows[i]
            k = 1
            if ptype == "RETAIL":
                u = u01(gen.block(pid, 3, 0, 0)[0])
                k = min(next(j for j, c in enumerate(cdfs[seg]) if u <= c) + 1, len(rows) - i)
            want_head.add(pid)
            want_size.update({rows[m][0]: k for m in range(i, i + k)})
            i += k
    assert dict(zip(out["party_id"], out["household_size"], strict=True)) == want_size
    heads = out.filter(pl.col("household_id") != pl.col("household_id").shift(1).fill_null(0))
    assert set(heads["party_id"]) == want_head
    assert out["household_id"].to_list() == sorted(out["household_id"])  # sequential in party order
    per = out.group_by("household_id").agg(
        pl.len(),
        pl.col("household_size").first(),
        pl.col("country_iso").n_unique(),
        pl.col("party_type").n_unique(),
    )
    assert (per["len"] == per["household_size"]).all() and (per["country_iso"] == 1).all()
    assert (per["party_type"] == 1).all() and per["len"].max() <= pop.households.max_size
    assert (out.filter(pl.col("party_type") == "BUSINESS")["household_size"] == 1).all()
    drew = next(c for c in ctx.calls if c[1][1] == s1.PARTY_HOUSEHOLD)
    assert sorted(drew[1][0].tolist()) == sorted(heads.filter(pl.col("party_type") == "RETAIL")["party_id"])


def test_draw_accounting(pop: Population) -> None:
    out, ctx = draw_world(pop, [120, 80])
    usage = {c[1][1]: (c[2]["draws"], c[2]["blocks"], c[1][0].size) for c in ctx.calls}
    assert usage[s1.PARTY_ACTIVITY] == (1, 1, 200) and usage[s1.PARTY_TENURE] == (2, 1, 200)
    assert usage[s1.PARTY_SCORES] == (8, 2, 200)
    assert out.height == 200 and out["onboarding_date"].max() < START
