"""5A.S3 — the expected arrivals per local-week hour: λ_base = weekly_expected × the row's shape."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.blocks import block_uniforms
from engine.segments.l2.s5a.common import PROFILE_KEY, WEEK, shape_id
from engine.segments.l2.s5a.policy import CONVENTIONS, DemandScale, Shapes


def variants(u: np.ndarray) -> np.ndarray:
    """⌊3u⌋: one style per merchant, shared by its zones."""
    return np.minimum((3.0 * u).astype(np.int64), 2)


def shape_ids(profile: pl.DataFrame, variant: np.ndarray, convention_of: dict[str, str]) -> np.ndarray:
    """shape_id of each row from its class, channel group, its country's weekend convention and variant."""
    conv = (
        profile["legal_country_iso"]
        .cast(pl.String)
        .replace_strict(convention_of, default="SAT_SUN")
        .replace_strict({c: i for i, c in enumerate(CONVENTIONS)}, return_dtype=pl.Int64)
        .to_numpy()
    )
    cls = profile["demand_class"].to_physical().to_numpy().astype(np.int64)
    chan = profile["channel_group"].to_physical().to_numpy().astype(np.int64)
    return np.asarray(shape_id(cls, chan, conv, variant), dtype=np.uint16)


def baseline(profile: pl.DataFrame, ids: np.ndarray, values: np.ndarray) -> pl.DataFrame:
    """168 rows per profile row (PK order): λ_base[k] = weekly_expected × shape[shape_id, k]."""
    n = profile.height
    lam = profile["weekly_expected"].to_numpy()[:, None] * values[ids.astype(np.int64)]
    keys = profile.select(PROFILE_KEY).select(pl.all().repeat_by(WEEK).explode())
    return keys.with_columns(
        pl.Series("shape_id", np.repeat(ids, WEEK)),
        pl.Series("week_bucket", np.tile(np.arange(WEEK, dtype=np.uint8), n)),
        pl.Series("lambda_base", lam.ravel()),
    )


def run(ctx: StateContext) -> None:
    shapes: Shapes = ctx.policy("5A/shapes.yaml")
    scale: DemandScale = ctx.policy("5A/demand_scale.yaml")
    profile = ctx.read("merchant_zone_profile")
    library = ctx.read("shape_library", seed_free=True).sort("shape_id", "week_bucket")
    values = library["value"].to_numpy().reshape(-1, WEEK)
    merchants = profile["merchant_id"].unique().sort().to_numpy()
    u = block_uniforms(ctx.family_key("shape_variant"), merchants)[:, 0]
    ctx.record_draws("shape_variant", (merchants, 0, 0, 0), draws=1, blocks=1, value=u)
    per_merchant = pl.DataFrame({"merchant_id": merchants, "variant": variants(u)})
    variant = (
        profile.select("merchant_id").join(per_merchant, on="merchant_id", how="left")["variant"].to_numpy()
    )
    ids = shape_ids(profile, variant, shapes.convention_of())
    out = baseline(profile, ids, values)
    sums = out["lambda_base"].to_numpy().reshape(-1, WEEK).sum(axis=1)
    weekly = profile["weekly_expected"].to_numpy()
    off = int((np.abs(sums - weekly) > 1e-9 * np.maximum(weekly, 1.0)).sum())
    if off:
        raise EngineError(
            "E_5A_WEEKLY_SUM",
            f"{off} rows' weekly sums drift",
            where="merchant_zone_baseline",
            state=ctx.state,
        )
    hits = int((weekly > scale.hard_cap_to_mean * profile["cap_reference"].to_numpy()).sum())
    if hits:
        raise EngineError(
            "E_5A_HARD_CAP",
            f"{hits} rows above the hard cap",
            where="merchant_zone_baseline",
            state=ctx.state,
        )
    ctx.facts["variants"] = {str(v): int((variants(u) == v).sum()) for v in range(3)}
    ctx.publish("merchant_zone_baseline", out)
