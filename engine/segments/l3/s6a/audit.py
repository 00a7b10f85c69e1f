"""6A.S7's measurements as pure functions over published frames (design layer2_3.md §3.9): foreign keys, caps,
the role invariants, odds ratios and mix distances. Each returns counts or (value, support), so a test can
feed a corrupted frame and see the exact finding."""

from __future__ import annotations

import math

import numpy as np
import polars as pl


def dense_ids(ids: pl.Series) -> bool:
    """Whether the ids are exactly 1..n in order (the engine's sequential entity ids)."""
    if not ids.dtype.is_integer() or ids.null_count() or ids.len() == 0:
        return False
    a = ids.to_numpy()
    return bool(a[0] == 1 and a[-1] == a.size and (np.diff(a.astype(np.int64)) == 1).all())


def orphans(child: pl.DataFrame, col: str, parent: pl.DataFrame, pcol: str) -> int:
    """Non-null keys of child.col with no row in parent.pcol (a range test when the parent's ids are 1..n)."""
    if dense_ids(parent[pcol]) and child[col].dtype.is_integer():
        keys = child[col].drop_nulls().to_numpy()
        return int(((keys < 1) | (keys > parent.height)).sum())
    keys = cast_keys(child.select(pl.col(col).alias("_k")), ["_k"]).drop_nulls()
    parents = cast_keys(parent.select(pl.col(pcol).alias("_k")), ["_k"]).unique()
    return keys.join(parents, on="_k", how="anti").height


def cast_keys(df: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
    """Categorical keys as text, so two tables' vocabularies never decide a join."""
    return df.with_columns(
        pl.col(c).cast(pl.String) for c in cols if isinstance(df.schema[c], (pl.Categorical, pl.Enum))
    )


def per_key_over(df: pl.DataFrame, key: list[str], cap: int | pl.Expr) -> int:
    """Keys holding more than `cap` rows (cap may be an expression over the key columns)."""
    counts = df.group_by(key).agg(pl.len().alias("n"))
    limit = cap if isinstance(cap, pl.Expr) else pl.lit(cap)
    return counts.filter(pl.col("n") > limit).height


def mismatched_counts(df: pl.DataFrame, key: str, declared: str, links: pl.DataFrame) -> int:
    """Rows whose declared count column differs from their number of link rows."""
    n = links.group_by(key).agg(pl.len().alias("_links"))
    j = df.select(key, declared).join(n, on=key, how="left")
    return j.filter(pl.col(declared).cast(pl.Int64) != pl.col("_links").fill_null(0)).height


def one_role_each(roles: pl.DataFrame, entities: pl.DataFrame, key: str) -> int:
    """Entities without exactly one role row, plus role rows of unknown entities."""
    if roles.height == entities.height and roles[key].equals(entities[key]):
        return 0  # the same ids in the same order (the common case, checked in O(n))
    per = roles.group_by(key).agg(pl.len().alias("n"))
    missing = entities.select(key).join(per, on=key, how="left").filter(pl.col("n").fill_null(0) != 1).height
    return missing + orphans(roles, key, entities, key)


def organiser_findings(party_roles: pl.DataFrame, parties: pl.DataFrame, max_per: int) -> dict[str, int]:
    """MULEs without a controller, controllers on non-mules, controllers that are not ORGANISERs of the mule's
    region, and organisers above max_per mules."""
    df = party_roles.select("party_id", pl.col("role").cast(pl.String), "controller_party_id").join(
        parties.select("party_id", pl.col("region").cast(pl.String)), on="party_id", how="left"
    )
    mule = pl.col("role") == "MULE"
    bosses = df.select(
        pl.col("party_id").alias("controller_party_id"),
        pl.col("role").alias("boss_role"),
        pl.col("region").alias("boss_region"),
    )
    mules = df.filter(mule).join(bosses, on="controller_party_id", how="left")
    load = mules.group_by("controller_party_id").agg(pl.len().alias("n"))
    return {
        "mule_without_controller": mules.filter(pl.col("controller_party_id").is_null()).height,
        "controller_on_non_mule": df.filter(~mule & pl.col("controller_party_id").is_not_null()).height,
        "controller_not_organiser_of_region": mules.filter(
            pl.col("controller_party_id").is_not_null()
            & (
                (pl.col("boss_role") != "ORGANISER").fill_null(True)
                | (pl.col("boss_region") != pl.col("region"))
            )
        ).height,
        "organiser_over_load": load.filter(pl.col("n") > max_per).height,
    }


def quantile_tiers(scores: pl.DataFrame, cutoffs: list[float]) -> pl.Series:
    """Tier codes recomputed by polars ranks: within each group, ordinal rank r (1-based, by score then id)
    of n is in tier #{c : r − 1 ≥ ⌈c·n⌉}. An independent path to roles.tiers_by_quantile."""
    df = scores.with_row_index("_row").sort("score", "id")
    df = df.with_columns(
        (pl.int_range(pl.len()).over("group")).alias("_pos"), pl.len().over("group").alias("_n")
    )
    tier = pl.lit(0, dtype=pl.Int64)
    for c in cutoffs:
        tier = tier + (pl.col("_pos") >= (pl.col("_n").cast(pl.Float64) * c).ceil()).cast(pl.Int64)
    return df.with_columns(tier.alias("tier")).sort("_row")["tier"]


def odds_ratio(exposed: np.ndarray, outcome: np.ndarray) -> tuple[float, int]:
    """(odds of outcome among exposed) / (among unexposed), with Haldane's +0.5 when a cell is empty; support
    = the smaller of the exposed count and the outcomes among them (what the estimate rests on)."""
    a = float((exposed & outcome).sum())
    b = float((exposed & ~outcome).sum())
    c = float((~exposed & outcome).sum())
    d = float((~exposed & ~outcome).sum())
    if min(a, b, c, d) == 0:
        a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
    return (a * d) / (b * c), int(min(exposed.sum(), (exposed & outcome).sum()))


def jsd(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence in bits (0 … 1) of two distributions over the same categories."""
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float((x[nz] * np.log2(x[nz] / m[nz])).sum())

    return 0.5 * kl(p) + 0.5 * kl(q)


def top_share(values: np.ndarray, share: float) -> float:
    """The share of the total held by the top ⌈share·n⌉ values."""
    if values.size == 0 or values.sum() <= 0:
        return float("nan")
    k = max(1, math.ceil(share * values.size))
    return float(np.sort(values)[::-1][:k].sum() / values.sum())
