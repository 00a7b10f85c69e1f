"""Pydantic model of the merchant-universe policy; its JSON Schema under contracts/ is generated from it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from engine.core.policy_model import Exponent, FieldError, Mcc, MccCode, Prob, Strict, expand_codes, pair
from engine.segments.l1.s1a.policy import SectorName, all_sectors


class UniverseCountries(Strict):
    basis: Literal["gdp_total"]
    exponent: Exponent
    min_population: Annotated[int, Field(ge=0)]
    max_countries: Annotated[int, Field(ge=1)]
    max_share: Annotated[float, Field(gt=0.0, le=1.0)]
    min_merchants: Annotated[int, Field(ge=0)]


class MccChannel(Strict):
    """One group of MCCs sharing a card-not-present probability, and why (layer1 amendment 2)."""

    p: Prob
    why: Annotated[str, Field(min_length=1)]
    mccs: list[MccCode] = Field(min_length=1)
    ranges: list[pair(Mcc)]  # type: ignore[valid-type]


class MerchantUniverse(Strict):
    n_merchants: Annotated[int, Field(ge=1, le=10_000_000)]
    universe_seed: Annotated[int, Field(ge=0, lt=2**64)]
    id_scheme: Literal["hashed63"]
    countries: UniverseCountries
    sector_weights: dict[SectorName, Annotated[float, Field(ge=0.0)]]
    mcc_zipf_s: Annotated[float, Field(ge=0.0, le=10.0)]
    p_cnp: dict[SectorName, Prob]
    p_cnp_mcc: list[MccChannel]
    cnp_gdp_tilt: list[Annotated[float, Field(ge=0.0)]] = Field(min_length=5, max_length=5)

    @model_validator(mode="after")
    def _sector_tables(self) -> MerchantUniverse:
        all_sectors(self.sector_weights, "sector_weights")
        all_sectors(self.p_cnp, "p_cnp")
        seen: dict[int, int] = {}
        for i, group in enumerate(self.p_cnp_mcc):
            for code in sorted(set(expand_codes(group.mccs, group.ranges, "p_cnp_mcc", i))):
                if seen.setdefault(code, i) != i:
                    raise FieldError(
                        f"MCC {code} is in p_cnp_mcc groups {seen[code]} and {i}", "p_cnp_mcc", i
                    )
        if sum(self.sector_weights.values()) <= 0:
            raise FieldError("sector_weights must not all be zero", "sector_weights")
        c = self.countries
        if c.max_share * c.max_countries < 1.0:
            raise FieldError(
                "countries.max_share × max_countries must be ≥ 1 so the cap can be met",
                "countries",
                "max_share",
            )
        if c.min_merchants * c.max_countries > self.n_merchants:
            raise FieldError(
                "countries.min_merchants × max_countries exceeds n_merchants", "countries", "min_merchants"
            )
        return self

    def mcc_p_cnp(self) -> dict[int, float]:
        """MCC → its group's p_cnp; an MCC in no group takes its sector's p_cnp."""
        return {code: g.p for g in self.p_cnp_mcc for code in expand_codes(g.mccs, g.ranges)}


POLICIES: dict[str, type[Strict]] = {"merchant_universe": MerchantUniverse}
