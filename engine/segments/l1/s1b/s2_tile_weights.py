"""1B.S2 — population mass of each tile, normalised per country (one raster window read per country)."""

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


def country_weights(pop: np.ndarray, policy: TileWeights) -> tuple[np.ndarray, str]:
    mass = np.power(pop, policy.exponent)
    if not (mass > 0).any():
        return np.full(pop.size, 1.0 / pop.size), "UNIFORM"
    beta = policy.background_share
    return normalised((1.0 - beta) * normalised(mass) + beta / pop.size), "POPULATION"


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
    index = ctx.read("tile_index", seed_free=True).select("country_iso", "tile_id", "row", "col")
    frames = []
    with rasterio.open(ctx.sealed.path(tiles.raster)) as src:
        for (iso2,), grp in index.group_by(["country_iso"], maintain_order=True):
            pop = window_values(
                src, grp["row"].to_numpy().astype(np.int64), grp["col"].to_numpy().astype(np.int64)
            )
            weight, basis = country_weights(pop, policy)
            if basis == "UNIFORM":
                ctx.count("uniform_basis_countries")
                ctx.warnings.append(f"{iso2}: no population in any tile; uniform weights")
            frames.append(
                grp.select("country_iso", "tile_id").with_columns(
                    pl.Series("pop", pop), pl.Series("weight", weight), pl.lit(basis).alias("basis")
                )
            )
    out = pl.concat(frames).sort(["country_iso", "tile_id"])
    sums = out.group_by("country_iso").agg(pl.col("weight").sum())
    if (sums["weight"] - 1.0).abs().max() > 1e-12 or not (out["weight"] > 0).all():
        raise EngineError(
            "E_1B_WEIGHT_INVALID",
            "tile weights do not sum to 1 or are not positive",
            where="tile_weights",
            state=ctx.state,
        )
    ctx.publish("tile_weights", out, seed_free=True)
