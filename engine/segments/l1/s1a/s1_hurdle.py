"""1A.S1 — the hurdle: the single authority on `is_multi` (one keyed draw per merchant)."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.blocks import block_uniforms
from engine.segments.l1.s1a.common import gdp_bucket, sector_index
from engine.segments.l1.s1a.policy import SECTORS, HurdleNb


def sigmoid(eta: np.ndarray) -> np.ndarray:
    """Overflow-safe logistic."""
    out = np.empty_like(eta)
    pos = eta >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-eta[pos]))
    e = np.exp(eta[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def merchant_features(universe: pl.DataFrame, macro: pl.DataFrame, policy: HurdleNb) -> pl.DataFrame:
    """merchant_id, sector, cnp, gdp_bucket — the covariates S1, S2 and S3 share."""
    joined = universe.join(
        macro.select("iso2", "gdp_pc_usd"), left_on="home_country_iso", right_on="iso2", how="left"
    )
    return joined.select(
        "merchant_id",
        "sector",
        (pl.col("channel") == "card_not_present").alias("cnp"),
        pl.Series("gdp_bucket", gdp_bucket(joined["gdp_pc_usd"], policy.gdp_bucket_breaks_usd)),
    ).sort("merchant_id")


def hurdle_logit(features: pl.DataFrame, policy: HurdleNb) -> np.ndarray:
    h = policy.hurdle
    sector_coef = np.array([h.sector[s] for s in SECTORS])[sector_index(features["sector"])]
    return (
        h.beta0
        + h.cnp * features["cnp"].to_numpy()
        + np.asarray(h.gdp_bucket)[features["gdp_bucket"].to_numpy()]
        + sector_coef
    )


def run(ctx: StateContext) -> None:
    policy: HurdleNb = ctx.policy("1A/hurdle_nb.yaml")
    features = merchant_features(
        ctx.sealed_table("merchant_universe"), ctx.sealed_table("ref_country_macro"), policy
    )
    eta = hurdle_logit(features, policy)
    pi = sigmoid(eta)
    if not (np.isfinite(eta).all() and np.isfinite(pi).all()):
        raise EngineError(
            "E_1A_NONFINITE_PARAM", "non-finite hurdle logit", where="hurdle_nb.yaml", state=ctx.state
        )
    ids = features["merchant_id"].to_numpy()
    u = block_uniforms(ctx.family_key("hurdle"), ids)[:, 0]
    ctx.record_draws("hurdle", (ids,), draws=1, blocks=1, value=u)
    out = features.select("merchant_id", "sector", "gdp_bucket").with_columns(
        pl.Series("logit", eta), pl.Series("pi", pi), pl.Series("is_multi", u < pi)
    )
    ctx.publish("s1_hurdle", out)
    ctx.facts["multi_share"] = round(float(out["is_multi"].mean() or 0.0), 6)
