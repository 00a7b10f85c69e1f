"""1B.S2 — population mass of each tile, normalised per country (one raster window read per country).

The background share goes only to populated tiles (density ≥ `populated_density_min` persons/km², layer1
amendment 5), so (for a threshold above 0) a tile with no people has weight 0. Such tiles are left out of
`tile_weights` (its contract keeps weights > 0): 1B.S4's alias table, built from these rows, can then never
draw them. A country with no person in any tile keeps all its tiles with uniform weights (basis UNIFORM).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import rasterio
from rasterio.windows import Window

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.segments.l1.s1b.policy import Tiles, TileWeights


def normalised(values: np.ndarray) -> np.ndarray:
    """Divide by the exactly-rounded sum (math.fsum) so Σ = 1 within 1e-12 even over 10^6 tiles."""
    return values / math.fsum(values.tolist())


def country_weights(pop: np.ndarray, area_km2: np.ndarray, policy: TileWeights) -> tuple[np.ndarray, str]:
    """`(1 − β)·pop^τ/Σ pop^τ + β·[populated]/n_populated` (populated: pop ≥ populated_density_min·area), so
    0 on tiles with no people; uniform when no tile has any. With no populated tile the background has
    nowhere to go: weights follow pop^τ alone."""
    mass = np.power(pop, policy.exponent)
    if not (mass > 0).any():
        return np.full(pop.size, 1.0 / pop.size), "UNIFORM"
    populated = pop >= policy.populated_density_min * area_km2
    if not populated.any():
        return normalised(mass), "POPULATION"
    beta = policy.background_share
    background = np.where(populated, beta / int(populated.sum()), 0.0)
    return normalised((1.0 - beta) * normalised(mass) + background), "POPULATION"


def window_values(src: rasterio.DatasetReader, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The raster values at (rows, cols), read as one window; nodata and negatives become 0."""
    r0, c0 = int(rows.min()), int(cols.min())
    window = Window(c0, r0, int(cols.max()) - c0 + 1, int(rows.max()) - r0 + 1)
    block = src.read(1, window=window, masked=True).astype(np.float64).filled(0.0)
    values = block[rows - r0, cols - c0]
    return np.where(np.isfinite(values) & (values > 0), values, 0.0)


def run(ctx: StateContext) -> None:
    tiles: Tiles = ctx.policy("1B/tiles.yaml")
    policy: TileWeights = ctx.policy("1B/tile_weights.yaml")
    index = ctx.read("tile_index", seed_free=True).select("country_iso", "tile_id", "row", "col", "area_km2")
    frames = []
    with rasterio.open(ctx.sealed.path(tiles.raster)) as src:
        for (iso2,), grp in index.group_by(["country_iso"], maintain_order=True):
            pop = window_values(
                src, grp["row"].to_numpy().astype(np.int64), grp["col"].to_numpy().astype(np.int64)
            )
            weight, basis = country_weights(pop, grp["area_km2"].to_numpy(), policy)
            if basis == "UNIFORM":
                ctx.count("uniform_basis_countries")
                ctx.warnings.append(f"{iso2}: no population in any tile; uniform weights")
            keep = weight > 0
            frames.append(
                grp.filter(pl.Series(keep))
                .select("country_iso", "tile_id")
                .with_columns(
                    pl.Series("pop", pop[keep]),
                    pl.Series("weight", weight[keep]),
                    pl.lit(basis).alias("basis"),
                )
            )
    out = pl.concat(frames).sort(["country_iso", "tile_id"])
    sums = out.group_by("country_iso").agg(pl.col("weight").sum())
    if (
        (sums["weight"] - 1.0).abs().max() > 1e-12
        or not (out["weight"].is_finite() & (out["weight"] > 0)).all()
        or sums.height != index["country_iso"].n_unique()
    ):
        raise EngineError(
            "E_1B_WEIGHT_INVALID",
            "tile weights do not sum to 1, are not finite and positive, or leave a country without a tile",
            where="tile_weights",
            state=ctx.state,
        )
    ctx.publish("tile_weights", out, seed_free=True)
