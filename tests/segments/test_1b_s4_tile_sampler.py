"""1B.S4: each country's alias table holds exactly 2^32 mass and gives each tile what its weight asks."""

from pathlib import Path

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.kernels.alias import decoded_masses
from engine.segments.l1.s1b.s4_tile_sampler import MASS_BITS, country_table


def test_tables_decode_exactly(tiny_world: Path) -> None:
    sampler = pl.read_parquet(next(tiny_world.glob("data/layer1/1B/tile_sampler/*/part-00000.parquet")))
    for (_iso2,), grp in sampler.group_by(["country_iso"]):
        mass = grp["mass"].to_numpy()
        assert int(mass.sum()) == 2**MASS_BITS and (mass >= 1).all()
        decoded = decoded_masses(grp["prob_q"].to_numpy(), grp["alias"].to_numpy(), MASS_BITS)
        assert np.array_equal(decoded, mass)


G = 2**MASS_BITS


def test_country_table_known_answers() -> None:
    """Worked by hand. 5:3:2 → G·(½, 0.3, 0.2) = (2147483648, 1288490188.8, 858993459.2): floors leave a
    deficit of 1, which goes to the largest fraction (.8). Walker–Vose with s = 3·mass against G: columns 1
    and 2 are small and alias to 0, whose column stays full (G, stored as the u32 cap 2^32 − 1)."""
    mass, prob_q, alias = country_table(np.array([5.0, 3.0, 2.0]))
    assert mass.tolist() == [2147483648, 1288490189, 858993459]
    assert prob_q.tolist() == [2**32 - 1, 3 * 1288490189, 3 * 858993459]
    assert alias.tolist() == [0, 0, 0]
    # a zero weight still gets mass 1, taken from the largest; its column is the coin 2/G with alias 0
    mass, prob_q, alias = country_table(np.array([1.0, 0.0]))
    assert mass.tolist() == [G - 1, 1]
    assert prob_q.tolist() == [2**32 - 1, 2]
    assert alias.tolist() == [0, 0]
    # three equal fractions (⅓ each): the deficit of 1 goes to the lowest index
    assert country_table(np.array([1.0, 1.0, 1.0]))[0].tolist() == [1431655766, 1431655765, 1431655765]


def _walker_masses(prob_q: np.ndarray, alias: np.ndarray) -> list[int]:
    """What a table gives each tile, in plain integers: column j (chosen with chance 1/n) keeps its coin
    prob_q[j] of G and hands the rest to alias[j]; a column aliased to itself keeps all of G."""
    n = len(prob_q)
    got = [0] * n
    for j in range(n):
        keep = G if int(alias[j]) == j else int(prob_q[j])
        got[j] += keep
        got[int(alias[j])] += G - keep
    assert all(g % n == 0 for g in got)
    return [g // n for g in got]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=60))  # every G·p ≥ 70: no zero is raised
def test_country_table_holds_the_weights_exactly(weights: list[float]) -> None:
    w = np.array(weights)
    mass, prob_q, alias = country_table(w)
    exact = w / w.sum() * G
    assert int(mass.sum()) == G
    assert (mass >= 1).all()
    assert (np.abs(mass - exact) < 1.0 + 1e-3).all()  # floor or floor + 1 of G·p (+ float summation noise)
    frac, up = exact - np.floor(exact), mass > np.floor(exact)
    if up.any() and not up.all():  # largest remainder: every unit handed out beats every fraction left
        assert frac[up].min() >= frac[~up].max() - 1e-3
    assert (alias < len(w)).all()
    assert _walker_masses(prob_q, alias) == mass.tolist()
