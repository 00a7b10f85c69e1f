"""Pydantic model of the merchant-universe policy; its JSON Schema under contracts/ is generated from it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from engine.segments.l1.s1a.policy import Exponent, FieldError, Prob, SectorName, Strict, all_sectors


class UniverseCountries(Strict):
    basis: Literal["gdp_total"]
    exponent: Exponent
    min_population: Annotated[int, Field(ge=0)]
    max_countries: Annotated[int, Field(ge=1)]
    max_share: Annotated[float, Field(gt=0.0, le=1.0)]
    min_merchants: Annotated[int, Field(ge=0)]


class MerchantUniverse(Strict):
    n_merchants: Annotated[int, Field(ge=1, le=10_000_000)]
    universe_seed: Annotated[int, Field(ge=0, lt=2**64)]
    id_scheme: Literal["hashed63"]
    countries: UniverseCountries
    sector_weights: dict[SectorName, Annotated[float, Field(ge=0.0)]]
    mcc_zipf_s: Annotated[float, Field(ge=0.0, le=10.0)]
    p_cnp: dict[SectorName, Prob]
    cnp_gdp_tilt: list[Annotated[float, Field(ge=0.0)]] = Field(min_length=5, max_length=5)

    @model_validator(mode="after")
    def _sector_tables(self) -> MerchantUniverse:
        all_sectors(self.sector_weights, "sector_weights")
        all_sectors(self.p_cnp, "p_cnp")
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


POLICIES: dict[str, type[Strict]] = {"merchant_universe": MerchantUniverse}
