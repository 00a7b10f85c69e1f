"""6A.S2 — each party's accounts (design §3.4) and the issuers that hold them (amendment 11).

Counts per (party, account type) come from a Poisson truncated to [0, K_max] ([1, K_max] for a required
product) by inverse CDF, so every cap holds by construction; every account of a party sits with the party's
issuer, one of its country's 2–5 issuers drawn by Zipf market share.

RNG `6A.account`: ⟨party_id, type_code, 0, 0⟩ w0 → the count of that type (type_code = index in ACCOUNT_TYPES;
the CURRENT block's w1 → the issuer), so CURRENT events read 2 lanes and the others 1;
⟨party_id, type_code, k, 0⟩ for the k-th account of the type (its 4 lanes all count as read): w0 → PREMIUM
iff u < income^e, w1 → the opening day (not for the primary account, opened at onboarding), (w2, w3) → the
credit limit's normal (CREDIT_CARD). Normals are Box–Muller's cos branch."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels import njit, prange
from engine.kernels.philox import philox4x64_10, u01
from engine.kernels.samplers import normal_from_u
from engine.segments.l3.s6a.common import ACCOUNT_CODE, ACCOUNT_TYPE, TIER, enum_of
from engine.segments.l3.s6a.draws import truncated_poisson_one
from engine.segments.l3.s6a.policy import ACCOUNT_TYPES, PARTY_TYPES, SCORES, Accounts

SCORE_COLUMNS = ("income_score", "digital_affinity", "cash_affinity", "cross_border_propensity")
N_TYPES = len(ACCOUNT_TYPES)
CURRENT = ACCOUNT_CODE["CURRENT"]
CREDIT_CARD = ACCOUNT_CODE["CREDIT_CARD"]
BATCH = 1 << 20  # parties per batch: ≈ 2.7 M accounts, ≈ 0.6 GiB of working arrays


def zipf_shares(n: int, exponent: float) -> np.ndarray:
    """Market shares ∝ rank^−exponent for ranks 1..n, summing to 1."""
    w = np.array([math.pow(r, -exponent) for r in range(1, n + 1)])
    return w / w.sum()


def issuers(countries: pl.DataFrame, pol: Accounts) -> pl.DataFrame:
    """One row per (country, rank), issuer_id sequential from 1 in that order; `countries` holds country_iso
    (the run's Enum) and n (its parties), sorted by country."""
    rows = []
    for iso, n in countries.iter_rows():
        shares = zipf_shares(pol.issuers.count(n), pol.issuers.zipf_exponent)
        rows += [(iso, r + 1, float(s)) for r, s in enumerate(shares)]
    out = pl.DataFrame(rows, schema=["country_iso", "issuer_rank", "market_share"], orient="row")
    return (
        out.with_columns(
            pl.col("country_iso").cast(countries["country_iso"].dtype),
            pl.col("issuer_rank").cast(pl.UInt8),
        )
        .with_row_index("issuer_id", offset=1)
        .with_columns(pl.col("issuer_id").cast(pl.UInt64))
    )


def product_table(pol: Accounts) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per (party type, account type): λ, K_max, the support's lower end (1 if zero-truncated) and the tilt
    weights over SCORES; a product a party type lacks has K_max 0."""
    lam = np.zeros((len(PARTY_TYPES), N_TYPES))
    kmax = np.zeros((len(PARTY_TYPES), N_TYPES), dtype=np.int64)
    lo = np.zeros((len(PARTY_TYPES), N_TYPES), dtype=np.int64)
    tilt = np.zeros((len(PARTY_TYPES), N_TYPES, len(SCORES)))
    for i, ptype in enumerate(PARTY_TYPES):
        for j, acct in enumerate(ACCOUNT_TYPES):
            prod = pol.products[ptype].get(acct)
            if prod is None:
                continue
            lam[i, j], kmax[i, j], lo[i, j] = prod.lam, prod.k_max, int(prod.zero_truncated)
            tilt[i, j] = [prod.tilt.get(s, 0.0) for s in SCORES]
    return lam, kmax, lo, tilt


@njit(cache=True, nogil=True, parallel=True)
def _counts(k0, k1, pid, ptype, country, scores, lam, kmax, lo, tilt, clip, cum_share, counts, rank):  # type: ignore[no-untyped-def]
    for i in prange(pid.shape[0]):
        t = ptype[i]
        for j in range(lam.shape[1]):
            if kmax[t, j] == 0:
                continue
            w0, w1, _, _ = philox4x64_10(pid[i], np.uint64(j), np.uint64(0), np.uint64(0), k0, k1)
            x = 0.0
            for f in range(scores.shape[1]):
                x += tilt[t, j, f] * (scores[i, f] - 0.5)
            lam_eff = lam[t, j] * math.exp(min(max(x, -clip), clip))
            counts[i, j] = truncated_poisson_one(u01(w0), lam_eff, lo[t, j], kmax[t, j])
            if j == 0:
                u = u01(w1)
                row = cum_share[country[i]]
                r = 0
                while r < row.shape[0] - 1 and u > row[r]:
                    r += 1
                rank[i] = r + 1


@njit(cache=True, nogil=True, parallel=True)
def _account_lanes(k0, k1, pid, code, k, out):  # type: ignore[no-untyped-def]
    for i in prange(pid.shape[0]):
        w0, w1, w2, w3 = philox4x64_10(pid[i], np.uint64(code[i]), np.uint64(k[i]), np.uint64(0), k0, k1)
        out[i, 0] = u01(w0)
        out[i, 1] = u01(w1)
        out[i, 2] = normal_from_u(u01(w2), u01(w3))


def credit_limits(
    income: np.ndarray, z: np.ndarray, factor: np.ndarray, rate: np.ndarray, minor: np.ndarray, pol: Accounts
) -> np.ndarray:
    """Limits in minor units: a USD-equivalent lognormal by income × `factor` (party type and country scale),
    in local money rounded to a step of 10^round(log10(round_to_usd · rate)) major units (at least one)."""
    cl = pol.credit_limit
    usd = cl.median_usd * np.exp(cl.income_slope * (income - 0.5) + cl.sigma * z) * factor
    step = 10.0 ** np.round(np.log10(cl.round_to_usd * rate))
    major = np.maximum(np.round(usd * rate / step), 1.0) * step
    return np.round(major * 10.0 ** minor.astype(np.float64)).astype(np.int64)


def country_book(
    countries: pl.DataFrame, iss: pl.DataFrame, currencies: pl.DataFrame, macro: pl.DataFrame, pol: Accounts
) -> dict[str, Any]:
    """Per country (in the Enum's physical order): cumulative issuer shares padded with 1, its first
    issuer_id, currency, minor units, units per USD (1 for a currency without a rate, as S0 warned) and the
    credit-limit scale (GDP per head / reference)^exponent (1 for a country ref_country_macro lacks)."""
    iso = countries["country_iso"].cast(pl.String).to_list()
    cum = np.ones((len(iso), pol.issuers.max_issuers))
    first = np.zeros(len(iso), dtype=np.int64)
    for c, (_, group) in enumerate(iss.group_by("country_iso", maintain_order=True)):
        cum[c, : group.height] = np.cumsum(group["market_share"].to_numpy())
        cum[c, group.height - 1 :] = 1.0
        first[c] = int(group["issuer_id"][0])
    money = pl.DataFrame({"iso2": iso}).join(
        currencies.select("iso2", "currency", "minor_units"), on="iso2", how="left"
    )
    if money["currency"].null_count():
        missing = money.filter(pl.col("currency").is_null())["iso2"][0]
        raise EngineError(
            "E_6A_CURRENCY_MISSING",
            f"ref_currencies has no currency for {missing}",
            where="ref_currencies",
            state="6A.S2",
        )
    rate = np.array([pol.units_per_usd.get(c, 1.0) for c in money["currency"].to_list()])
    gdp = pl.DataFrame({"iso2": iso}).join(macro.select("iso2", "gdp_pc_usd"), on="iso2", how="left")
    cl = pol.credit_limit
    scale = [
        1.0 if g is None else math.pow(g / cl.gdp_reference_usd, cl.gdp_exponent) for g in gdp["gdp_pc_usd"]
    ]
    return {
        "scale": np.array(scale),
        "cum": cum,
        "first": first,
        "currency": money["currency"],
        "minor": money["minor_units"].to_numpy(),
        "rate": rate,
    }


def accounts(
    ctx: StateContext,
    parties: pl.DataFrame,
    book: dict[str, Any],
    pol: Accounts,
    start: dt.date,
    first_id: int = 1,
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Draw a batch of parties' holdings and issuer, then each account's tier, opening day and credit limit;
    account ids from first_id.
    Returns (accounts, counts per party and account type, their K_max)."""
    pid = parties["party_id"].to_numpy()
    n = pid.size
    ptype = parties["party_type"].to_physical().to_numpy().astype(np.int64)
    country = parties["country_iso"].to_physical().to_numpy().astype(np.int64)
    scores = np.column_stack([parties[c].to_numpy().astype(np.float64) for c in SCORE_COLUMNS])
    lam, kmax, lo, tilt = product_table(pol)
    key = ctx.family_key("account")
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    counts = np.zeros((n, N_TYPES), dtype=np.int64)
    rank = np.zeros(n, dtype=np.int64)
    _counts(
        k0, k1, pid, ptype, country, scores, lam, kmax, lo, tilt, pol.tilt_clip, book["cum"], counts, rank
    )
    for j in range(N_TYPES):
        held = kmax[ptype, j] > 0
        ctx.record_draws(
            "account", (pid[held], j, 0, 0), draws=2 if j == CURRENT else 1, blocks=1, value=counts[held, j]
        )
    flat = counts.ravel()
    cell = np.repeat(np.arange(flat.size), flat)
    who, code = cell // N_TYPES, cell % N_TYPES
    k = np.arange(cell.size) - np.repeat(np.cumsum(flat) - flat, flat) + 1
    lanes = np.empty((cell.size, 3))
    _account_lanes(k0, k1, pid[who], code, k, lanes)
    ctx.record_draws("account", (pid[who], code, k, 0), draws=4, blocks=1, value=lanes[:, 0])
    income = scores[who, 0]
    primary = (code == CURRENT) & (k == 1)
    onboard = parties["onboarding_date"].to_numpy().astype("datetime64[D]")[who]
    span = (np.datetime64(start, "D") - onboard).astype(np.int64)
    offset = np.where(primary, 0, np.floor(lanes[:, 1] * span).astype(np.int64))
    credit = code == CREDIT_CARD
    c_who = country[who]
    by_type = np.array([pol.credit_limit.type_factor[t] for t in PARTY_TYPES])
    factor = by_type[ptype[who]] * book["scale"][c_who]
    limit = np.zeros(cell.size, dtype=np.int64)
    limit[credit] = credit_limits(
        income[credit],
        lanes[credit, 2],
        factor[credit],
        book["rate"][c_who][credit],
        book["minor"][c_who][credit],
        pol,
    )
    premium = lanes[:, 0] < np.power(income, pol.premium_exponent)
    out = pl.DataFrame(
        {
            "account_id": np.arange(first_id, first_id + cell.size, dtype=np.uint64),
            "party_id": pid[who],
            "account_type": enum_of(code, ACCOUNT_TYPE),
            "product_tier": enum_of(premium.astype(np.int64), TIER),
            "currency": book["currency"].gather(c_who),
            "opened_date": onboard + offset.astype("timedelta64[D]"),
            "is_primary": primary,
            "credit_limit_minor": limit,
            "issuer_id": (book["first"][c_who] + rank[who] - 1).astype(np.uint64),
            "issuer_country": parties["country_iso"].gather(who),
        }
    )
    return (
        out.with_columns(pl.when(pl.col("account_type") == "CREDIT_CARD").then(pl.col("credit_limit_minor"))),
        counts,
        kmax[ptype],
    )


def check_holdings(counts: np.ndarray, kmax: np.ndarray, state: str) -> None:
    """Counts ≤ K_max per (party, type) and ≥ 1 CURRENT per party (E_6A_CAP_VIOLATION): the sampler's
    bounds, checked on what it returned."""
    over = int((counts > kmax).sum())
    without = int((counts[:, CURRENT] < 1).sum())
    if over or without:
        raise EngineError(
            "E_6A_CAP_VIOLATION",
            f"{over} (party, account type) counts above K_max; {without} parties without a CURRENT account",
            where="accounts",
            state=state,
        )


def run(ctx: StateContext) -> None:
    pol: Accounts = ctx.policy("6A/accounts.yaml")
    start = ctx.policy("CFG/horizon.yaml").start().date()
    parties = ctx.read("parties").select(
        "party_id", "country_iso", "party_type", "onboarding_date", *SCORE_COLUMNS
    )
    countries = parties.group_by("country_iso").agg(pl.len().alias("n")).sort("country_iso")
    iss = issuers(countries, pol)
    book = country_book(
        countries, iss, ctx.sealed_table("ref_currencies"), ctx.sealed_table("ref_country_macro"), pol
    )
    with ctx.stream("issuers") as sink:
        sink.write(iss.select("issuer_id", "country_iso", "issuer_rank", "market_share"))
    by_type = np.zeros(N_TYPES, dtype=np.int64)
    with ctx.stream("accounts") as sink:
        for lo in range(0, parties.height, BATCH):
            out, counts, kmax = accounts(
                ctx, parties.slice(lo, BATCH), book, pol, start, int(by_type.sum()) + 1
            )
            check_holdings(counts, kmax, ctx.state)
            by_type += counts.sum(axis=0)
            sink.write(out)
    n = int(by_type.sum())
    ctx.facts["accounts"] = {"n": n, "per_party": n / max(parties.height, 1), "issuers": iss.height}
    ctx.facts["accounts_by_type"] = {t: int(c) for t, c in zip(ACCOUNT_TYPES, by_type, strict=True)}
