"""Small laws shared by 1A's states and the ingress: GDP buckets, sector lookup, tier lookups, the market
and currency tables, the top-k selection. Nothing here imports numba, so the states that draw nothing
(1A.S5, S7, S8, S9) start without it."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.policy_model import expand_codes
from engine.segments.l1.s1a.policy import SECTORS, Sectors


def gdp_bucket(gdp_pc: np.ndarray | pl.Series, breaks: list[float]) -> np.ndarray:
    """Bucket b = number of breaks ≤ GDP per capita (0..len(breaks))."""
    values = np.asarray(gdp_pc, dtype=np.float64)
    return np.searchsorted(np.asarray(breaks, dtype=np.float64), values, side="right").astype(np.uint16)


def sector_index(sector: pl.Series) -> np.ndarray:
    """Position of each sector name in SECTORS, to index per-sector coefficient arrays."""
    return sector.replace_strict({s: i for i, s in enumerate(SECTORS)}, return_dtype=pl.Int64).to_numpy()


def mcc_sector_table(sectors: Sectors) -> dict[int, str]:
    """Every MCC a sector names (list or range); MCCs not in the table belong to `other`."""
    return {
        code: name
        for name, sector in sectors.sectors.items()
        for code in expand_codes(sector.mccs, sector.ranges)
    }


def sector_of(mcc: pl.Series, sectors: Sectors) -> pl.Series:
    table = mcc_sector_table(sectors)
    return mcc.replace_strict(table, default="other", return_dtype=pl.String).alias("sector")


def tier_value(n: np.ndarray, n_mins: list[int], values: list[float]) -> np.ndarray:
    """Value of the last tier whose n_min ≤ n (tiers sorted by n_min)."""
    idx = np.searchsorted(np.asarray(n_mins), np.asarray(n), side="right") - 1
    return np.asarray(values, dtype=np.float64)[np.clip(idx, 0, len(values) - 1)]


def home_floor(n: np.ndarray, n_maxes: list[int | None], floors: list[float]) -> np.ndarray:
    """h(N): floor of the first tier whose n_max ≥ N (the last tier has no bound)."""
    bounds = np.asarray([m if m is not None else np.iinfo(np.int64).max for m in n_maxes], dtype=np.int64)
    idx = np.searchsorted(bounds, np.asarray(n, dtype=np.int64), side="left")
    return np.asarray(floors, dtype=np.float64)[idx]


def ceil_share(h: np.ndarray, n: np.ndarray) -> np.ndarray:
    """⌈h·N⌉ without float noise turning 0.7·10 = 7.000000000000001 into 8."""
    return np.ceil(np.round(np.asarray(h) * np.asarray(n), 9)).astype(np.int64)


def market_table(countries: pl.DataFrame, macro: pl.DataFrame) -> pl.DataFrame:
    """Eligible countries with market weight = share of world gdp_total among eligible countries."""
    table = countries.filter(pl.col("eligible")).join(macro.select("iso2", "gdp_usd"), on="iso2", how="inner")
    return table.with_columns((pl.col("gdp_usd") / pl.col("gdp_usd").sum()).alias("market_weight")).sort(
        "iso2"
    )


def home_currency(universe: pl.DataFrame, currencies: pl.DataFrame) -> pl.DataFrame:
    """merchant_id, home_country_iso and the home country's currency (the κ that 1A.S5–S7 weigh by)."""
    return universe.select("merchant_id", "home_country_iso").join(
        currencies.select(pl.col("iso2").alias("home_country_iso"), "currency"),
        on="home_country_iso",
        how="left",
    )


def select_top(cands: pl.DataFrame, k_cap: pl.DataFrame) -> pl.DataFrame:
    """Top k_cap keys per merchant (ties: lower candidate_rank); select_order 1..k_cap."""
    ordered = cands.join(k_cap, on="merchant_id", how="left").sort(
        ["merchant_id", "gumbel_key", "candidate_rank"], descending=[False, True, False]
    )
    ordered = ordered.with_columns(pl.int_range(1, pl.len() + 1).over("merchant_id").alias("_order"))
    chosen = pl.col("_order") <= pl.col("k_cap").fill_null(0)
    return ordered.with_columns(
        chosen.alias("selected"),
        pl.when(chosen).then(pl.col("_order")).otherwise(None).cast(pl.UInt16).alias("select_order"),
    ).sort(["merchant_id", "candidate_rank"])
