"""Pydantic models of 1B's policy packs; their JSON Schemas under contracts/ are generated from these."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from engine.segments.l1.s1a.policy import Strict, Validation


class Tiles(Strict):
    raster: Annotated[str, Field(pattern=r"^ref_population_raster_[0-9p]+$")]
    predicate: Literal["center"]
    small_country_ladder: list[Literal["touched", "representative_point"]]


class TileWeights(Strict):
    basis: Literal["population"]
    exponent: Annotated[float, Field(gt=0.0)]
    background_share: Annotated[float, Field(ge=0.0, lt=1.0)]
    zero_mass: Literal["uniform"]


class Placement(Strict):
    jitter_max_attempts: Annotated[int, Field(ge=1, le=255)]
    fallback: Literal["point_on_surface"]
    city_min_population: Annotated[int, Field(ge=0)]


POLICIES = {"tiles": Tiles, "tile_weights": TileWeights, "placement": Placement, "validation": Validation}
