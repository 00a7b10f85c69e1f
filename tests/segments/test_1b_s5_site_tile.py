"""1B.S5 on the tiny world: one tile per site, inside its country, replayable from the keyed lane."""

from pathlib import Path

import numpy as np
import polars as pl

from engine.core.rng import family_key
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
    iso_num = dict(countries.select("iso2", "iso_num").iter_rows())
    ph = tiny_plan(tiny_world)["1B"].parameter_hash
    sample = st.sort("site_id").head(200)
    again = draw_tiles(family_key(42, ph, "1B.site_tile"), sample, sampler, iso_num)
    assert np.array_equal(again, sample["tile_id"].to_numpy())
    shuffled = sample.reverse()
    assert np.array_equal(
        draw_tiles(family_key(42, ph, "1B.site_tile"), shuffled, sampler, iso_num), again[::-1]
    )
