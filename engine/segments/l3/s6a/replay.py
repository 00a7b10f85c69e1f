"""6A.S6's RNG families re-derived for validation's replay law (engine.core.validation), in plain Python from
numpy's Philox blocks: nothing here calls 6A.S6's code, its numba kernels or numpy's vectorised maths.

6A.risk ⟨kind, id, 0, 0⟩: ε by Box–Muller (cos branch) on u(w0), u(w1); the published f32 score is
logistic(linear predictor + σ·ε). 6A.role ⟨kind, id, 1, 0⟩: u(w0) drives the party's role draw, an account's
or a device's propagation."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from engine.core.validation import USAGE, PhiloxBlocks, Replay, u01, with_counter
from engine.segments.l3.s6a.policy import DAYS_PER_MONTH, PARTY_ROLES, Roles, World

KIND = {"PARTY": 1, "ACCOUNT": 2, "DEVICE": 3, "MERCHANT": 4}


def usage(draws: int) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """Per-event usage of a family that reads `draws` lanes of one block per event."""

    def per_row(rows: pl.DataFrame) -> pl.DataFrame:
        n = rows.height
        return pl.DataFrame({q: np.full(n, draws if q == "draws" else 1, dtype=np.int64) for q in USAGE})

    return per_row


def _f32(x: float) -> float:
    return float(np.float32(x))


def risk(party_rows: pl.DataFrame, merchant_rows: pl.DataFrame, pol: Roles, start: dt.date) -> Replay:
    """Party rows: party_id, party_type, segment, cross_border_propensity, digital_affinity, credit_cards,
    onboarding_date, household_size, risk_score. Merchant rows: merchant_id, high_risk (bool), cnp (bool),
    risk_score."""
    parties = party_rows.select(
        pl.lit(KIND["PARTY"], dtype=pl.UInt64).alias("kind"),
        pl.col("party_id").alias("id"),
        pl.col("party_type").cast(pl.String),
        pl.col("segment").cast(pl.String),
        pl.col("cross_border_propensity").cast(pl.Float64),
        pl.col("digital_affinity").cast(pl.Float64),
        pl.col("credit_cards").cast(pl.Int64),
        (pl.lit(start) - pl.col("onboarding_date")).dt.total_days().cast(pl.Int64).alias("tenure_days"),
        pl.col("household_size").cast(pl.Int64),
        pl.lit(False).alias("high_risk"),
        pl.lit(False).alias("cnp"),
        pl.col("risk_score").cast(pl.Float32),
    )
    merchants = merchant_rows.select(
        pl.lit(KIND["MERCHANT"], dtype=pl.UInt64).alias("kind"),
        pl.col("merchant_id").alias("id"),
        *(pl.lit(None, dtype=parties.schema[c]).alias(c) for c in parties.columns[2:9]),
        "high_risk",
        "cnp",
        pl.col("risk_score").cast(pl.Float32),
    )
    rows = with_counter(pl.concat([parties, merchants]), "kind", "id")
    r, m = pol.party_risk, pol.merchants

    def linear(row: dict[str, Any]) -> float:
        if row["kind"] == KIND["MERCHANT"]:
            return m.intercept + m.high_risk_mcc * row["high_risk"] + m.cnp * row["cnp"]
        x = {
            "cross_border": row["cross_border_propensity"],
            "digital": row["digital_affinity"],
            "credit_cards": float(row["credit_cards"]),
            "neg_log_tenure": -math.log(max(row["tenure_days"] / DAYS_PER_MONTH, 1.0) / r.tenure_ref_months),
            "single_person": float(row["party_type"] == "RETAIL" and row["household_size"] == 1),
        }
        lin = r.intercept + r.segment_effects.get(row["segment"], 0.0)
        for name, w in r.weights.items():
            lin += w * x[name]
        return lin

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        out = []
        for row in sample.iter_rows(named=True):
            w = gen.block(row["c0"], row["c1"], row["c2"], row["c3"])
            z = math.sqrt(-2.0 * math.log(u01(w[0]))) * math.cos(2.0 * math.pi * u01(w[1]))
            sigma = m.noise_sigma if row["kind"] == KIND["MERCHANT"] else r.noise_sigma
            out.append(_f32(1.0 / (1.0 + math.exp(-(linear(row) + sigma * z)))))
        n = sample.height
        return pl.DataFrame(
            {
                "risk_score": pl.Series(out, dtype=pl.Float32),
                **{q: [2 if q == "draws" else 1] * n for q in USAGE},
            }
        )

    return Replay("6A.risk", rows, ("risk_score",), rederive, usage(2))


def events(df: pl.DataFrame, kind: str, id_col: str, a: str, b: str) -> pl.DataFrame:
    """One 6A.role event per row: kind, id, its rule's two inputs as text (a, b) and the published role."""
    return df.select(
        pl.lit(KIND[kind], dtype=pl.UInt64).alias("kind"),
        pl.col(id_col).alias("id"),
        pl.col(a).cast(pl.String).alias("a"),
        pl.col(b).cast(pl.String).alias("b"),
        pl.col("role").cast(pl.String).alias("published"),
    )


def role(parties: pl.DataFrame, accounts: pl.DataFrame, devices: pl.DataFrame, pol: Roles) -> Replay:
    """Party rows: party_id, party_type, risk_tier, role (published). Account rows: account_id, owner_role,
    is_current, role. Device rows: device_id, operator, risky_link, role. The compared `outcome` is the role
    for accounts and devices; for a party it is whether the published role is reachable from the draw (the
    drawn role itself, CLEAN by a cap or a missing organiser, ORGANISER promoted from MULE)."""
    p = pol.propagation
    frames = [
        events(parties, "PARTY", "party_id", "party_type", "risk_tier"),
        events(accounts, "ACCOUNT", "account_id", "owner_role", "is_current"),
        events(devices, "DEVICE", "device_id", "operator", "risky_link"),
    ]
    rows = with_counter(pl.concat(frames), "kind", "id", 1).with_columns(pl.col("published").alias("outcome"))

    def drawn_role(u: float, ptype: str, tier: str) -> str:
        """The smallest role whose running total exceeds u·total (sums in role order, as a CDF is built);
        past the total by rounding, the last role with mass."""
        mix = [pol.role_mix[ptype][tier].get(name, 0.0) for name in PARTY_ROLES]
        total = 0.0
        for share in mix:
            total += share
        acc, last = 0.0, PARTY_ROLES[0]
        for name, share in zip(PARTY_ROLES, mix, strict=True):
            acc += share
            last = name if share > 0 else last
            if u * total < acc:
                return name
        return last

    def party_outcome(u: float, ptype: str, tier: str, published: str) -> str:
        drawn = drawn_role(u, ptype, tier)
        ok = published in (drawn, "CLEAN") or (published == "ORGANISER" and drawn == "MULE")
        return published if ok else drawn

    def account_outcome(u: float, owner: str, current: bool) -> str:
        if owner == "MULE" and current:
            return "MULE_ACCOUNT" if u < p.mule_current_account else "CLEAN"
        rate = p.synthetic_account if owner == "SYNTHETIC_ID" else p.clean_account
        return "HIGH_RISK" if u < rate else "CLEAN"

    def device_outcome(u: float, operator: bool, risky: bool) -> str:
        if operator:
            return "HIGH_RISK" if u < p.operator_high_risk else "SHARED_RISKY"
        return "HIGH_RISK" if u < (p.risky_party_device if risky else p.clean_device) else "CLEAN"

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        out = []
        for c0, c1, c2, c3, kind, a, b, published in sample.select(
            "c0", "c1", "c2", "c3", "kind", "a", "b", "published"
        ).iter_rows():
            u = u01(gen.block(c0, c1, c2, c3)[0])
            if kind == KIND["PARTY"]:
                out.append(party_outcome(u, a, b, published))
            elif kind == KIND["ACCOUNT"]:
                out.append(account_outcome(u, a, b == "true"))
            else:
                out.append(device_outcome(u, a == "true", b == "true"))
        return pl.DataFrame({"outcome": out, **{q: [1] * sample.height for q in USAGE}})

    return Replay("6A.role", rows, ("outcome",), rederive, usage(1))


def size_noise(gen: PhiloxBlocks, world: World) -> float:
    """m: exp(σz − σ²/2) clipped to size_clip, z by Box–Muller on u(w0), u(w1) of 6A.world ⟨0, 0, 0, 0⟩."""
    w = gen.block(0, 0, 0, 0)
    z = math.sqrt(-2.0 * math.log(u01(w[0]))) * math.cos(2.0 * math.pi * u01(w[1]))
    s = world.size_noise_sigma
    return min(max(math.exp(s * z - s * s / 2.0), world.size_clip[0]), world.size_clip[1])


def country_counts(
    weekly: list[float], m: float, ties: list[float], world: World
) -> tuple[int, int, list[int]]:
    """(N, floor, per-country counts): N = max(⌊W/(f·a)·m + ½⌋, floor·C), floor = max(min, ⌈share·N₀⌉); the
    rest of N ∝ W_c^exponent by Hamilton's method, larger remainders first, equal ones by the lower tie
    uniform, then by country order."""
    total = float(np.asarray(weekly).sum())  # summed as S1 sums (the sampler is what a replay re-derives)
    n_raw = math.floor(total / (world.flows_per_active_party_week * world.active_fraction) * m + 0.5)
    floor = max(world.min_parties_per_country, math.ceil(world.min_country_share * n_raw))
    n = max(n_raw, floor * len(weekly))
    w = [math.pow(x, world.country_exponent) for x in weekly]
    rest = n - floor * len(weekly)
    w_total = float(np.asarray(w).sum())
    quota = [rest * (x / w_total) for x in w]
    base = [math.floor(q) for q in quota]
    order = sorted(range(len(w)), key=lambda i: (-(quota[i] - base[i]), ties[i], i))
    for i in order[: rest - sum(base)]:
        base[i] += 1
    return n, floor, [floor + b for b in base]


def world(demand: pl.DataFrame, published: pl.DataFrame, pol: World) -> Replay:
    """6A.world: the size event ⟨0,0,0,0⟩ (two lanes) compares N; each tie event ⟨1, iso_num, 0, 0⟩ (one lane)
    compares its country's party count, recomputed from every country's tie (few rows: replayed in full).
    `demand`: country_iso, iso_num, weekly (countries with demand, sorted); `published`: country_iso, n."""
    rows = demand.join(published, on="country_iso", how="left").sort("country_iso")
    size = pl.DataFrame(
        {"c0": [0], "c1": [0], "n": [int(rows["n"].fill_null(0).sum())], "country_iso": [None]}
    )
    ties = rows.select(
        pl.lit(1).alias("c0"),
        pl.col("iso_num").alias("c1"),
        pl.col("n").fill_null(0).cast(pl.Int64),
        "country_iso",
    )
    events = with_counter(pl.concat([size.cast(ties.schema), ties]), "c0", "c1")

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        m = size_noise(gen, pol)
        tie = [u01(gen.block(1, int(c), 0, 0)[0]) for c in rows["iso_num"].to_list()]
        n, _, counts = country_counts([float(x) for x in rows["weekly"].to_list()], m, tie, pol)
        by_country = dict(zip(rows["country_iso"].to_list(), counts, strict=True))
        out = [n if c is None else by_country[c] for c in sample["country_iso"].to_list()]
        first = sample["c0"].to_numpy() == 0
        return pl.DataFrame(
            {
                "n": pl.Series(out, dtype=pl.Int64),
                "draws": np.where(first, 2, 1),
                "blocks": np.ones(sample.height, dtype=np.int64),
                "streams": np.ones(sample.height, dtype=np.int64),
            }
        )

    return Replay("6A.world", events, ("n",), rederive)
