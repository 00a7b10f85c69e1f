"""1A.S2 — total outlets N ≥ 2 for multi-site merchants by NB2 (Gamma–Poisson); N = 1 for single-site."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.count_models import nb_outlets, run_count_kernel
from engine.segments.l1.s1a.policy import SECTORS, HurdleNb
from engine.segments.l1.s1a.s1_hurdle import merchant_features


def nb_params(features: pl.DataFrame, policy: HurdleNb) -> tuple[np.ndarray, np.ndarray]:
    """(μ, φ) per merchant, clamped."""
    nb = policy.nb
    sector_idx = features["sector"].replace_strict(
        {s: i for i, s in enumerate(SECTORS)}, return_dtype=pl.Int64
    )
    idx = sector_idx.to_numpy()
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


def draw_outlets(
    key: tuple[int, int], ids: np.ndarray, mu: np.ndarray, phi: np.ndarray, max_attempts: int
) -> dict[str, np.ndarray]:
    return run_count_kernel(nb_outlets, key, ids, mu, phi, max_attempts)


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
    multi = features["is_multi"].to_numpy()
    ids = features["merchant_id"].to_numpy()
    n = np.ones(ids.size, dtype=np.int64)
    attempts = np.zeros(ids.size, dtype=np.int64)
    blocks = np.zeros(ids.size, dtype=np.int64)
    clamped = np.zeros(ids.size, dtype=bool)
    if multi.any():
        res = draw_outlets(ctx.family_key("nb"), ids[multi], mu[multi], phi[multi], policy.nb.max_attempts)
        k = res["k"]
        clamped[multi] = k > policy.nb.n_max
        n[multi] = np.minimum(k, policy.nb.n_max)
        attempts[multi], blocks[multi] = res["attempts"], res["blocks"]
        ctx.count("nb_exhausted", int(res["exhausted"].sum()))
        ctx.count("nb_clamped", int(clamped.sum()))
        ctx.record_draws(
            "nb", (ids[multi],), draws=res["draws"], blocks=res["blocks"], streams=res["attempts"], value=k
        )
    out = pl.DataFrame(
        {
            "merchant_id": pl.Series(ids, dtype=pl.UInt64),
            "mu": mu,
            "phi": phi,
            "n_outlets": pl.Series(n, dtype=pl.UInt32),
            "attempts": pl.Series(attempts, dtype=pl.UInt16),
            "blocks": pl.Series(blocks, dtype=pl.UInt32),
            "clamped": clamped,
        }
    )
    ctx.publish("s2_outlet_count", out)
    ctx.facts["outlets_total"] = int(n.sum())
