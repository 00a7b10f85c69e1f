"""Pydantic model of the merchant-universe policy; its JSON Schema under contracts/ is generated from it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from engine.segments.l1.s1a.policy import SECTORS, Prob, Strict


class UniverseCountries(Strict):
    basis: Literal["gdp_total"]
    exponent: Annotated[float, Field(gt=0.0)]
    min_population: Annotated[int, Field(ge=0)]
    max_countries: Annotated[int, Field(ge=1)]
    max_share: Annotated[float, Field(gt=0.0, le=1.0)]
    min_merchants: Annotated[int, Field(ge=0)]


class MerchantUniverse(Strict):
    n_merchants: Annotated[int, Field(ge=1, le=10_000_000)]
    universe_seed: Annotated[int, Field(ge=0, lt=2**64)]
    id_scheme: Literal["hashed63"]
    countries: UniverseCountries
    sector_weights: dict[str, Annotated[float, Field(ge=0.0)]]
    mcc_zipf_s: Annotated[float, Field(ge=0.0)]
    p_cnp: dict[str, Prob]
    cnp_gdp_tilt: list[Annotated[float, Field(ge=0.0)]] = Field(min_length=5, max_length=5)

    @model_validator(mode="after")
    def _sector_tables(self) -> MerchantUniverse:
        for label, table in (("sector_weights", self.sector_weights), ("p_cnp", self.p_cnp)):
            if set(table) != set(SECTORS):
                raise ValueError(f"{label} must name every sector exactly once")
        if sum(self.sector_weights.values()) <= 0:
            raise ValueError("sector_weights must not all be zero")
        c = self.countries
        if c.max_share * c.max_countries < 1.0:
            raise ValueError("countries.max_share × max_countries must be ≥ 1 so the cap can be met")
        if c.min_merchants * c.max_countries > self.n_merchants:
            raise ValueError("countries.min_merchants × max_countries exceeds n_merchants")
        return self


POLICIES: dict[str, type[Strict]] = {"merchant_universe": MerchantUniverse}
