"""1B.S5 — each site independently draws its tile in proportion to tile weight (alias decode of lane w0)."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels import njit, prange
from engine.kernels.alias import decode_draw
from engine.kernels.blocks import block_raw_lane0


@njit(cache=True, nogil=True, parallel=True)
def _decode_all(raw, table_of, offsets, sizes, prob_q, alias, out):  # type: ignore[no-untyped-def]
    for i in prange(raw.shape[0]):
        t = table_of[i]
        lo = offsets[t]
        hi = lo + sizes[t]
        out[i] = lo + decode_draw(raw[i], prob_q[lo:hi], alias[lo:hi])


def draw_tiles(
    key: tuple[int, int], sites: pl.DataFrame, sampler: pl.DataFrame, iso_num: dict[str, int]
) -> np.ndarray:
    """Tile id per site; counter ⟨merchant_id, iso_num, site_order, 0⟩, raw lane w0 on the country's table."""
    sampler = sampler.sort(["country_iso", "member_index"])
    countries = sampler.group_by("country_iso", maintain_order=True).len()
    sizes = countries["len"].to_numpy().astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    position = {c: k for k, c in enumerate(countries["country_iso"].to_list())}
    table_of = np.array([position[c] for c in sites["legal_country_iso"].to_list()], dtype=np.int64)
    nums = np.array([iso_num[c] for c in sites["legal_country_iso"].to_list()], dtype=np.uint64)
    raw = block_raw_lane0(
        key, sites["merchant_id"].to_numpy(), nums, sites["site_order"].to_numpy().astype(np.uint64), 0
    )
    member = np.empty(raw.size, dtype=np.int64)
    _decode_all(
        raw, table_of, offsets, sizes, sampler["prob_q"].to_numpy(), sampler["alias"].to_numpy(), member
    )
    return sampler["tile_id"].to_numpy()[member]


def run(ctx: StateContext) -> None:
    sites = ctx.sealed_table("outlet_catalogue").select(
        "site_id", "merchant_id", "legal_country_iso", "site_order"
    )
    sites = sites.sort("site_id")
    iso_num = dict(ctx.sealed_table("ref_countries").select("iso2", "iso_num").iter_rows())
    sampler = ctx.read("tile_sampler", seed_free=True)
    tiles = draw_tiles(ctx.family_key("site_tile"), sites, sampler, iso_num)
    counter = (
        sites["merchant_id"].to_numpy(),
        sites["legal_country_iso"].replace_strict(iso_num, return_dtype=pl.UInt64).to_numpy(),
        sites["site_order"].to_numpy(),
    )
    ctx.record_draws("site_tile", counter, draws=1, blocks=1, value=tiles, entity=sites["site_id"].to_numpy())
    out = sites.with_columns(pl.Series("tile_id", tiles, dtype=pl.UInt64))
    owned = out.join(
        sampler.select(pl.col("country_iso").alias("legal_country_iso"), "tile_id"),
        on=["legal_country_iso", "tile_id"],
        how="semi",
    )
    if owned.height != out.height:
        raise EngineError(
            "E_1B_TILE_FK", "a site drew a tile outside its country", where="s5_site_tile", state=ctx.state
        )
    ctx.publish("s5_site_tile", out)
