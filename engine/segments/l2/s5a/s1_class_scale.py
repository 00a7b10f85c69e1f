"""5A.S1 — every merchant-zone-channel row's demand class and weekly expected volume (the only authority)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.blocks import block_uniforms
from engine.segments.l2.s5a.common import (
    CHANNEL,
    CLASS,
    PROFILE_KEY,
    ROLE,
    VIRTUAL_MODE,
    vocabulary,
    zone_code,
)
from engine.segments.l2.s5a.policy import DemandScale, MerchantClass

CHANNEL_OF = {"card_present": "CP", "card_not_present": "CNP"}


def libm_pow(base: np.ndarray, exponent: np.ndarray | float) -> np.ndarray:
    """base ** exponent through the C library's pow, element by element: numpy's vectorised power may use SIMD
    approximations that differ in the last bit, and validation replays these values bit for bit in Python."""
    exps = np.broadcast_to(np.asarray(exponent, dtype=np.float64), np.shape(base))
    return np.array([math.pow(b, e) for b, e in zip(np.asarray(base).tolist(), exps.tolist(), strict=True)])


def pareto_site(u: np.ndarray, median: np.ndarray, alpha: np.ndarray, clip: float) -> np.ndarray:
    """Per-site weekly volume: Pareto(α) with median `median` by inversion, clipped at clip × median."""
    x = median * libm_pow(np.full(u.shape, 2.0), -1.0 / alpha) * libm_pow(1.0 - u, -1.0 / alpha)
    return np.minimum(x, clip * median)


def soft_cap(weekly: np.ndarray, pol: DemandScale) -> tuple[np.ndarray, np.ndarray, float]:
    """Rows above C = soft_cap_to_mean·mean become min(C + slope·(w − C), ceiling·C), no renormalisation.
    Returns (capped volumes, which rows were capped, the pre-cap mean)."""
    mean = float(weekly.mean()) if weekly.size else 0.0
    cap = pol.soft_cap_to_mean * mean
    over = weekly > cap
    capped = np.where(
        over, np.minimum(cap + pol.soft_cap_slope * (weekly - cap), pol.soft_cap_ceiling * cap), weekly
    )
    return capped, over, mean


def scale_to_target(
    raw: np.ndarray, weekly_target: float, pol: DemandScale
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Soft-cap the raw volumes, then scale them so the capped total is the preset's weekly target.

    The cap is scale-invariant (C is a multiple of the mean), so this is the design's "scale by G, then cap"
    with G chosen after the cap: a chain-sized row that the cap trims no longer takes its trimmed volume out
    of the world (on default, one capped row out of 2,667 took 7.7 % of the target away and failed 5A.R06).
    Returns (weekly_expected, which rows were capped, the pre-cap mean in final units, the gain G)."""
    capped, over, mean_raw = soft_cap(raw, pol)
    total = float(capped.sum())
    gain = weekly_target / total if total > 0 else 0.0
    return capped * gain, over, mean_raw * gain, gain


def domain(alloc: pl.DataFrame, merchants: pl.DataFrame, virtual: pl.DataFrame) -> pl.DataFrame:
    """Each zone_alloc row crossed with its channel groups and the share of the zone's demand each holds:
    PHYSICAL → the merchant's own channel, VIRTUAL_ONLY → CNP, HYBRID → CP (1 − v) and CNP (v)."""
    rows = alloc.join(merchants, on="merchant_id", how="left").join(virtual, on="merchant_id", how="left")
    rows = rows.with_columns(
        pl.col("virtual_mode").fill_null("PHYSICAL"), pl.col("virtual_share").fill_null(0.0)
    )
    own = pl.col("channel").replace_strict(CHANNEL_OF, return_dtype=pl.String)
    cp = rows.with_columns(
        pl.lit("CP").alias("channel_group"),
        pl.when(pl.col("virtual_mode") == "HYBRID")
        .then(1.0 - pl.col("virtual_share"))
        .otherwise(1.0)
        .alias("share"),
    ).filter((pl.col("virtual_mode") == "HYBRID") | ((pl.col("virtual_mode") == "PHYSICAL") & (own == "CP")))
    cnp = rows.with_columns(
        pl.lit("CNP").alias("channel_group"),
        pl.when(pl.col("virtual_mode") == "HYBRID")
        .then(pl.col("virtual_share"))
        .otherwise(1.0)
        .alias("share"),
    ).filter((pl.col("virtual_mode") != "PHYSICAL") | (own == "CNP"))
    return pl.concat([cp, cnp]).with_columns(pl.col("channel_group").cast(CHANNEL))


def classify(rows: pl.DataFrame, pol: MerchantClass) -> pl.DataFrame:
    """Sector from the MCC, class from (sector, channel group), VIRTUAL_ONLY → its override class."""
    sector_of = pol.sector_of()
    rows = rows.with_columns(
        pl.col("mcc").replace_strict(sector_of, default=None, return_dtype=pl.String).alias("sector")
    )
    table = {(s, ch): cls for s, sec in pol.sectors.items() for ch, cls in sec.classes.items()}
    virtual = {s: pol.virtual_only_overrides.get(s, pol.virtual_only_class) for s in pol.sectors}
    by_channel = pl.concat_str("sector", pl.lit("|"), pl.col("channel_group").cast(pl.String))
    return rows.with_columns(
        pl.when(pl.col("virtual_mode") == "VIRTUAL_ONLY")
        .then(pl.col("sector").replace_strict(virtual, default=None, return_dtype=pl.String))
        .otherwise(by_channel.replace_strict({f"{s}|{c}": v for (s, c), v in table.items()}, default=None))
        .cast(CLASS)
        .alias("demand_class")
    )


def zone_roles(share: pl.Expr, pol: DemandScale) -> pl.Expr:
    return (
        pl.when(share >= pol.zone_roles.primary_min_share)
        .then(pl.lit("PRIMARY"))
        .when(share <= pol.zone_roles.tail_max_share)
        .then(pl.lit("TAIL"))
        .otherwise(pl.lit("SECONDARY"))
        .cast(ROLE)
    )


def weekly_raw(rows: pl.DataFrame, u: np.ndarray, pol: DemandScale) -> np.ndarray:
    """x · zone_site_count · role_mult · channel_mult · n_outlets^β · share."""
    cls = rows["demand_class"].cast(pl.String)
    median = cls.replace_strict({c: s.median_weekly_per_site for c, s in pol.classes.items()}).to_numpy()
    alpha = cls.replace_strict({c: s.pareto_alpha for c, s in pol.classes.items()}).to_numpy()
    x = pareto_site(u, median, alpha, pol.per_site_clip)
    role = rows["zone_role"].cast(pl.String).replace_strict(pol.zone_roles.multipliers).to_numpy()
    chan = rows["channel_group"].cast(pl.String).replace_strict(pol.channel_multipliers).to_numpy()
    brand = libm_pow(rows["n_outlets_total"].to_numpy().astype(np.float64), pol.brand_exponent)
    sites = rows["zone_site_count"].to_numpy().astype(np.float64)
    return x * sites * role * chan * brand * rows["share"].to_numpy()


def profile(ctx: StateContext, rows: pl.DataFrame, pol: DemandScale, days: int) -> pl.DataFrame:
    """Draw the per-site volumes, scale to the target and soft-cap; the profile in PK order."""
    ids = rows["merchant_id"].to_numpy()
    codes = rows["zone_code"].to_numpy()
    chan = rows["channel_group"].to_physical().to_numpy().astype(np.uint64)
    u = block_uniforms(ctx.family_key("scale"), ids, codes, chan)[:, 0]
    ctx.record_draws("scale", (ids, codes, chan, 0), draws=1, blocks=1, value=u)
    raw = weekly_raw(rows, u, pol)
    final, over, mean, gain = scale_to_target(raw, pol.target_arrivals * 7.0 / days, pol)
    ctx.count("soft_capped_rows", int(over.sum()))
    raw_total = float(raw.sum())
    ctx.facts["soft_cap"] = {
        "gain": gain,
        "cap_reference": mean,
        # the share of the raw volume the cap trimmed (the gain then spreads it over every row)
        "trimmed_share": 1.0 - float(final.sum()) / (gain * raw_total) if gain and raw_total else 0.0,
    }
    return rows.with_columns(
        pl.Series("weekly_raw", raw),
        pl.Series("weekly_expected", final),
        pl.Series("soft_capped", over),
        pl.lit(mean, dtype=pl.Float64).alias("cap_reference"),
    )


COLUMNS = [
    *PROFILE_KEY,
    "zone_code",
    "zone_rank",
    "mcc",
    "sector",
    "demand_class",
    "virtual_mode",
    "zone_role",
    "zone_site_count",
    "weekly_raw",
    "weekly_expected",
    "soft_capped",
    "cap_reference",
]


def run(ctx: StateContext) -> None:
    classes: MerchantClass = ctx.policy("5A/merchant_class.yaml")
    pol: DemandScale = ctx.policy("5A/demand_scale.yaml")
    days = ctx.policy("CFG/horizon.yaml").days
    alloc = ctx.sealed_table("zone_alloc").select(
        "merchant_id", "legal_country_iso", "tzid", "tz_index", "zone_site_count", "zone_share"
    )
    merchants = ctx.sealed_table("merchant_catalogue").select(
        "merchant_id", "mcc", "channel", "n_outlets_total"
    )
    virtual = ctx.sealed_table("virtual_classification").select(
        "merchant_id", "virtual_mode", "virtual_share"
    )
    iso_num = ctx.sealed_table("ref_countries").select(pl.col("iso2").alias("legal_country_iso"), "iso_num")
    rows = classify(domain(alloc, merchants, virtual), classes).join(
        iso_num, on="legal_country_iso", how="left"
    )
    rows = rows.with_columns(
        pl.Series("zone_code", zone_code(rows["iso_num"].to_numpy(), rows["tz_index"].to_numpy())),
        zone_roles(pl.col("zone_share"), pol).alias("zone_role"),
        pl.col("virtual_mode").cast(VIRTUAL_MODE),
        pl.col("legal_country_iso").cast(vocabulary(alloc["legal_country_iso"])),
        pl.col("tzid").cast(vocabulary(alloc["tzid"])),
        pl.col("sector").cast(vocabulary(pl.Series(sorted(classes.sectors)))),
    ).sort(PROFILE_KEY)
    rank = rows.select("merchant_id", "legal_country_iso", "tzid").unique(maintain_order=True)
    rank = rank.with_columns(
        pl.int_range(1, pl.len() + 1).over("merchant_id").cast(pl.UInt16).alias("zone_rank")
    )
    rows = rows.join(rank, on=["merchant_id", "legal_country_iso", "tzid"], how="left", maintain_order="left")
    hybrid = alloc.join(
        virtual.filter(pl.col("virtual_mode") == "HYBRID"), on="merchant_id", how="semi"
    ).height
    if rows.height != alloc.height + hybrid or rows["demand_class"].null_count():
        raise EngineError(
            "E_5A_DOMAIN_MISMATCH",
            f"{rows.height} profile rows for {alloc.height} zone rows and {hybrid} hybrid ones; "
            f"{rows['demand_class'].null_count()} rows without a class",
            where="merchant_zone_profile",
            state=ctx.state,
        )
    out = profile(ctx, rows, pol, days)
    weekly = out["weekly_expected"].to_numpy()
    if not np.isfinite(weekly).all() or (weekly < 0).any():
        raise EngineError(
            "E_5A_NUMERIC",
            "weekly_expected is not finite and ≥ 0",
            where="merchant_zone_profile",
            state=ctx.state,
        )
    ctx.facts["rows"] = out.height
    ctx.publish("merchant_zone_profile", out.select(COLUMNS))
