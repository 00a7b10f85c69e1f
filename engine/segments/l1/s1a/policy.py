"""Pydantic models of 1A's policy packs; their JSON Schemas under contracts/ are generated from these.

Built from engine/core/policy_model.py (`Strict`: unknown keys, a bool or float where an integer is due, a
string where a number is due, and .inf/.nan are refused). Bounds on the linear-predictor coefficients are
plausibility bounds: past them a world is nonsense, not merely unusual.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from engine.core.policy_model import (
    Coef,
    Currency,
    Exponent,
    FieldError,
    Iso2,
    Mcc,
    MccCode,
    Positive,
    Prob,
    Strict,
    expand_codes,
    ordered,
    pair,
    validation_model,
)

SectorName = Literal[
    "grocery",
    "restaurants",
    "fuel",
    "apparel",
    "retail_general",
    "home_electronics",
    "digital_goods",
    "travel",
    "health",
    "services",
    "entertainment",
    "transport",
    "utilities_telecom",
    "other",
]
SECTORS: tuple[str, ...] = get_args(SectorName)


def all_sectors(table: Mapping[str, object], *path: str | int) -> None:
    """A closed sector table (unknown names are refused by its key type) must also miss none."""
    missing = [s for s in SECTORS if s not in table]
    if missing:
        raise FieldError(f"missing sector(s) {', '.join(missing)}: the table must name every sector", *path)


class Sector(Strict):
    mccs: list[MccCode] = Field(min_length=1)
    ranges: list[pair(Mcc)]  # type: ignore[valid-type]


class Sectors(Strict):
    sectors: dict[SectorName, Sector]

    @model_validator(mode="after")
    def _closed_and_disjoint(self) -> Sectors:
        all_sectors(self.sectors, "sectors")
        owner: dict[int, str] = {}
        for name, sector in self.sectors.items():
            for code in sorted(set(expand_codes(sector.mccs, sector.ranges, "sectors", name))):
                if owner.setdefault(code, name) != name:
                    raise FieldError(f"MCC {code} belongs to both {owner[code]} and {name}", "sectors", name)
        return self


SectorCoefs = dict[SectorName, Coef]


class HurdleParams(Strict):
    beta0: Coef
    cnp: Coef
    gdp_bucket: list[Coef] = Field(min_length=5, max_length=5)
    sector: SectorCoefs


class NbParams(Strict):
    log_mu0: Coef
    cnp: Coef
    gdp_slope: Coef
    sector: SectorCoefs
    log_phi0: Coef
    phi_sector: dict[SectorName, Annotated[float, Field(ge=-0.2, le=0.2)]]
    mu_clamp: pair(Positive)  # type: ignore[valid-type]
    phi_clamp: pair(Positive)  # type: ignore[valid-type]
    n_max: Annotated[int, Field(ge=2, le=100_000)]
    max_attempts: Annotated[int, Field(ge=1, le=1024)]

    @model_validator(mode="after")
    def _clamps(self) -> NbParams:
        ordered(self.mu_clamp, "mu_clamp")
        ordered(self.phi_clamp, "phi_clamp")
        if self.mu_clamp[1] > self.n_max:
            raise FieldError(f"mu_clamp upper {self.mu_clamp[1]} exceeds n_max {self.n_max}", "mu_clamp")
        return self


class ChainTail(Strict):
    """The second component of the outlet count: with probability p_chain (by sector) an attempt draws from
    a discrete power law on [tail_min, n_max] instead of the NB2 body (layer1 amendment 1)."""

    p_chain: dict[SectorName, Prob]
    tail_alpha: Annotated[float, Field(gt=0.0, le=5.0)]
    tail_min: Annotated[int, Field(ge=2)]


class HurdleNb(Strict):
    gdp_bucket_breaks_usd: list[Positive] = Field(min_length=4, max_length=4)
    hurdle: HurdleParams
    nb: NbParams
    chain: ChainTail

    @model_validator(mode="after")
    def _sectors_complete(self) -> HurdleNb:
        if any(a >= b for a, b in itertools.pairwise(self.gdp_bucket_breaks_usd)):
            raise FieldError("gdp_bucket_breaks_usd must be strictly increasing", "gdp_bucket_breaks_usd")
        all_sectors(self.hurdle.sector, "hurdle", "sector")
        all_sectors(self.nb.sector, "nb", "sector")
        all_sectors(self.nb.phi_sector, "nb", "phi_sector")
        all_sectors(self.chain.p_chain, "chain", "p_chain")
        if self.chain.tail_min > self.nb.n_max:
            raise FieldError(
                f"chain.tail_min {self.chain.tail_min} exceeds nb.n_max {self.nb.n_max}", "chain", "tail_min"
            )
        return self


class OpenTier(Strict):
    n_min: Annotated[int, Field(ge=2)]
    p: Prob


class LadderTier(Strict):
    n_min: Annotated[int, Field(ge=2)]
    subregion_top: Annotated[int, Field(ge=0)]
    region_top: Annotated[int, Field(ge=0)]
    global_top: Annotated[int, Field(ge=0)]
    hubs: Annotated[int, Field(ge=0)]


class Ztp(Strict):
    theta0: Coef
    theta1: Coef
    theta2: Coef
    max_attempts: Annotated[int, Field(ge=1, le=1024)]


# openness = clamp01(by_gdp_bucket[b] + cnp + sector delta): a delta beyond ±1 only ever saturates
Delta = Annotated[float, Field(ge=-1.0, le=1.0)]


class Openness(Strict):
    by_gdp_bucket: list[Prob] = Field(min_length=5, max_length=5)
    cnp: Delta
    sector: dict[SectorName, Delta]


class FloorTier(Strict):
    n_max: Annotated[int, Field(ge=2)] | None
    h: Annotated[float, Field(gt=0.0, le=1.0)]


def _contiguous_from_two(tiers: list[OpenTier] | list[LadderTier], label: str) -> None:
    mins = [t.n_min for t in tiers]
    if mins[0] != 2 or any(a >= b for a, b in itertools.pairwise(mins)):
        raise FieldError(f"{label} tiers must start at n_min 2 and increase strictly", label)


class Crossborder(Strict):
    deny_home: list[Iso2]
    deny_dest: list[Iso2]
    deny_cnp_mcc: list[MccCode]
    open_prob: list[OpenTier] = Field(min_length=1)
    cnp_open_multiplier: Annotated[float, Field(ge=0.0)]
    ladder: list[LadderTier] = Field(min_length=1)
    hubs: list[Iso2]
    max_candidates: Annotated[int, Field(ge=1, le=1000)]
    ztp: Ztp
    openness: Openness
    home_floor: list[FloorTier] = Field(min_length=1)

    @model_validator(mode="after")
    def _tiers(self) -> Crossborder:
        _contiguous_from_two(self.open_prob, "open_prob")
        _contiguous_from_two(self.ladder, "ladder")
        maxes = [t.n_max for t in self.home_floor]
        if maxes[-1] is not None or any(m is None for m in maxes[:-1]):
            raise FieldError("home_floor: only the last tier may (and must) have n_max null", "home_floor")
        bounded = [m for m in maxes if m is not None]
        if any(a >= b for a, b in itertools.pairwise(bounded)):
            raise FieldError("home_floor tiers must increase strictly in n_max", "home_floor")
        return self


class Affinity(Strict):
    same_subregion: Positive
    same_region: Positive
    other: Positive


class CurrencyWeights(Strict):
    market_basis: Literal["gdp_total"]
    spill_default: Annotated[float, Field(gt=0.0, lt=1.0)]
    spill_overrides: dict[Currency, Annotated[float, Field(gt=0, lt=1)]]
    spill_exponent: Exponent
    affinity: Affinity
    hub_boost: Positive


# the metrics 1A.S9 computes (engine/segments/l1/s1a/s9_validation.py)
METRICS = (
    "single_site_share",
    "median_n_multi",
    "gini_outlets",
    "top10pct_outlet_share",
    "top1pct_outlet_share",
    "multi_country_share",
    "foreign_outlet_share",
    "foreign_share_top_decile_minus_bottom_half",
    "median_candidates_open",
    "spearman_candidates_selected",
    "nb_rejection_zscore",
    "clamped_or_exhausted_share",
    "top1_home_share",
    "small_home_share",
    "top10_home_share",
    "cnp_share",
    "top5_mcc_share",
    "sectors_present",
)

POLICIES: dict[str, type[Strict]] = {
    "sectors": Sectors,
    "hurdle_nb": HurdleNb,
    "crossborder": Crossborder,
    "currency_weights": CurrencyWeights,
    "validation": validation_model("1A", METRICS),
}
