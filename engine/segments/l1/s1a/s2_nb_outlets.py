"""1A.S2 — total outlets N ≥ 2 for multi-site merchants; N = 1 for single-site.

Each attempt draws from a two-component count (layer1 amendment 1): with the sector's `p_chain` a discrete
power-law chain size on [tail_min, n_max], else the NB2 body (Gamma–Poisson); the first K ≥ 2 is accepted.
The NB2 body alone cannot make the chain tail real acquiring portfolios have (chains of 10^2–10^4 outlets).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.count_models import outlet_counts, run_count_kernel
from engine.segments.l1.s1a.common import sector_index
from engine.segments.l1.s1a.policy import SECTORS, HurdleNb
from engine.segments.l1.s1a.s1_hurdle import merchant_features


def nb_params(features: pl.DataFrame, policy: HurdleNb) -> tuple[np.ndarray, np.ndarray]:
    """(μ, φ) per merchant, clamped."""
    nb = policy.nb
    idx = sector_index(features["sector"])
    log_mu = (
        nb.log_mu0
        + nb.cnp * features["cnp"].to_numpy()
        + nb.gdp_slope * features["gdp_bucket"].to_numpy().astype(np.float64)
        + np.array([nb.sector[s] for s in SECTORS])[idx]
    )
    log_phi = nb.log_phi0 + np.array([nb.phi_sector[s] for s in SECTORS])[idx]
    mu = np.clip(np.exp(log_mu), *nb.mu_clamp)
    phi = np.clip(np.exp(log_phi), *nb.phi_clamp)
    return mu, phi


def chain_probability(features: pl.DataFrame, policy: HurdleNb) -> np.ndarray:
    """p_chain of each merchant's sector."""
    return np.array([policy.chain.p_chain[s] for s in SECTORS])[sector_index(features["sector"])]


def draw_outlets(
    key: tuple[int, int],
    ids: np.ndarray,
    mu: np.ndarray,
    phi: np.ndarray,
    p_chain: np.ndarray,
    policy: HurdleNb,
) -> dict[str, np.ndarray]:
    """K ≥ 2 per merchant with attempts, blocks, draws, `exhausted` and `tail` (the component accepted)."""
    c = policy.chain
    return run_count_kernel(
        outlet_counts,
        key,
        ids,
        mu,
        phi,
        np.ascontiguousarray(p_chain, dtype=np.float64),
        c.tail_min,
        policy.nb.n_max,
        c.tail_alpha,
        policy.nb.max_attempts,
        family="1A.nb",
        state="1A.S2",
        flags=("tail",),
    )


def run(ctx: StateContext) -> None:
    policy: HurdleNb = ctx.policy("1A/hurdle_nb.yaml")
    features = merchant_features(
        ctx.sealed_table("merchant_universe"), ctx.sealed_table("ref_country_macro"), policy
    )
    hurdle = ctx.read("s1_hurdle").select("merchant_id", "is_multi")
    features = features.join(hurdle, on="merchant_id", how="left", maintain_order="left")
    if features["is_multi"].null_count():
        raise EngineError(
            "E_1A_COVERAGE", "merchants without a hurdle row", where="s1_hurdle", state=ctx.state
        )
    mu, phi = nb_params(features, policy)
    if not (np.isfinite(mu).all() and np.isfinite(phi).all()):
        raise EngineError(
            "E_1A_NONFINITE_PARAM", "non-finite NB parameters", where="hurdle_nb.yaml", state=ctx.state
        )
    p_chain = chain_probability(features, policy)
    multi = features["is_multi"].to_numpy()
    ids = features["merchant_id"].to_numpy()
    n = np.ones(ids.size, dtype=np.int64)
    attempts = np.zeros(ids.size, dtype=np.int64)
    blocks = np.zeros(ids.size, dtype=np.int64)
    clamped = np.zeros(ids.size, dtype=bool)
    component = np.full(ids.size, "SINGLE", dtype=object)
    if multi.any():
        res = draw_outlets(ctx.family_key("nb"), ids[multi], mu[multi], phi[multi], p_chain[multi], policy)
        component[multi] = np.where(res["tail"], "CHAIN_TAIL", "NB_BODY")
        k = res["k"]
        clamped[multi] = k > policy.nb.n_max
        n[multi] = np.minimum(k, policy.nb.n_max)
        attempts[multi], blocks[multi] = res["attempts"], res["blocks"]
        ctx.count("nb_exhausted", int(res["exhausted"].sum()))
        ctx.count("nb_clamped", int(clamped.sum()))
        ctx.facts["chain_tail_merchants"] = int(res["tail"].sum())
        ctx.record_draws(
            "nb", (ids[multi],), draws=res["draws"], blocks=res["blocks"], streams=res["attempts"], value=k
        )
    out = pl.DataFrame(
        {
            "merchant_id": pl.Series(ids, dtype=pl.UInt64),
            "mu": mu,
            "phi": phi,
            "p_chain": p_chain,
            "component": pl.Series(component, dtype=pl.String),
            "n_outlets": pl.Series(n, dtype=pl.UInt32),
            "attempts": pl.Series(attempts, dtype=pl.UInt16),
            "blocks": pl.Series(blocks, dtype=pl.UInt32),
            "clamped": clamped,
        }
    )
    ctx.publish("s2_outlet_count", out)
    ctx.facts["outlets_total"] = int(n.sum())
