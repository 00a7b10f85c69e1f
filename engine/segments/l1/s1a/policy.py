"""Pydantic models of 1A's policy packs; their JSON Schemas under contracts/ are generated from these."""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Prob = Annotated[float, Field(ge=0.0, le=1.0)]
Iso2 = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
Mcc = Annotated[int, Field(ge=0, le=9999)]
SECTORS = (
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
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sector(Strict):
    mccs: list[Mcc] = Field(min_length=1)
    ranges: list[tuple[Mcc, Mcc]]


class Sectors(Strict):
    sectors: dict[str, Sector]

    @model_validator(mode="after")
    def _closed_and_disjoint(self) -> Sectors:
        if tuple(sorted(self.sectors)) != tuple(sorted(SECTORS)):
            raise ValueError(f"sectors must be exactly {sorted(SECTORS)}")
        owner: dict[int, str] = {}
        for name, sector in self.sectors.items():
            codes = set(sector.mccs)
            for lo, hi in sector.ranges:
                if lo > hi:
                    raise ValueError(f"sector {name}: range [{lo}, {hi}] is reversed")
                codes.update(range(lo, hi + 1))
            for code in codes:
                if owner.setdefault(code, name) != name:
                    raise ValueError(f"MCC {code} belongs to both {owner[code]} and {name}")
        return self


SectorFloats = dict[str, float]


class HurdleParams(Strict):
    beta0: float
    cnp: float
    gdp_bucket: list[float] = Field(min_length=5, max_length=5)
    sector: SectorFloats


class NbParams(Strict):
    log_mu0: float
    cnp: float
    gdp_slope: float
    sector: SectorFloats
    log_phi0: float
    phi_sector: dict[str, Annotated[float, Field(ge=-0.2, le=0.2)]]
    mu_clamp: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]]
    phi_clamp: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]]
    n_max: Annotated[int, Field(ge=2)]
    max_attempts: Annotated[int, Field(ge=1, le=1024)]


class HurdleNb(Strict):
    gdp_bucket_breaks_usd: list[Annotated[float, Field(gt=0)]] = Field(min_length=4, max_length=4)
    hurdle: HurdleParams
    nb: NbParams

    @model_validator(mode="after")
    def _sectors_complete(self) -> HurdleNb:
        breaks = self.gdp_bucket_breaks_usd
        if any(a >= b for a, b in itertools.pairwise(breaks)):
            raise ValueError("gdp_bucket_breaks_usd must be strictly increasing")
        for label, table in (
            ("hurdle.sector", self.hurdle.sector),
            ("nb.sector", self.nb.sector),
            ("nb.phi_sector", self.nb.phi_sector),
        ):
            if set(table) != set(SECTORS):
                raise ValueError(f"{label} must name every sector exactly once")
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
    theta0: float
    theta1: float
    theta2: float
    max_attempts: Annotated[int, Field(ge=1, le=1024)]


class Openness(Strict):
    by_gdp_bucket: list[Prob] = Field(min_length=5, max_length=5)
    cnp: float
    sector: SectorFloats


class FloorTier(Strict):
    n_max: Annotated[int, Field(ge=2)] | None
    h: Annotated[float, Field(gt=0.0, le=1.0)]


def _contiguous_from_two(tiers: list, label: str) -> None:
    mins = [t.n_min for t in tiers]
    if not mins or mins[0] != 2 or any(a >= b for a, b in itertools.pairwise(mins)):
        raise ValueError(f"{label} tiers must start at n_min 2 and increase strictly")


class Crossborder(Strict):
    deny_home: list[Iso2]
    deny_dest: list[Iso2]
    deny_cnp_mcc: list[Mcc]
    open_prob: list[OpenTier] = Field(min_length=1)
    cnp_open_multiplier: Annotated[float, Field(ge=0.0)]
    ladder: list[LadderTier] = Field(min_length=1)
    hubs: list[Iso2]
    max_candidates: Annotated[int, Field(ge=1)]
    ztp: Ztp
    openness: Openness
    home_floor: list[FloorTier] = Field(min_length=1)

    @model_validator(mode="after")
    def _tiers(self) -> Crossborder:
        _contiguous_from_two(self.open_prob, "open_prob")
        _contiguous_from_two(self.ladder, "ladder")
        maxes = [t.n_max for t in self.home_floor]
        if maxes[-1] is not None or any(m is None for m in maxes[:-1]):
            raise ValueError("home_floor: only the last tier may (and must) have n_max null")
        bounded = [m for m in maxes if m is not None]
        if any(a >= b for a, b in itertools.pairwise(bounded)):
            raise ValueError("home_floor tiers must increase strictly in n_max")
        return self


class Affinity(Strict):
    same_subregion: Annotated[float, Field(gt=0)]
    same_region: Annotated[float, Field(gt=0)]
    other: Annotated[float, Field(gt=0)]


class CurrencyWeights(Strict):
    market_basis: Literal["gdp_total"]
    spill_default: Annotated[float, Field(gt=0.0, lt=1.0)]
    spill_overrides: dict[Annotated[str, Field(pattern=r"^[A-Z]{3}$")], Annotated[float, Field(gt=0, lt=1)]]
    spill_exponent: Annotated[float, Field(gt=0.0)]
    affinity: Affinity
    hub_boost: Annotated[float, Field(gt=0.0)]


class Check(Strict):
    id: Annotated[str, Field(pattern=r"^[0-9A-Z]{2,3}\.R[0-9]{2}[a-z]?$")]
    metric: str
    lo: float | None
    hi: float | None
    severity: Literal["REQUIRED", "WARN"]
    min_support: Annotated[int, Field(ge=1)] | None = None


class ReplaySample(Strict):
    share: Annotated[float, Field(gt=0.0, le=1.0)]
    min_rows: Annotated[int, Field(ge=1)]


class Validation(Strict):
    min_support: Annotated[int, Field(ge=1)]
    replay_sample: ReplaySample | None = None
    checks: list[Check] = Field(min_length=1)


POLICIES: dict[str, type[Strict]] = {
    "sectors": Sectors,
    "hurdle_nb": HurdleNb,
    "crossborder": Crossborder,
    "currency_weights": CurrencyWeights,
    "validation": Validation,
}
