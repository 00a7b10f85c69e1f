"""6A.S2 accounts and issuers (design layer2_3.md §3.4, amendment 11): the truncated-Poisson inverse CDF
against a hand-computed table, Zipf shares and credit limits by known answers, each party's counts, issuer
and account attributes re-derived in plain Python from numpy's Philox; invariants: caps, one primary CURRENT
per party, no orphan, opening days inside [onboarding, start), issuers of the party's country."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from engine.core import yaml12
from engine.core.errors import EngineError
from engine.core.validation import PhiloxBlocks, u01
from engine.segments.l3.s6a import s2_accounts as s2
from engine.segments.l3.s6a.common import PARTY_TYPE, SEGMENT
from engine.segments.l3.s6a.draws import truncated_poisson_one
from engine.segments.l3.s6a.policy import ACCOUNT_TYPES, SCORES, Accounts

REPO = Path(__file__).resolve().parents[2]
KEY = (0x0BAD_5EED_0000_0001, 0x7777_0000_1234_0042)
START = dt.date(2026, 3, 2)
COUNTRY = pl.Enum(["DE", "JP"])
# DE at the 50 000 USD reference GDP per head (scale 1); JP missing from the reference (scale 1 too)
MACRO = pl.DataFrame({"iso2": ["DE", "FR"], "gdp_pc_usd": [50_000.0, 45_000.0]})


@pytest.fixture(scope="module")
def pol() -> Accounts:
    return Accounts.model_validate(yaml12.load((REPO / "config/policies/6A/accounts.yaml").read_text()))


def test_truncated_poisson_table() -> None:
    # λ 1.05 on [1, 2]: P(1) ∝ 1.05, P(2) ∝ 1.05²/2 = .55125 → F(1) = 1.05/1.60125 = .65574
    assert [truncated_poisson_one(u, 1.05, 1, 2) for u in (1e-9, 0.6557, 0.6558, 0.999999)] == [1, 1, 2, 2]
    # λ 0.5 on [0, 3]: p = .606531, .303265, .075816, .012636 of Z = .998248
    # → F = .607594, .911391, .987342, 1
    table = [(0.6075, 0), (0.6077, 1), (0.9113, 1), (0.9115, 2), (0.9873, 2), (0.9874, 3), (0.99999, 3)]
    assert [truncated_poisson_one(u, 0.5, 0, 3) for u, _ in table] == [k for _, k in table]
    assert truncated_poisson_one(0.5, 40.0, 0, 2) == 2  # a λ far above the cap still stops at K_max


def test_zipf_shares_and_issuers(pol: Accounts) -> None:
    h5 = 1 + 1 / 2 + 1 / 3 + 1 / 4 + 1 / 5
    assert s2.zipf_shares(5, 1.0) == pytest.approx(
        [1 / h5, 1 / (2 * h5), 1 / (3 * h5), 1 / (4 * h5), 1 / (5 * h5)]
    )
    countries = pl.DataFrame({"country_iso": pl.Series(["DE", "JP"], dtype=COUNTRY), "n": [150_000, 999]})
    iss = s2.issuers(countries, pol)
    # DE's 150 000 parties reach the 100 000 tier (5 issuers), JP's 999 stay in the first (2)
    assert iss.select("issuer_id", "country_iso", "issuer_rank").rows() == [
        (1, "DE", 1), (2, "DE", 2), (3, "DE", 3), (4, "DE", 4), (5, "DE", 5), (6, "JP", 1), (7, "JP", 2)
    ]  # fmt: skip
    assert iss.group_by("country_iso").agg(pl.col("market_share").sum())[
        "market_share"
    ].to_list() == pytest.approx([1.0, 1.0])


def test_credit_limit_known_answers(pol: Accounts) -> None:
    countries = pl.DataFrame({"country_iso": pl.Series(["DE", "JP"], dtype=COUNTRY), "n": [10, 10]})
    currencies = pl.DataFrame({"iso2": ["DE", "JP"], "currency": ["EUR", "JPY"], "minor_units": [2, 0]})
    macro = pl.DataFrame({"iso2": ["DE", "JP"], "gdp_pc_usd": [50_000.0, 12_500.0]})
    book = s2.country_book(countries, s2.issuers(countries, pol), currencies, macro, pol)
    # (12 500 / 50 000)^0.35 = 0.25^0.35 = 0.6156: a JP limit is 62 % of a DE one at the same income
    assert book["scale"].tolist() == pytest.approx([1.0, 0.25**0.35])
    one = np.ones(1)
    # income .5, z 0, RETAIL: 3 000 USD; in EUR (.92) 2 760 on a 100-unit step → 2 800.00 EUR = 280 000 cents
    assert s2.credit_limits(0.5 * one, 0 * one, one, 0.92 * one, 2 * one, pol).tolist() == [280_000]
    # in JPY (150, no minor units): 450 000 on a 10^round(log10 15 000) = 10 000 step
    assert s2.credit_limits(0.5 * one, 0 * one, one, 150 * one, 0 * one, pol).tolist() == [450_000]
    # income 1 and a BUSINESS factor 3 in USD: 3000 · e^1 · 3 = 24 464 → 24 500.00
    assert s2.credit_limits(one, 0 * one, 3 * one, one, 2 * one, pol).tolist() == [2_450_000]


def parties(n: int) -> pl.DataFrame:
    rng = np.random.default_rng(5)
    btype = rng.random(n) < 0.2
    return pl.DataFrame(
        {
            "party_id": pl.Series(np.arange(1, n + 1), dtype=pl.UInt64),
            "country_iso": pl.Series(np.where(np.arange(n) < n // 2, "DE", "JP")).cast(COUNTRY),
            "party_type": pl.Series(np.where(btype, "BUSINESS", "RETAIL")).cast(PARTY_TYPE),
            "segment": pl.Series(np.where(btype, "BUSINESS_SME", "RETAIL_FAMILY")).cast(SEGMENT),
            "onboarding_date": [START - dt.timedelta(days=int(d)) for d in rng.integers(30, 9000, n)],
            **{c: pl.Series(rng.random(n), dtype=pl.Float32) for c in s2.SCORE_COLUMNS},
        }
    )


def run_accounts(pol: Accounts, n: int = 400) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, list]:
    people = parties(n)
    countries = people.group_by("country_iso").agg(pl.len().alias("n")).sort("country_iso")
    iss = s2.issuers(countries, pol)
    currencies = pl.DataFrame({"iso2": ["DE", "JP"], "currency": ["EUR", "JPY"], "minor_units": [2, 0]})
    book = s2.country_book(countries, iss, currencies, MACRO, pol)
    calls: list = []
    ctx = SimpleNamespace(family_key=lambda label: KEY, record_draws=lambda *a, **k: calls.append((a, k)))
    out, counts, kmax = s2.accounts(ctx, people, book, pol, START)  # type: ignore[arg-type]
    s2.check_holdings(counts, kmax, "6A.S2")
    return people, iss, out, calls


def plain_count(u: float, lam: float, lo: int, k_max: int) -> int:
    pmf = [math.exp(-lam) * lam**k / math.factorial(k) if k >= lo else 0.0 for k in range(k_max + 1)]
    acc = 0.0
    for k, p in enumerate(pmf):
        acc += p / sum(pmf)
        if u <= acc + 1e-15 and p > 0:
            return k
    return k_max


def test_counts_and_issuers_replay(pol: Accounts) -> None:
    people, iss, out, _ = run_accounts(pol)
    gen = PhiloxBlocks(KEY)
    held = out.group_by("party_id", pl.col("account_type").cast(pl.String)).len()
    got = {(p, a): n for p, a, n in held.iter_rows()}
    shares = {c: g["market_share"].to_list() for (c,), g in iss.group_by("country_iso", maintain_order=True)}
    first_id = {c: int(g["issuer_id"].min()) for (c,), g in iss.group_by("country_iso")}
    issuer_of = dict(out.select("party_id", "issuer_id").unique().iter_rows())
    for row in people.iter_rows(named=True):
        pid, ptype = row["party_id"], row["party_type"]
        for j, acct in enumerate(ACCOUNT_TYPES):
            prod = pol.products[ptype][acct]
            w = gen.block(pid, j, 0, 0)
            x = sum(
                prod.tilt.get(s, 0.0) * (float(row[c]) - 0.5)
                for s, c in zip(SCORES, s2.SCORE_COLUMNS, strict=True)
            )
            lam = prod.lam * math.exp(min(max(x, -pol.tilt_clip), pol.tilt_clip))
            assert got.get((pid, acct), 0) == plain_count(
                u01(w[0]), lam, int(prod.zero_truncated), prod.k_max
            )
            if acct == "CURRENT":
                u, cum = u01(w[1]), np.cumsum(shares[row["country_iso"]])
                rank = next(r for r, c in enumerate(cum) if u <= c or r == len(cum) - 1) + 1
                assert issuer_of[pid] == first_id[row["country_iso"]] + rank - 1


def test_account_attributes_replay(pol: Accounts) -> None:
    people, _, out, _ = run_accounts(pol)
    gen = PhiloxBlocks(KEY)
    by_party = {r["party_id"]: r for r in people.iter_rows(named=True)}
    out = out.with_columns(pl.int_range(1, pl.len() + 1).over("party_id", "account_type").alias("k"))
    for row in out.sample(120, seed=3).iter_rows(named=True):
        party = by_party[row["party_id"]]
        j = ACCOUNT_TYPES.index(row["account_type"])
        w = gen.block(row["party_id"], j, row["k"], 0)
        income = float(party["income_score"])
        assert row["product_tier"] == ("PREMIUM" if u01(w[0]) < income**2 else "STANDARD")
        span = (START - party["onboarding_date"]).days
        want = (
            party["onboarding_date"]
            if row["is_primary"]
            else party["onboarding_date"] + dt.timedelta(days=math.floor(u01(w[1]) * span))
        )
        assert row["opened_date"] == want
        if row["account_type"] == "CREDIT_CARD":
            z = math.sqrt(-2 * math.log(u01(w[2]))) * math.cos(2 * math.pi * u01(w[3]))
            factor = pol.credit_limit.type_factor[party["party_type"]]
            rate, minor = (0.92, 2) if party["country_iso"] == "DE" else (150.0, 0)
            usd = 3000 * math.exp(2.0 * (income - 0.5) + 0.6 * z) * factor
            step = 10.0 ** round(math.log10(100 * rate))
            assert row["credit_limit_minor"] == pytest.approx(
                max(round(usd * rate / step), 1) * step * 10**minor, rel=1e-12
            )
        else:
            assert row["credit_limit_minor"] is None


def test_invariants(pol: Accounts) -> None:
    people, iss, out, calls = run_accounts(pol)
    assert out["account_id"].to_list() == list(range(1, out.height + 1))
    canonical = out.sort("party_id", pl.col("account_type").to_physical(), maintain_order=True)
    assert canonical["account_id"].to_list() == out["account_id"].to_list()  # (party, type, k) order
    primary = out.filter("is_primary")
    assert primary.height == people.height and (primary["account_type"] == "CURRENT").all()
    first_current = (
        out.filter(pl.col("account_type") == "CURRENT").group_by("party_id").agg(pl.col("account_id").min())
    )
    assert set(first_current["account_id"]) == set(primary["account_id"])
    assert out.join(people, on="party_id", how="anti").height == 0  # no orphan
    both = out.join(people.select("party_id", "onboarding_date", "country_iso"), on="party_id")
    assert ((both["opened_date"] >= both["onboarding_date"]) & (both["opened_date"] < START)).all()
    assert (both["issuer_country"] == both["country_iso"]).all()
    assert (
        both.join(
            iss, left_on=["issuer_id", "country_iso"], right_on=["issuer_id", "country_iso"], how="anti"
        ).height
        == 0
    )
    assert out.group_by("party_id").agg(pl.col("issuer_id").n_unique())["issuer_id"].max() == 1
    assert set(out.filter(pl.col("account_type") == "CREDIT_CARD")["credit_limit_minor"].is_null()) == {False}
    # accounting: one count event per (party, product) and one block per account
    events = sum(len(a[1][0]) for a, _ in calls if isinstance(a[1][2], int))
    assert events == people.height * len(ACCOUNT_TYPES)
    assert sum(len(a[1][0]) for a, _ in calls if not isinstance(a[1][2], int)) == out.height


def test_cap_check() -> None:
    kmax = np.array([[2, 3], [2, 3]])
    s2.check_holdings(np.array([[1, 3], [2, 0]]), kmax, "6A.S2")
    with pytest.raises(EngineError) as err:
        s2.check_holdings(np.array([[1, 4], [2, 0]]), kmax, "6A.S2")
    assert err.value.code == "E_6A_CAP_VIOLATION"
    with pytest.raises(EngineError) as err:
        s2.check_holdings(np.array([[0, 1], [2, 0]]), kmax, "6A.S2")
    assert err.value.code == "E_6A_CAP_VIOLATION" and "without a CURRENT" in err.value.what


def test_batches_change_nothing(pol: Accounts) -> None:
    people, iss, whole, _ = run_accounts(pol, 300)
    countries = people.group_by("country_iso").agg(pl.len().alias("n")).sort("country_iso")
    currencies = pl.DataFrame({"iso2": ["DE", "JP"], "currency": ["EUR", "JPY"], "minor_units": [2, 0]})
    book = s2.country_book(countries, iss, currencies, MACRO, pol)
    ctx = SimpleNamespace(family_key=lambda label: KEY, record_draws=lambda *a, **k: None)
    head, _, _ = s2.accounts(ctx, people.slice(0, 130), book, pol, START)  # type: ignore[arg-type]
    tail, _, _ = s2.accounts(ctx, people.slice(130), book, pol, START, head.height + 1)  # type: ignore[arg-type]
    assert pl.concat([head, tail]).equals(whole)
