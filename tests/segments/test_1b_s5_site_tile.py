"""1B.S5 on the tiny world: one tile per site, inside its country, re-derived from the keyed lane."""

from pathlib import Path

import polars as pl

from engine.core.rng import family_key
from engine.core.validation import PhiloxBlocks
from engine.segments.l1.s1b.replay import site_tile
from engine.segments.l1.s1b.s5_site_tile import draw_tiles
from tests.conftest import tiny_plan


def _part(root: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(next(root.glob(f"data/layer1/1B/{name}/**/part-00000.parquet")))


def test_every_site_one_tile_of_its_country_and_replay(tiny_world: Path) -> None:
    st = _part(tiny_world, "s5_site_tile")
    sampler = _part(tiny_world, "tile_sampler")
    outlets = pl.read_parquet(
        next(tiny_world.glob("data/layer1/1A/outlet_catalogue/seed=42/*/part-00000.parquet"))
    )
    assert st.height == outlets.height and st["site_id"].n_unique() == st.height
    owned = st.join(
        sampler.select(pl.col("country_iso").alias("legal_country_iso"), "tile_id"),
        on=["legal_country_iso", "tile_id"],
        how="semi",
    )
    assert owned.height == st.height
    countries = pl.read_parquet(
        next(tiny_world.glob("resources/ref_countries/build=*/ref_countries.parquet"))
    )
    key = family_key(42, tiny_plan(tiny_world)["1B"].parameter_hash, "1B.site_tile")
    # re-derived through an independent path: numpy's Philox and the alias rule written out again
    spec = site_tile(st, sampler, countries.select(pl.col("iso2").alias("country_iso"), "iso_num"))
    again = spec.rederive(spec.rows, PhiloxBlocks(key))
    assert again["tile_id"].to_list() == spec.rows["tile_id"].to_list()
    # counter-addressed: the state's sampler gives every site the same tile in any row order
    shuffled = st.sample(fraction=1.0, shuffle=True, seed=1)
    iso_num = dict(countries.select("iso2", "iso_num").iter_rows())
    assert draw_tiles(key, shuffled, sampler, iso_num).tolist() == shuffled["tile_id"].to_list()
