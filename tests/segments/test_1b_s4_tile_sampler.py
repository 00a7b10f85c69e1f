"""1B.S4 on the tiny world: every country's table holds exactly 2^32 mass and decodes to it."""

from pathlib import Path

import numpy as np
import polars as pl

from engine.kernels.alias import decoded_masses
from engine.segments.l1.s1b.s4_tile_sampler import MASS_BITS, country_table


def test_tables_decode_exactly(tiny_world: Path) -> None:
    sampler = pl.read_parquet(next(tiny_world.glob("data/layer1/1B/tile_sampler/*/part-00000.parquet")))
    for (_iso2,), grp in sampler.group_by(["country_iso"]):
        mass = grp["mass"].to_numpy()
        assert int(mass.sum()) == 2**MASS_BITS and (mass >= 1).all()
        decoded = decoded_masses(grp["prob_q"].to_numpy(), grp["alias"].to_numpy(), MASS_BITS)
        assert np.array_equal(decoded, mass)


def test_country_table_is_deterministic() -> None:
    w = np.array([0.7, 0.2, 0.1])
    a, b = country_table(w), country_table(w.copy())
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
