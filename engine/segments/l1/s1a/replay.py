"""1A's RNG families re-derived for validation's replay law (engine.core.validation), from layer1 1A.S1–S6.

Nothing here calls a 1A state or a numba kernel: lanes come from numpy's Philox (`PhiloxBlocks`, `Lanes`) and
each sampling rule of README §4 is written out again in plain Python, one draw event at a time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np
import polars as pl

from engine.core.validation import Lanes, PhiloxBlocks, Replay, one_block_each, u01, with_counter
from engine.segments.l1.s1a.policy import Crossborder, HurdleNb

# counter ⟨merchant_id, attempt t, block d, 0⟩ of the count families: the block index is word 2
COUNT_BLOCK_WORD = 2
POISSON_INVERSION_BELOW = 10.0

# PTRS needs log Γ(k + 1). Python's math.lgamma is CPython's own and differs from the C library's in the last
# bits; the C library's is the one compiled code gets, so the replay calls it too.
_LIBM = ctypes.CDLL(ctypes.util.find_library("m"))
_LIBM.lgamma.restype = ctypes.c_double
_LIBM.lgamma.argtypes = [ctypes.c_double]


def std_normal(lanes: Lanes) -> float:
    """Box–Muller, cos branch, on the next two lanes (radius from the first, angle from the second)."""
    u1, u2 = lanes.u(), lanes.u()
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def _marsaglia_tsang(lanes: Lanes, alpha: float) -> float:
    """Gamma(α ≥ 1): tries of (normal x, uniform u), 3 lanes each; d·v passes the squeeze or the log test."""
    d = alpha - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = std_normal(lanes)
        u = lanes.u()
        t = 1.0 + c * x
        if t <= 0.0:
            continue
        v = t * t * t
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2 or math.log(u) < 0.5 * x2 + d * (1.0 - v + math.log(v)):
            return d * v


def gamma(lanes: Lanes, alpha: float) -> float:
    """Gamma(α, 1); for α < 1 the boost Gamma(α + 1)·u^(1/α) in logs, u the lane after the tries."""
    if alpha >= 1.0:
        return _marsaglia_tsang(lanes, alpha)
    g = _marsaglia_tsang(lanes, alpha + 1.0)
    return math.exp(math.log(g) + math.log(lanes.u()) / alpha)


def poisson_inversion(u: float, lam: float, *, from_one: bool) -> int:
    """Smallest k ≥ k0 whose cumulative pmf from k0 reaches u·P(K ≥ k0) (k0 = 1 when zero-truncated), summing
    terms until one no longer changes the sum."""
    term = math.exp(-lam)
    k, target = 0, u
    if from_one:
        k, target, term = 1, u * -math.expm1(-lam), term * lam
    total = term
    while target > total:
        k += 1
        term *= lam / k
        if total + term == total:
            break
        total += term
    return k


def poisson_ptrs(lanes: Lanes, lam: float) -> int:
    """Hörmann's transformed rejection with squeeze (λ ≥ 10): tries of (u − ½, v), 2 lanes each."""
    slam, loglam = math.sqrt(lam), math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    log_inv_alpha = math.log(1.1239 + 1.1328 / (b - 3.4))
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = lanes.u() - 0.5
        v = lanes.u()
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + log_inv_alpha - math.log(a / (us * us) + b) <= -lam + k * loglam - _LIBM.lgamma(
            k + 1.0
        ):
            return k


def poisson(lanes: Lanes, lam: float) -> int:
    if lam < POISSON_INVERSION_BELOW:
        return poisson_inversion(lanes.u(), lam, from_one=False)
    return poisson_ptrs(lanes, lam)


def power_law_tail(u: float, lo: int, hi: int, alpha: float) -> int:
    """The chain size whose tail probability P(K ≥ k) = (k^−α − (hi+1)^−α) / (lo^−α − (hi+1)^−α) first
    falls to 1 − u or below, found by walking k upward from lo (not the kernel's closed-form inversion)."""
    top = (hi + 1.0) ** -alpha
    norm = lo**-alpha - top
    k = lo
    while k < hi and ((k + 1.0) ** -alpha - top) / norm > 1.0 - u:
        k += 1
    return k


def nb_event(
    gen: PhiloxBlocks, merchant_id: int, mu: float, phi: float, p_chain: float, policy: HurdleNb
) -> dict[str, int]:
    """1A.S2: attempt t on ⟨id, t, d, 0⟩ draws its component, then a chain size (one lane) or G ~ Gamma(φ),
    K ~ Poisson((μ/φ)·G); the first K ≥ 2 wins, or 2 after max_attempts."""
    draws = blocks = 0
    chain, n_max = policy.chain, policy.nb.n_max
    for t in range(policy.nb.max_attempts):
        lanes = Lanes(gen, (merchant_id, t, 0, 0), COUNT_BLOCK_WORD)
        tail = lanes.u() < p_chain
        if tail:
            k = power_law_tail(lanes.u(), chain.tail_min, n_max, chain.tail_alpha)
        else:
            k = poisson(lanes, mu / phi * gamma(lanes, phi))
        draws, blocks = draws + lanes.draws, blocks + lanes.blocks
        if k >= 2:
            return {"k": k, "attempts": t + 1, "draws": draws, "blocks": blocks, "tail": tail}
    return {"k": 2, "attempts": policy.nb.max_attempts, "draws": draws, "blocks": blocks, "tail": False}


def ztp_event(gen: PhiloxBlocks, merchant_id: int, lam: float, max_attempts: int) -> dict[str, int]:
    """1A.S4: K ≥ 1 by one truncated inversion (λ < 10), else Poisson redrawn on 0 per attempt, then 1."""
    if lam < POISSON_INVERSION_BELOW:
        lanes = Lanes(gen, (merchant_id, 0, 0, 0), COUNT_BLOCK_WORD)
        k = poisson_inversion(lanes.u(), lam, from_one=True)
        return {"k": k, "attempts": 1, "draws": lanes.draws, "blocks": lanes.blocks}
    draws = blocks = 0
    for t in range(max_attempts):
        lanes = Lanes(gen, (merchant_id, t, 0, 0), COUNT_BLOCK_WORD)
        k = poisson_ptrs(lanes, lam)
        draws, blocks = draws + lanes.draws, blocks + lanes.blocks
        if k >= 1:
            return {"k": k, "attempts": t + 1, "draws": draws, "blocks": blocks}
    return {"k": 1, "attempts": max_attempts, "draws": draws, "blocks": blocks}


def _w0_uniforms(gen: PhiloxBlocks, rows: pl.DataFrame) -> np.ndarray:
    """u(w0) of each row's block ⟨c0, c1, c2, c3⟩."""
    counters = rows.select("c0", "c1", "c2", "c3").iter_rows()
    return np.array([u01(gen.block(*c)[0]) for c in counters], dtype=np.float64)


def _one_lane_each(sample: pl.DataFrame, values: dict[str, np.ndarray]) -> pl.DataFrame:
    """Re-derived columns of a one-lane-per-event family, with that usage."""
    return pl.concat([pl.DataFrame(values), one_block_each(sample)], how="horizontal")


def _count_events(events: list[dict[str, int]], value: str) -> pl.DataFrame:
    """Re-derived columns of a count family: its value, attempts (one stream each), draws and blocks."""
    columns = {
        value: "k",
        "attempts": "attempts",
        "draws": "draws",
        "blocks": "blocks",
        "streams": "attempts",
    }
    return pl.DataFrame(
        {name: [e[field] for e in events] for name, field in columns.items()},
        schema={name: pl.Int64 for name in columns},
    )


def hurdle(s1: pl.DataFrame, universe: pl.DataFrame, policy: HurdleNb) -> Replay:
    """1A.S1: η = β0 + cnp·[CNP] + gdp_bucket[b] + sector[s], π = σ(η) overflow-safe, is_multi = u(w0) < π."""
    h = policy.hurdle
    rows = with_counter(
        s1.join(
            universe.select("merchant_id", (pl.col("channel") == "card_not_present").alias("_cnp")),
            on="merchant_id",
            how="left",
        ),
        "merchant_id",
    )

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        eta = (
            h.beta0
            + h.cnp * sample["_cnp"].to_numpy()
            + np.asarray(h.gdp_bucket, dtype=np.float64)[sample["gdp_bucket"].to_numpy()]
            + np.array([h.sector[s] for s in sample["sector"].to_list()], dtype=np.float64)
        )
        pi = np.empty_like(eta)
        up = eta >= 0
        pi[up] = 1.0 / (1.0 + np.exp(-eta[up]))
        e = np.exp(eta[~up])
        pi[~up] = e / (1.0 + e)
        return _one_lane_each(sample, {"logit": eta, "pi": pi, "is_multi": _w0_uniforms(gen, sample) < pi})

    return Replay("1A.hurdle", rows, ("logit", "pi", "is_multi"), rederive, one_block_each)


def nb(s2: pl.DataFrame, policy: HurdleNb) -> Replay:
    """1A.S2 for multi-site merchants; N = min(K, n_max), `clamped` when K > n_max, `component` the one
    accepted. No per-row draws column, so the family is replayed in full."""
    nbp = policy.nb

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        events = [
            nb_event(gen, mid, mu, phi, p_chain, policy)
            for mid, mu, phi, p_chain in sample.select("merchant_id", "mu", "phi", "p_chain").iter_rows()
        ]
        return _count_events(events, "k").with_columns(
            pl.min_horizontal("k", nbp.n_max).alias("n_outlets"),
            (pl.col("k") > nbp.n_max).alias("clamped"),
            pl.Series(
                "component", ["CHAIN_TAIL" if e["tail"] else "NB_BODY" for e in events], dtype=pl.String
            ),
        )

    rows = with_counter(s2.filter(pl.col("attempts") > 0), "merchant_id")
    return Replay("1A.nb", rows, ("n_outlets", "clamped", "component", "attempts", "blocks"), rederive)


def xb_open(s3_open: pl.DataFrame) -> Replay:
    """1A.S3: merchants not denied draw is_open = u(w0) < open_prob."""
    rows = with_counter(s3_open.filter(pl.col("deny_reason").is_null()), "merchant_id")

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        is_open = _w0_uniforms(gen, sample) < sample["open_prob"].to_numpy()
        return _one_lane_each(sample, {"is_open": is_open})

    return Replay("1A.xb_open", rows, ("is_open",), rederive, one_block_each)


def ztp(s4: pl.DataFrame, policy: Crossborder) -> Replay:
    """1A.S4 for open merchants. Neither draws nor blocks are published, so the family is replayed in full."""

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        events = [
            ztp_event(gen, mid, lam, policy.ztp.max_attempts)
            for mid, lam in sample.select("merchant_id", "lambda").iter_rows()
        ]
        return _count_events(events, "k_target")

    return Replay("1A.ztp", with_counter(s4, "merchant_id"), ("k_target", "attempts"), rederive)


def gumbel(s6: pl.DataFrame, iso_num: pl.DataFrame) -> Replay:
    """1A.S6: key = ln w − ln(−ln u(w0)) on ⟨merchant_id, iso_num, 0, 0⟩."""
    rows = with_counter(s6.join(iso_num, on="country_iso", how="left"), "merchant_id", "iso_num")

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        u = _w0_uniforms(gen, sample)
        key = np.log(sample["weight"].to_numpy()) - np.log(-np.log(u))
        return _one_lane_each(sample, {"gumbel_key": key})

    return Replay("1A.gumbel", rows, ("gumbel_key",), rederive, one_block_each)
