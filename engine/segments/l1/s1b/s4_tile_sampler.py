"""1B.S4 — a per-country exact integer alias table over tiles (the shared encoder, mass_bits 32)."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.alias import decoded_masses, encode, integer_masses

MASS_BITS = 32


def country_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mass = integer_masses(np.ascontiguousarray(weights, dtype=np.float64), MASS_BITS)
    prob_q, alias = encode(mass, MASS_BITS)
    return mass, prob_q, alias


def run(ctx: StateContext) -> None:
    weights = ctx.read("tile_weights", seed_free=True).sort(["country_iso", "tile_id"])
    frames = []
    for (iso2,), grp in weights.group_by(["country_iso"], maintain_order=True):
        mass, prob_q, alias = country_table(grp["weight"].to_numpy())
        if int(mass.sum()) != 1 << MASS_BITS or not np.array_equal(
            decoded_masses(prob_q, alias, MASS_BITS), mass
        ):
            raise EngineError(
                "E_ALIAS_DECODE",
                f"{iso2}: decoded masses differ from encoded",
                where="tile_sampler",
                state=ctx.state,
            )
        frames.append(
            pl.DataFrame(
                {
                    "country_iso": iso2,
                    "member_index": pl.Series(np.arange(grp.height), dtype=pl.UInt32),
                    "tile_id": grp["tile_id"],
                    "mass": pl.Series(mass, dtype=pl.UInt64),
                    "prob_q": pl.Series(prob_q, dtype=pl.UInt32),
                    "alias": pl.Series(alias, dtype=pl.UInt32),
                }
            )
        )
    ctx.publish("tile_sampler", pl.concat(frames), seed_free=True)
