"""1A.S7 — split each merchant's N over {home} ∪ selected foreigns with a home-share floor (no RNG)."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.segments.l1.s1a.common import ceil_share, home_currency, home_floor
from engine.segments.l1.s1a.policy import Crossborder


def integerise(
    n: int, shares: np.ndarray, ranks: np.ndarray, h: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row 0 is home. Returns (final shares, n_sites, residual_rank)."""
    s = shares / shares.sum()
    if s[0] < h:
        foreign = s[1:]
        s = np.concatenate([[h], (1.0 - h) * foreign / foreign.sum()]) if foreign.size else np.array([1.0])
    base = np.ones(s.size, dtype=np.int64)
    base[0] = int(ceil_share(np.array([h]), np.array([n]))[0])
    rest = n - int(base.sum())
    want = np.maximum(0.0, n * s - base)
    if want.sum() <= 0.0:
        want = np.zeros(s.size)
        want[0] = 1.0
    quota = rest * want / want.sum()
    add = np.floor(quota).astype(np.int64)
    remainder = quota - add
    order = np.lexsort((ranks, -remainder))
    add[order[: rest - int(add.sum())]] += 1
    residual_rank = np.empty(s.size, dtype=np.int64)
    residual_rank[order] = np.arange(s.size)
    return s, base + add, residual_rank


def component_shares(members: pl.DataFrame) -> pl.Expr:
    """κ-weights renormalised over D component by component.

    AREA members of D share the currency area's mass, SPILL members the spill mass, each in proportion to
    its κ-weight; with no SPILL member the AREA members take everything. (A plain renormalisation over D
    would hand a foreign country outside the currency area a share of ~s/200, so it could never get more
    than its base site and the home floor would never bind.)
    """
    by = ["merchant_id", "component"]
    mass = pl.col("weight").sum().over(by)
    comp_total = pl.col("component_total")
    has_spill = (pl.col("component") == "SPILL").any().over("merchant_id")
    share = pl.col("weight") / mass * comp_total
    return (
        pl.when(has_spill)
        .then(share)
        .otherwise(pl.col("weight") / pl.col("weight").sum().over("merchant_id"))
    ).alias("d_share")


def run(ctx: StateContext) -> None:
    policy: Crossborder = ctx.policy("1A/crossborder.yaml")
    counts = ctx.read("s2_outlet_count").select("merchant_id", "n_outlets").sort("merchant_id")
    ccy = home_currency(ctx.sealed_table("merchant_universe"), ctx.sealed_table("ref_currencies"))
    weights = (
        ctx.read("ccy_country_weights", seed_free=True)
        .select("currency", "country_iso", "weight", "component")
        .with_columns(pl.col("weight").sum().over(["currency", "component"]).alias("component_total"))
    )
    chosen = (
        ctx.read("s6_foreign_set")
        .filter(pl.col("selected"))
        .select("merchant_id", "country_iso", "candidate_rank")
    )
    homes = ccy.select(
        "merchant_id",
        pl.col("home_country_iso").alias("country_iso"),
        pl.lit(0, pl.UInt16).alias("candidate_rank"),
    )
    members = (
        pl.concat([homes.join(chosen.select("merchant_id"), on="merchant_id", how="semi"), chosen])
        .join(ccy.select("merchant_id", "currency"), on="merchant_id")
        .join(weights, on=["currency", "country_iso"], how="left")
        .sort(["merchant_id", "candidate_rank"])
    )
    members = members.with_columns(component_shares(members))
    n_by_id = dict(zip(counts["merchant_id"].to_list(), counts["n_outlets"].to_list(), strict=True))
    floors = dict(
        zip(
            counts["merchant_id"].to_list(),
            home_floor(
                counts["n_outlets"].to_numpy(),
                [t.n_max for t in policy.home_floor],
                [t.h for t in policy.home_floor],
            ).tolist(),
            strict=True,
        )
    )
    parts = []
    for (mid,), grp in members.group_by(["merchant_id"], maintain_order=True):
        s, n_sites, rr = integerise(
            n_by_id[mid], grp["d_share"].to_numpy(), grp["candidate_rank"].to_numpy(), floors[mid]
        )
        parts.append(
            grp.select("merchant_id", "country_iso").with_columns(
                (pl.col("country_iso") == grp["country_iso"][0]).alias("is_home"),
                pl.Series("share", s),
                pl.Series("n_sites", n_sites, dtype=pl.UInt32),
                pl.Series("residual_rank", rr, dtype=pl.UInt16),
            )
        )
    home_only = homes.join(chosen.select("merchant_id"), on="merchant_id", how="anti").join(
        counts, on="merchant_id"
    )
    parts.append(
        home_only.select(
            "merchant_id",
            "country_iso",
            pl.lit(True).alias("is_home"),
            pl.lit(1.0).alias("share"),
            pl.col("n_outlets").cast(pl.UInt32).alias("n_sites"),
            pl.lit(0, pl.UInt16).alias("residual_rank"),
        )
    )
    out = pl.concat(parts).sort(["merchant_id", "country_iso"])
    totals = (
        out.group_by("merchant_id")
        .agg(pl.col("n_sites").sum().alias("total"))
        .join(counts, on="merchant_id", how="full")
    )
    if totals.filter(pl.col("total") != pl.col("n_outlets")).height or totals["total"].null_count():
        raise EngineError(
            "E_1A_COUNT_CONSERVATION", "Σ n_sites differs from N", where="s7_country_counts", state=ctx.state
        )
    ctx.publish("s7_country_counts", out)
