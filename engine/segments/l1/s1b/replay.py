"""1B's RNG families re-derived for validation's replay law (engine.core.validation), from layer1 1B.S5–S6.

Nothing here calls a 1B state or a numba kernel: lanes come from numpy's Philox (`PhiloxBlocks`) and the alias
decode and the jitter rule are written out again in plain Python.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import shapely

from engine.core.validation import PhiloxBlocks, Replay, one_block_each, u01, with_counter
from engine.segments.l1.s1b.geo import CountryShapes

_LO32 = 0xFFFFFFFF


def alias_pick(w: int, prob_q: list[int], alias: list[int]) -> int:
    """Column j = ⌊hi32(w)·n / 2^32⌋, kept if the coin lo32(w) < prob_q[j], else its alias (§2B.S2)."""
    j = ((w >> 32) * len(prob_q)) >> 32
    return j if (w & _LO32) < prob_q[j] else alias[j]


def site_tile(s5: pl.DataFrame, sampler: pl.DataFrame, iso_num: pl.DataFrame) -> Replay:
    """1B.S5: a site's tile is the alias decode of raw lane w0 of ⟨merchant_id, iso_num, site_order, 0⟩ on
    its country's table."""
    tables = {
        iso2: (grp["prob_q"].to_list(), grp["alias"].to_list(), grp["tile_id"].to_list())
        for (iso2,), grp in sampler.sort("country_iso", "member_index").group_by(["country_iso"])
    }
    rows = with_counter(
        s5.join(iso_num, left_on="legal_country_iso", right_on="country_iso", how="left"),
        "merchant_id",
        "iso_num",
        "site_order",
    )

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        tiles = []
        for iso2, *counter in sample.select("legal_country_iso", "c0", "c1", "c2", "c3").iter_rows():
            prob_q, alias, tile_ids = tables[iso2]
            tiles.append(tile_ids[alias_pick(gen.block(*counter)[0], prob_q, alias)])
        frame = pl.DataFrame({"tile_id": pl.Series(tiles, dtype=pl.UInt64)})
        return pl.concat([frame, one_block_each(sample)], how="horizontal")

    return Replay("1B.site_tile", rows, ("tile_id",), rederive, one_block_each)


def jitter(
    s6: pl.DataFrame,
    s5: pl.DataFrame,
    cells: pl.DataFrame,
    iso_num: pl.DataFrame,
    shapes: CountryShapes,
    max_attempts: int,
) -> Replay:
    """1B.S6: attempt t on ⟨merchant_id, iso_num, site_order, t⟩ proposes (lon_min + u(w0)·Δlon,
    lat_min + u(w1)·Δlat), accepted in an interior cell or inside the country; after max_attempts the point on
    the surface of cell ∩ country (FALLBACK). A longitude of 180 is written as −180."""
    sites = s5.select("site_id", "merchant_id", "legal_country_iso", "site_order", "tile_id")
    bounds = cells.select(
        pl.col("country_iso").alias("legal_country_iso"),
        "tile_id", "lon_min", "lat_min", "lon_max", "lat_max", "interior",
    )  # fmt: skip
    rows = with_counter(
        s6.join(sites, on="site_id")
        .join(bounds, on=["legal_country_iso", "tile_id"], how="left")
        .join(iso_num, left_on="legal_country_iso", right_on="country_iso", how="left"),
        "merchant_id",
        "iso_num",
        "site_order",
    )

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        counters = sample.select("c0", "c1", "c2").rows()
        return rederive_jitter(sample, gen, shapes, max_attempts, lambda i, t: (*counters[i], t))

    def usage(published: pl.DataFrame) -> pl.DataFrame:
        return pl.DataFrame(usage_of(published["attempts"].cast(pl.Int64).to_numpy()))

    return Replay("1B.jitter", rows, ("lon_deg", "lat_deg", "placement", "attempts"), rederive, usage)


def rederive_jitter(
    sample: pl.DataFrame,
    gen: PhiloxBlocks,
    shapes: CountryShapes,
    max_attempts: int,
    block_of: Callable[[int, int], tuple[int, int, int, int]],
) -> pl.DataFrame:
    """1B.S6's jitter replayed for rows with cell bounds, `interior` and `legal_country_iso`: attempt t of row
    i reads lanes w0, w1 of block `block_of(i, t)` (1B: ⟨merchant_id, iso_num, site_order, t⟩; 3B's edges:
    ⟨merchant_id, edge_seq, t, 0⟩)."""
    n = sample.height
    lon0, lat0 = sample["lon_min"].to_numpy(), sample["lat_min"].to_numpy()
    dlon, dlat = sample["lon_max"].to_numpy() - lon0, sample["lat_max"].to_numpy() - lat0
    interior = sample["interior"].to_numpy()
    country = sample["legal_country_iso"].to_numpy()
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    attempts = np.full(n, max_attempts, dtype=np.int64)
    pending = np.arange(n)
    for t in range(max_attempts):
        if pending.size == 0:
            break
        lanes = np.array([gen.block(*block_of(int(i), t))[:2] for i in pending], dtype=np.uint64).reshape(
            -1, 2
        )
        x = lon0[pending] + np.array([u01(int(w)) for w in lanes[:, 0]]) * dlon[pending]
        y = lat0[pending] + np.array([u01(int(w)) for w in lanes[:, 1]]) * dlat[pending]
        inside = interior[pending].copy()
        for iso2 in np.unique(country[pending]):
            mine = country[pending] == iso2
            inside[mine] |= shapely.contains_xy(shapes.union(iso2), x[mine], y[mine])
        done = pending[inside]
        lon[done], lat[done], attempts[done] = x[inside], y[inside], t + 1
        pending = pending[~inside]
    for i in pending:
        cell = shapely.box(lon0[i], lat0[i], lon0[i] + dlon[i], lat0[i] + dlat[i])
        point = shapely.point_on_surface(shapely.intersection(cell, shapes.union(country[i])))
        lon[i], lat[i] = shapely.get_x(point), shapely.get_y(point)
    placement = np.where(np.isin(np.arange(n), pending), "FALLBACK", "JITTER")
    return pl.DataFrame(
        {
            "lon_deg": np.where(lon >= 180.0, -180.0, lon),
            "lat_deg": lat,
            "placement": placement,
            "attempts": attempts,
            **usage_of(attempts),
        }
    )


def usage_of(attempts: np.ndarray) -> dict[str, np.ndarray]:
    """One block (two lanes read) per attempt, each attempt its own counter."""
    return {"draws": 2 * attempts, "blocks": attempts, "streams": attempts}
