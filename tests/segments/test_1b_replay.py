"""1B's replay re-derivations (engine/segments/l1/s1b/replay.py): the alias decode by known answers and
against the engine's kernel, and the jitter rule on a hand-made cell."""

from __future__ import annotations

import numpy as np
import polars as pl
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.validation import PhiloxBlocks, u01
from engine.kernels.alias import decode_draw, encode, integer_masses
from engine.segments.l1.s1b.geo import CountryShapes
from engine.segments.l1.s1b.replay import alias_pick, jitter


def test_alias_pick_known_answers() -> None:
    """Two columns: the high word picks the column, the low word's coin keeps it or takes its alias."""
    prob_q, alias = [1 << 31, (1 << 32) - 1], [1, 1]
    assert alias_pick((0 << 32) | 5, prob_q, alias) == 0
    assert alias_pick((0 << 32) | (1 << 31), prob_q, alias) == 1  # coin = prob_q: not below, so the alias
    assert alias_pick(((1 << 31) - 1) << 32, prob_q, alias) == 0  # hi32 just below half: column 0
    assert alias_pick((1 << 31) << 32, prob_q, alias) == 1  # hi32 at half: column 1
    assert alias_pick(((1 << 32) - 1) << 32 | ((1 << 32) - 2), prob_q, alias) == 1


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.001, 100.0), min_size=1, max_size=40), st.integers(0, 2**32))
def test_alias_pick_is_the_kernels_decode(weights: list[float], seed: int) -> None:
    prob_q, alias = encode(integer_masses(np.array(weights), 32), 32)
    words = np.random.default_rng(seed).integers(0, 2**64, 200, dtype=np.uint64)
    q, a = prob_q.tolist(), alias.tolist()
    assert [alias_pick(int(w), q, a) for w in words] == [decode_draw(w, prob_q, alias) for w in words]


def test_jitter_rule_on_a_half_covered_cell() -> None:
    """A 1° cell whose west half is the country: attempts run until a point falls west of lon 0.5."""
    country = shapely.box(0.0, 0.0, 0.5, 1.0)
    shapes = CountryShapes(pl.DataFrame({"iso2": ["XX"], "geometry": [shapely.to_wkb(country)]}))
    n = 40
    s5 = pl.DataFrame({
        "site_id": pl.Series(range(1, n + 1), dtype=pl.UInt64),
        "merchant_id": pl.Series([7] * n, dtype=pl.UInt64),
        "legal_country_iso": ["XX"] * n, "site_order": pl.Series(range(1, n + 1), dtype=pl.UInt32),
        "tile_id": pl.Series([3] * n, dtype=pl.UInt64),
    })  # fmt: skip
    cells = pl.DataFrame({
        "country_iso": ["XX"], "tile_id": pl.Series([3], dtype=pl.UInt64), "lon_min": [0.0], "lat_min": [0.0],
        "lon_max": [1.0], "lat_max": [1.0], "interior": [False],
    })  # fmt: skip
    iso_num = pl.DataFrame({"country_iso": ["XX"], "iso_num": pl.Series([999], dtype=pl.UInt16)})
    s6 = s5.select("site_id").with_columns(pl.lit(0).alias("attempts"))
    spec = jitter(s6, s5, cells, iso_num, shapes, max_attempts=3)
    gen = PhiloxBlocks((5, 6))
    out = spec.rederive(spec.rows, gen)
    for order, row in zip(range(1, n + 1), out.iter_rows(named=True), strict=True):
        lanes = [gen.block(7, 999, order, t)[:2] for t in range(3)]
        points = [(u01(w0), u01(w1)) for w0, w1 in lanes]
        first = next((t for t, (x, _) in enumerate(points) if x < 0.5), None)
        if first is None:
            assert (row["placement"], row["attempts"]) == ("FALLBACK", 3)
            assert row["lon_deg"] <= 0.5
        else:
            assert (row["placement"], row["attempts"]) == ("JITTER", first + 1)
            assert (row["lon_deg"], row["lat_deg"]) == points[first]
        assert (row["draws"], row["blocks"], row["streams"]) == (
            2 * row["attempts"],
            row["attempts"],
            row["attempts"],
        )
    assert set(out["placement"]) == {"JITTER", "FALLBACK"}  # P(fallback) = 1/8 per site: both occur
    assert set(out["attempts"]) == {1, 2, 3}
