"""1A.S4 — target number of foreign countries K ≥ 1 (zero-truncated Poisson) and its cap."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.count_models import run_count_kernel, ztp_counts
from engine.segments.l1.s1a.common import ceil_share, home_floor
from engine.segments.l1.s1a.policy import Crossborder


def ztp_lambda(n: np.ndarray, openness: np.ndarray, policy: Crossborder) -> np.ndarray:
    z = policy.ztp
    return np.exp(z.theta0 + z.theta1 * np.log(n.astype(np.float64)) + z.theta2 * openness)


def k_cap(k_target: np.ndarray, n_candidates: np.ndarray, n: np.ndarray, policy: Crossborder) -> np.ndarray:
    h = home_floor(n, [t.n_max for t in policy.home_floor], [t.h for t in policy.home_floor])
    room = n - ceil_share(h, n)
    return np.maximum(0, np.minimum.reduce([k_target, n_candidates - 1, room]))


def run(ctx: StateContext) -> None:
    policy: Crossborder = ctx.policy("1A/crossborder.yaml")
    opened = ctx.read("s3_open").filter(pl.col("is_open")).select("merchant_id", "openness")
    n_cand = ctx.read("s3_candidates").group_by("merchant_id").len("n_candidates")
    table = (
        opened.join(ctx.read("s2_outlet_count").select("merchant_id", "n_outlets"), on="merchant_id")
        .join(n_cand, on="merchant_id")
        .sort("merchant_id")
    )
    ids = table["merchant_id"].to_numpy()
    n = table["n_outlets"].to_numpy().astype(np.int64)
    lam = ztp_lambda(n, table["openness"].to_numpy(), policy)
    if not np.isfinite(lam).all():
        raise EngineError(
            "E_1A_NONFINITE_PARAM", "non-finite ZTP λ", where="crossborder.yaml", state=ctx.state
        )
    res = run_count_kernel(
        ztp_counts, ctx.family_key("ztp"), ids, lam, policy.ztp.max_attempts, family="1A.ztp", state=ctx.state
    )
    ctx.record_draws(
        "ztp", (ids,), draws=res["draws"], blocks=res["blocks"], streams=res["attempts"], value=res["k"]
    )
    ctx.count("ztp_exhausted", int(res["exhausted"].sum()))
    cap = k_cap(res["k"], table["n_candidates"].to_numpy().astype(np.int64), n, policy)
    out = pl.DataFrame(
        {
            "merchant_id": pl.Series(ids, dtype=pl.UInt64),
            "lambda": lam,
            "k_target": pl.Series(res["k"], dtype=pl.UInt16),
            "k_cap": pl.Series(cap, dtype=pl.UInt16),
            "attempts": pl.Series(res["attempts"], dtype=pl.UInt16),
        }
    )
    ctx.publish("s4_foreign_count", out)
