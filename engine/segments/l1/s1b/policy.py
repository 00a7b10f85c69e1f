"""Pydantic models of 1B's policy packs; their JSON Schemas under contracts/ are generated from these."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from engine.core.policy_model import Exponent, Strict, validation_model
from engine.refdata.registry import RASTER_RESOLUTIONS

# the population rasters the reference registry can build (one per resolution)
RasterName = Literal[tuple(f"ref_population_raster_{res}" for res in RASTER_RESOLUTIONS)]  # type: ignore[valid-type]


class Tiles(Strict):
    raster: RasterName
    predicate: Literal["center"]
    small_country_ladder: list[Literal["touched", "representative_point"]]


class TileWeights(Strict):
    basis: Literal["population"]
    exponent: Exponent
    background_share: Annotated[float, Field(ge=0.0, lt=1.0)]
    # persons/km²: the background share goes only to tiles at least this dense (0: every tile, as before
    # layer1 amendment 5)
    populated_density_min: Annotated[float, Field(ge=0.0, le=10_000.0)]
    zero_mass: Literal["uniform"]


class Placement(Strict):
    jitter_max_attempts: Annotated[int, Field(ge=1, le=255)]
    fallback: Literal["point_on_surface"]
    city_min_population: Annotated[int, Field(ge=0)]


# the metrics 1B.S9 computes (engine/segments/l1/s1b/s9_validation.py)
METRICS = (
    "inside_country_share",
    "fallback_share",
    "min_tile_chi2_p",
    "max_stripe_z",
    "populated_cells_used_ratio",
    "unique_coord_share",
    "median_city_km_excess",
    "p90_city_km_excess",
    "populated_tile_share",
    "uniform_basis_countries",
    "sparse_cell_site_ratio_lcb",
)

POLICIES = {
    "tiles": Tiles,
    "tile_weights": TileWeights,
    "placement": Placement,
    "validation": validation_model("1B", METRICS),
}
