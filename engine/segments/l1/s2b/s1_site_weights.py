"""2B.S1 — a weight per site: flagships, long tails and even chains, from population and lognormal noise."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.blocks import block_uniforms
from engine.kernels.samplers import lognormal_mean1, normals_from_u
from engine.segments.l1.s2b.common import tier_values
from engine.segments.l1.s2b.policy import PROFILES, SiteWeights


def sites_with_pop(ctx: StateContext) -> pl.DataFrame:
    """Every site with its tz group and its tile's population, in (merchant_id, site_id) order."""
    loc = ctx.sealed_table("site_locations").select("site_id", "merchant_id", "legal_country_iso", "tile_id")
    tz = ctx.sealed_table("site_timezones").select("site_id", "tz_index")
    pop = ctx.sealed_table("tile_weights").select(
        pl.col("country_iso").alias("legal_country_iso"), "tile_id", "pop"
    )
    sites = loc.join(tz, on="site_id", how="left").join(pop, on=["legal_country_iso", "tile_id"], how="left")
    if sites["tz_index"].null_count():
        raise EngineError(
            "E_2B_COVERAGE",
            f"{sites['tz_index'].null_count()} sites have no time zone",
            where="site_timezones",
            fix="site_timezones must cover site_locations: rebuild 2A",
            state=ctx.state,
        )
    return sites.with_columns(pl.col("pop").fill_null(0.0)).sort("merchant_id", "site_id")


def draw_profiles(ctx: StateContext, policy: SiteWeights, mids: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Profile index (0 HUB, 1 HEAVY, 2 FLAT) per multi-site merchant by inverse CDF on u(w0)."""
    u = block_uniforms(ctx.family_key("site_profile"), mids)[:, 0]
    probs = np.array([[getattr(t, p) for p in PROFILES] for t in policy.profiles])
    cdf = np.cumsum(tier_values(n, [t.min_sites for t in policy.profiles], probs), axis=1)
    profile = np.minimum((u[:, None] >= cdf).sum(axis=1), len(PROFILES) - 1)
    ctx.record_draws("site_profile", (mids,), draws=1, blocks=1, value=u)
    return profile


def weights(sites: pl.DataFrame, policy: SiteWeights, profile_of: np.ndarray) -> pl.DataFrame:
    """raw = max(pop, 1)^e · exp(σZ − σ²/2); the HUB's largest raw (ties: lower site_id) × hub_boost;
    normalise; a top share above top1_cap is set to the cap and the rest rescaled to 1 − cap."""
    sigma = np.array([getattr(policy.sigma, p) for p in PROFILES])[profile_of]
    z = sites["noise_z"].to_numpy()
    raw = np.maximum(sites["pop"].to_numpy(), 1.0) ** policy.pop_exponent * lognormal_mean1(z, sigma)
    df = sites.with_columns(pl.Series("raw", raw), pl.Series("profile_ix", profile_of))
    top = pl.col("raw") == pl.col("raw").max().over("merchant_id")
    first_top = top & (pl.col("site_id") == pl.col("site_id").filter(top).min().over("merchant_id"))
    df = df.with_columns(flagship=first_top & (pl.col("profile_ix") == 0))
    df = df.with_columns(raw=pl.when("flagship").then(pl.col("raw") * policy.hub_boost).otherwise("raw"))
    df = df.with_columns(p=pl.col("raw") / pl.col("raw").sum().over("merchant_id"))
    p_top = pl.col("p").max().over("merchant_id")
    is_top = (pl.col("p") == p_top) & (
        pl.col("site_id") == pl.col("site_id").filter(pl.col("p") == p_top).min().over("merchant_id")
    )
    cap = policy.top1_cap
    capped = pl.when(is_top).then(pl.lit(cap)).otherwise(pl.col("p") * (1.0 - cap) / (1.0 - p_top))
    return df.with_columns(p_weight=pl.when(p_top > cap).then(capped).otherwise("p"))


def run(ctx: StateContext) -> None:
    policy: SiteWeights = ctx.policy("2B/site_weights.yaml")
    sites = sites_with_pop(ctx)
    sites = sites.with_columns(n_sites=pl.len().over("merchant_id").cast(pl.Int64))
    multi_m = (
        sites.filter(pl.col("n_sites") > 1)
        .group_by("merchant_id", maintain_order=True)
        .agg(pl.col("n_sites").first())
    )
    mids = multi_m["merchant_id"].to_numpy()
    profile = draw_profiles(ctx, policy, mids, multi_m["n_sites"].to_numpy())
    multi = sites.filter(pl.col("n_sites") > 1)
    u = block_uniforms(
        ctx.family_key("site_noise"), multi["merchant_id"].to_numpy(), multi["site_id"].to_numpy(), lanes=2
    )
    z = normals_from_u(u)
    ctx.record_draws(
        "site_noise",
        (multi["merchant_id"].to_numpy(), multi["site_id"].to_numpy()),
        draws=2,
        blocks=1,
        value=z,
    )
    multi = multi.with_columns(pl.Series("noise_z", z))
    profile_of = (
        multi.select("merchant_id")
        .join(
            pl.DataFrame({"merchant_id": mids, "pix": profile}),
            on="merchant_id",
            how="left",
            maintain_order="left",
        )["pix"]
        .to_numpy()
    )
    multi = weights(multi, policy, profile_of).with_columns(
        profile=pl.col("profile_ix").replace_strict(dict(enumerate(PROFILES)), return_dtype=pl.String)
    )
    single = sites.filter(pl.col("n_sites") == 1).with_columns(
        profile=pl.lit("SINGLE"),
        flagship=pl.lit(False),
        p_weight=pl.lit(1.0),
        noise_z=pl.lit(None, pl.Float64),
    )
    cols = ["site_id", "merchant_id", "tz_index", "profile", "flagship", "noise_z", "p_weight"]
    out = pl.concat([single.select(cols), multi.select(cols)]).sort("merchant_id", "site_id")
    check_weights(ctx, out)
    ctx.publish("s1_site_weights", out.with_columns(pl.col("tz_index").cast(pl.UInt16)))
    ctx.facts["profiles"] = dict(
        out.group_by("merchant_id")
        .agg(pl.col("profile").first())
        .group_by("profile")
        .len()
        .sort("profile")
        .iter_rows()
    )


def check_weights(ctx: StateContext, out: pl.DataFrame) -> None:
    """Σp = 1 ± 1e-12 per merchant; every p finite and > 0 (E_2B_WEIGHT_INVALID)."""
    p = out["p_weight"]
    sums = out.group_by("merchant_id").agg(pl.col("p_weight").sum())["p_weight"]
    if not (p.is_finite().all() and (p > 0).all() and ((sums - 1.0).abs() <= 1e-12).all()):
        raise EngineError(
            "E_2B_WEIGHT_INVALID",
            "a site weight is not finite and positive, or a merchant's weights do not sum to 1",
            where="s1_site_weights",
            fix="check site_weights.yaml (sigma, hub_boost, top1_cap) and report it if the policy is sane",
            state=ctx.state,
        )
