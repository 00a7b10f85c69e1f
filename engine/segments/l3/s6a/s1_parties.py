"""6A.S1 — the customer population (design §3.3): N from 5A's baseline demand, exact country, type and segment
quotas, real geography, households and each party's activity weight, tenure and profile scores.

RNG (design §3.1): `6A.world` ⟨0,0,0,0⟩ lanes w0, w1 → the size noise m (Box–Muller, cos branch);
⟨1, iso_num, 0, 0⟩ w0 → the country's tie-break in the largest-remainder share. `6A.party`
⟨party_id, attr, 0, d⟩: attr 0 w0 → activity (Pareto by inversion); attr 1 w0, w1 → tenure z; attr 2 d 0
(w0,w1) income, (w2,w3) digital, d 1 (w0,w1) cash, (w2,w3) cross-border z; attr 3 w0 → household size
(RETAIL heads only). Normals are Box–Muller's cos branch, with libm's log, cos, exp and pow (numba)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels import njit, prange
from engine.kernels.blocks import block_uniforms
from engine.kernels.philox import philox4x64_10, u01
from engine.kernels.samplers import normal_from_u, normals_from_u
from engine.segments.l2.s5a.common import vocabulary
from engine.segments.l3.s6a.common import (
    PARTY_ACTIVITY,
    PARTY_HOUSEHOLD,
    PARTY_SCORES,
    PARTY_TENURE,
    PARTY_TYPE,
    REGION,
    SEGMENT,
    WORLD_SIZE,
    WORLD_TIE,
    country_regions,
    demand_by_country,
    largest_remainder,
)
from engine.segments.l3.s6a.policy import DAYS_PER_MONTH, PARTY_TYPES, SCORES, SEGMENTS, Population, World

SCORE_COLUMNS = ("income_score", "digital_affinity", "cash_affinity", "cross_border_propensity")


def half_up(x: float) -> int:
    """round(x) with halves away from zero for x ≥ 0 (Python's round() goes to even)."""
    return math.floor(x + 0.5)


def world_size(weekly: float, world: World, m: float) -> int:
    """round(W / (f·a) · m) (design §3.3 step 1)."""
    return half_up(weekly / (world.flows_per_active_party_week * world.active_fraction) * m)


def size_noise(z: float, world: World) -> float:
    """The mean-one lognormal exp(σz − σ²/2), clipped to size_clip."""
    s = world.size_noise_sigma
    lo, hi = world.size_clip
    return min(max(math.exp(s * z - s * s / 2.0), lo), hi)


def country_counts(
    weekly: np.ndarray, n_raw: int, world: World, tiebreak: np.ndarray
) -> tuple[np.ndarray, int, int]:
    """Per-country parties: each gets the floor max(min_parties, ⌈share·N⌉), the rest ∝ W_c^exponent by
    largest remainder; N becomes Σ floors when the floors exceed it. Returns (counts, N, floor)."""
    floor = max(world.min_parties_per_country, math.ceil(world.min_country_share * n_raw))
    n = max(n_raw, floor * weekly.size)
    weights = np.array([math.pow(w, world.country_exponent) for w in weekly.tolist()])
    return floor + largest_remainder(n - floor * weekly.size, weights, tiebreak), n, floor


def cell_counts(countries: pl.DataFrame, counts: np.ndarray, pop: Population) -> pl.DataFrame:
    """One row per (country, party type, segment) with its exact quota, in party_id order."""
    rows = []
    for (iso, region, sub), n_c in zip(
        countries.select("country_iso", "region", "subregion").iter_rows(), counts.tolist(), strict=True
    ):
        mix = pop.type_mix[region]
        by_type = largest_remainder(n_c, np.array([mix.get(t, 0.0) for t in PARTY_TYPES]))
        for ptype, n_t in zip(PARTY_TYPES, by_type.tolist(), strict=True):
            if n_t == 0:
                continue
            segs = [s for s in SEGMENTS if s.startswith(ptype + "_")]
            seg_mix = pop.segment_mix[region][ptype]
            by_seg = largest_remainder(n_t, np.array([seg_mix.get(s, 0.0) for s in segs]))
            rows += [(iso, region, sub, ptype, s, k) for s, k in zip(segs, by_seg.tolist(), strict=True) if k]
    return pl.DataFrame(
        rows,
        schema=["country_iso", "region", "subregion", "party_type", "segment", "count"],
        orient="row",
    )


def geometric_cdf(mean: float, max_size: int) -> np.ndarray:
    """CDF of K on {0..max_size−1} with P(K = k) ∝ r^k, r solved (bisection, 200 steps) so 1 + E[K] = mean."""

    def mean_of(r: float) -> float:
        w = [r**k for k in range(max_size)]
        return 1.0 + sum(k * x for k, x in enumerate(w)) / sum(w)

    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if mean_of(mid) < mean else (lo, mid)
    w = np.array([lo**k for k in range(max_size)])
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    return cdf


@njit(cache=True, nogil=True, parallel=True)
def _party_draws(
    k0, k1, pid, seg, alpha, cap, factor, median, sigma, max_months, means, noise, weight, months, scores
):  # type: ignore[no-untyped-def]
    for i in prange(pid.shape[0]):
        p, s = pid[i], seg[i]
        w0, _, _, _ = philox4x64_10(p, np.uint64(0), np.uint64(0), np.uint64(0), k0, k1)
        weight[i] = min(math.pow(1.0 - u01(w0), -1.0 / alpha), cap) * factor[s]
        w0, w1, _, _ = philox4x64_10(p, np.uint64(1), np.uint64(0), np.uint64(0), k0, k1)
        z = normal_from_u(u01(w0), u01(w1))
        months[i] = min(max(median[s] * math.exp(sigma * z), 1.0), max_months)
        for d in range(2):
            a0, a1, a2, a3 = philox4x64_10(p, np.uint64(2), np.uint64(0), np.uint64(d), k0, k1)
            za = normal_from_u(u01(a0), u01(a1))
            zb = normal_from_u(u01(a2), u01(a3))
            scores[i, 2 * d] = min(max(means[s, 2 * d] + noise * za, 0.0), 1.0)
            scores[i, 2 * d + 1] = min(max(means[s, 2 * d + 1] + noise * zb, 0.0), 1.0)


@njit(cache=True, nogil=True)
def _households(k0, k1, pid, seg, block_end, retail, cdf, size, head):  # type: ignore[no-untyped-def]
    """Cut each country's RETAIL run (party order) into households of drawn sizes; the last is cut short at
    the run's end. BUSINESS parties are households of one. Only RETAIL heads draw."""
    i = 0
    n = pid.shape[0]
    while i < n:
        k = 1
        if retail[i]:
            w0, _, _, _ = philox4x64_10(pid[i], np.uint64(3), np.uint64(0), np.uint64(0), k0, k1)
            u = u01(w0)
            row = cdf[seg[i]]
            j = 0
            while j < row.shape[0] - 1 and u > row[j]:
                j += 1
            k = min(j + 1, block_end[i] - i)
        head[i] = True
        for m in range(i, i + k):
            size[m] = k
        i += k


def parties(ctx: StateContext, cells: pl.DataFrame, pop: Population, start: dt.date) -> pl.DataFrame:
    """Expand the quota cells to parties and draw their households, activity, tenure and scores."""
    n = int(cells["count"].sum())
    idx = np.repeat(np.arange(cells.height), cells["count"].to_numpy())
    out = cells.drop("count").select(pl.all().gather(idx))
    pid = np.arange(1, n + 1, dtype=np.uint64)
    seg = out["segment"].to_physical().to_numpy().astype(np.int64)
    key = ctx.family_key("party")
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    profiles = [pop.profiles[s] for s in SEGMENTS]
    weight, months = np.empty(n), np.empty(n)
    scores = np.empty((n, len(SCORES)))
    act = pop.activity
    _party_draws(
        k0, k1, pid, seg, act.pareto_alpha, act.cap_to_median * 2.0 ** (1.0 / act.pareto_alpha),
        np.array([p.activity_factor for p in profiles]), np.array([p.tenure_median_months for p in profiles]),
        pop.tenure.sigma, float(pop.tenure.max_months),
        np.array([[getattr(p, f) for f in SCORES] for p in profiles]), pop.score_noise_sigma,
        weight, months, scores,
    )  # fmt: skip
    ctx.record_draws("party", (pid, PARTY_ACTIVITY, 0, 0), draws=1, blocks=1, value=weight)
    ctx.record_draws("party", (pid, PARTY_TENURE, 0, 0), draws=2, blocks=1, value=months)
    ctx.record_draws("party", (pid, PARTY_SCORES, 0, 0), draws=8, blocks=2, value=scores[:, 0])
    retail = (out["party_type"] == "RETAIL").to_numpy()
    country = out["country_iso"].to_physical().to_numpy()
    change = np.flatnonzero(np.diff(country) != 0) + 1
    starts = np.concatenate([[0], change])
    n_retail = np.add.reduceat(retail.astype(np.int64), starts)
    block_end = np.repeat(starts + n_retail, np.diff(np.concatenate([starts, [n]])))
    cdf = np.ones((len(SEGMENTS), pop.households.max_size))
    for i, s in enumerate(SEGMENTS):
        if s in pop.households.mean_size:
            cdf[i] = geometric_cdf(pop.households.mean_size[s], pop.households.max_size)
    size, head = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    _households(k0, k1, pid, seg, block_end, retail, cdf, size, head)
    drew = head & retail
    ctx.record_draws("party", (pid[drew], PARTY_HOUSEHOLD, 0, 0), draws=1, blocks=1, value=size[drew])
    days = np.floor(months * DAYS_PER_MONTH + 0.5).astype(np.int64)
    onboarding = np.datetime64(start, "D") - days.astype("timedelta64[D]")
    return out.with_columns(
        pl.Series("party_id", pid),
        pl.Series("household_id", np.cumsum(head).astype(np.uint64)),
        pl.Series("household_size", size.astype(np.uint8)),
        pl.Series("activity_weight", weight.astype(np.float32)),
        pl.Series("onboarding_date", onboarding),
        *[pl.Series(c, scores[:, j].astype(np.float32)) for j, c in enumerate(SCORE_COLUMNS)],
    )


COLUMNS = [
    "party_id",
    "country_iso",
    "region",
    "subregion",
    "party_type",
    "segment",
    "household_id",
    "household_size",
    "activity_weight",
    "onboarding_date",
    *SCORE_COLUMNS,
]


def run(ctx: StateContext) -> None:
    world: World = ctx.policy("6A/world.yaml")
    pop: Population = ctx.policy("6A/population.yaml")
    start = ctx.policy("CFG/horizon.yaml").start().date()
    demand = demand_by_country(
        ctx.sealed_table("merchant_zone_profile").select("legal_country_iso", "weekly_expected")
    )
    countries = country_regions(
        demand["country_iso"].to_list(), ctx.sealed_table("ref_countries"), pop, ctx.state
    )
    key = ctx.family_key("world")
    u = block_uniforms(key, np.array([0], dtype=np.uint64), lanes=2)
    m = size_noise(float(normals_from_u(u)[0]), world)
    ctx.record_draws(
        "world", (np.array([WORLD_SIZE], dtype=np.uint64), 0, 0, 0), draws=2, blocks=1, value=np.array([m])
    )
    iso_num = countries["iso_num"].to_numpy().astype(np.uint64)
    tie = block_uniforms(key, np.full(iso_num.size, WORLD_TIE, dtype=np.uint64), iso_num)[:, 0]
    ctx.record_draws("world", (WORLD_TIE, iso_num, 0, 0), draws=1, blocks=1, value=tie)
    weekly = demand["weekly"].to_numpy()
    n_raw = world_size(float(weekly.sum()), world, m)
    counts, n, floor = country_counts(weekly, n_raw, world, tie)
    if int(counts.sum()) != n or int(counts.min()) < floor:
        raise EngineError(
            "E_6A_WORLD_SIZE",
            f"country counts sum to {int(counts.sum())} for N {n}, "
            f"smallest {int(counts.min())} < floor {floor}",
            where="parties",
            state=ctx.state,
        )
    cells = cell_counts(countries, counts, pop).with_columns(
        pl.col("country_iso").cast(vocabulary(countries["country_iso"])),
        pl.col("region").cast(REGION),
        pl.col("subregion").cast(vocabulary(countries["subregion"])),
        pl.col("party_type").cast(PARTY_TYPE),
        pl.col("segment").cast(SEGMENT),
    )
    out = parties(ctx, cells, pop, start).select(COLUMNS)
    ctx.facts["world"] = {
        "weekly_expected": float(weekly.sum()),
        "size_noise": m,
        "n_formula": n_raw,
        "floor": floor,
        "n": n,
        "countries": len(counts),
    }
    ctx.facts["parties_per_region"] = dict(
        out.group_by(pl.col("region").cast(pl.String)).len().sort("region").iter_rows()
    )
    ctx.facts["households"] = int(out["household_id"].max())
    with ctx.stream("parties") as sink:
        sink.write(out)
