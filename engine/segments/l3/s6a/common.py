"""6A's shared vocabularies, the country → (sub-region, region) lookup, exact largest-remainder quotas and the
counter words of the 6A.party and 6A.account families, used by its states (S1–S3 here; S4–S7 may import them).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.group_sums import group_sums
from engine.segments.l3.s6a.policy import (
    ACCOUNT_TYPES,
    INSTRUMENT_TYPES,
    PARTY_TYPES,
    RAILS,
    REGIONS,
    SCHEMES,
    SEGMENTS,
    Population,
)

REGION = pl.Enum(list(REGIONS))
PARTY_TYPE = pl.Enum(list(PARTY_TYPES))
SEGMENT = pl.Enum(list(SEGMENTS))
ACCOUNT_TYPE = pl.Enum(list(ACCOUNT_TYPES))
TIER = pl.Enum(["STANDARD", "PREMIUM"])
INSTRUMENT_TYPE = pl.Enum(list(INSTRUMENT_TYPES))
SCHEME = pl.Enum(list(SCHEMES))
RAIL = pl.Enum(list(RAILS))
TOKEN_TYPE = pl.Enum(["NONE", "DEVICE", "NETWORK"])

# 6A.party ⟨party_id, attr, 0, d⟩: which attribute a block serves (design §3.1 RNG families)
PARTY_ACTIVITY, PARTY_TENURE, PARTY_SCORES, PARTY_HOUSEHOLD = 0, 1, 2, 3
# 6A.account ⟨party_id, type_code, k, 0⟩: type_code is the index in ACCOUNT_TYPES; k = 0 is the count block
# (its w1 also picks the party's issuer on CURRENT), k ≥ 1 the k-th account of that type
ACCOUNT_CODE = {t: i for i, t in enumerate(ACCOUNT_TYPES)}
# 6A.world ⟨0, 0, 0, 0⟩ is the size noise; ⟨1, iso_num, 0, 0⟩ breaks a country's largest-remainder tie
WORLD_SIZE, WORLD_TIE = 0, 1


def largest_remainder(total: int, weights: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Integer quotas summing to `total` in proportion to `weights` (Hamilton's method): each gets ⌊q_i⌋, then
    the largest fractional parts get one more; equal parts go by ascending `tiebreak`, then by position."""
    w = np.asarray(weights, dtype=np.float64)
    if total < 0 or w.size == 0 or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"need total ≥ 0 and non-negative weights with a positive sum, got {total}, {w}")
    quota = total * (w / w.sum())
    base = np.floor(quota).astype(np.int64)
    left = int(total - base.sum())
    frac = quota - base
    tie = np.zeros(w.size) if tiebreak is None else np.asarray(tiebreak, dtype=np.float64)
    order = np.lexsort((np.arange(w.size), tie, -frac))
    base[order[:left]] += 1
    return base


def country_regions(
    countries: list[str], ref_countries: pl.DataFrame, pop: Population, state: str
) -> pl.DataFrame:
    """country_iso, iso_num, subregion, region for `countries`, from the UN M49 sub-region and region_map.
    A country the reference lacks, or whose sub-region the map lacks, is E_6A_REGION_UNMAPPED."""
    ref = ref_countries.select(pl.col("iso2").alias("country_iso"), "iso_num", "subregion")
    rows = pl.DataFrame({"country_iso": sorted(countries)}).join(ref, on="country_iso", how="left")
    rows = rows.with_columns(
        pl.col("subregion")
        .replace_strict(pop.region_map, default=None, return_dtype=pl.String)
        .alias("region")
    )
    bad = rows.filter(pl.col("region").is_null())
    if bad.height:
        first = bad.row(0, named=True)
        raise EngineError(
            "E_6A_REGION_UNMAPPED",
            f"{bad.height} demand countries have no region, e.g. {first['country_iso']} "
            f"(UN M49 sub-region {first['subregion']!r})",
            where="6A/population.yaml region_map",
            fix="map every sub-region of a demand country to a region",
            state=state,
        )
    return rows


def demand_by_country(profile: pl.DataFrame) -> pl.DataFrame:
    """W_c: Σ baseline weekly_expected per legal country, countries with positive demand only, sorted. The
    sum sets the world's size (6A.S1) and is replayed by 6A.S7, so it is summed in a fixed order."""
    country = pl.col("legal_country_iso").cast(pl.String).alias("country_iso")
    sums = group_sums(profile, [country], ["weekly_expected"])
    return sums.rename({"weekly_expected": "weekly"}).filter(pl.col("weekly") > 0)


def enum_of(codes: np.ndarray, enum: pl.Enum) -> pl.Series:
    """An Enum column from category codes, by gathering from the categories (no per-row strings in Python)."""
    return pl.Series(enum.categories.to_list(), dtype=enum).gather(np.asarray(codes, dtype=np.int64))
