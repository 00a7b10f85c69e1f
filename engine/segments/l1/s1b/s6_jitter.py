"""1B.S6 — a uniform point inside the site's tile and its country: keyed retries, then a fixed fallback."""

from __future__ import annotations

import numpy as np
import polars as pl
import shapely

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.blocks import block_uniforms
from engine.segments.l1.s1b.geo import CountryShapes
from engine.segments.l1.s1b.policy import Placement


def jitter_points(
    key: tuple[int, int],
    words: tuple[np.ndarray | int, ...],
    attempt_word: int,
    cells: pl.DataFrame,
    country: shapely.Geometry,
    max_attempts: int,
) -> dict[str, np.ndarray]:
    """A uniform point in each row's cell (lon_min … lat_max, interior) and inside `country`; all pending rows
    try attempt t together on counter `words` with word `attempt_word` set to t (1B.S6, reused by 3B.S2's
    edges), then the fixed fallback point_on_surface(cell ∩ country)."""
    n = cells.height
    lon0, lat0 = cells["lon_min"].to_numpy(), cells["lat_min"].to_numpy()
    dlon = cells["lon_max"].to_numpy() - lon0
    dlat = cells["lat_max"].to_numpy() - lat0
    interior = cells["interior"].to_numpy()
    counter = [np.broadcast_to(np.asarray(w, dtype=np.uint64), (n,)) for w in words]
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    attempts = np.zeros(n, dtype=np.int64)
    pending = np.arange(n)
    for t in range(max_attempts):
        if pending.size == 0:
            break
        c = [np.uint64(t) if k == attempt_word else w[pending] for k, w in enumerate(counter)]
        u = block_uniforms(key, *c, lanes=2)
        x = lon0[pending] + u[:, 0] * dlon[pending]
        y = lat0[pending] + u[:, 1] * dlat[pending]
        attempts[pending] = t + 1
        ok = interior[pending] | shapely.contains_xy(country, x, y)
        lon[pending[ok]], lat[pending[ok]] = x[ok], y[ok]
        pending = pending[~ok]
    fallback = np.zeros(n, dtype=bool)
    if pending.size:
        boxes = shapely.box(
            lon0[pending], lat0[pending], lon0[pending] + dlon[pending], lat0[pending] + dlat[pending]
        )
        points = shapely.point_on_surface(shapely.intersection(boxes, country))
        lon[pending], lat[pending] = shapely.get_x(points), shapely.get_y(points)
        fallback[pending] = True
    lon = np.where(lon >= 180.0, -180.0, lon)
    return {"lon": lon, "lat": lat, "attempts": attempts, "fallback": fallback}


def jitter_country(
    key: tuple[int, int], sites: pl.DataFrame, country: shapely.Geometry, iso_num: int, max_attempts: int
) -> dict[str, np.ndarray]:
    """All pending sites of one country try attempt t together (⟨merchant_id, iso_num, site_order, t⟩)."""
    words = (sites["merchant_id"].to_numpy(), iso_num, sites["site_order"].to_numpy().astype(np.uint64), 0)
    return jitter_points(key, words, 3, sites, country, max_attempts)


def run(ctx: StateContext) -> None:
    policy: Placement = ctx.policy("1B/placement.yaml")
    shapes = CountryShapes(ctx.sealed_table("ref_country_polygons"))
    iso_num = dict(ctx.sealed_table("ref_countries").select("iso2", "iso_num").iter_rows())
    cells = ctx.read("tile_index", seed_free=True).select(
        pl.col("country_iso").alias("legal_country_iso"),
        "tile_id",
        "lon_min",
        "lat_min",
        "lon_max",
        "lat_max",
        "interior",
    )
    sites = (
        ctx.read("s5_site_tile").join(cells, on=["legal_country_iso", "tile_id"], how="left").sort("site_id")
    )
    key = ctx.family_key("jitter")
    frames = []
    for (iso2,), grp in sites.group_by(["legal_country_iso"], maintain_order=True):
        res = jitter_country(key, grp, shapes.union(iso2), iso_num[iso2], policy.jitter_max_attempts)
        frames.append(
            grp.select("site_id", "merchant_id").with_columns(
                pl.Series("lon_deg", res["lon"]),
                pl.Series("lat_deg", res["lat"]),
                pl.Series("attempts", res["attempts"], dtype=pl.UInt8),
                pl.Series("placement", np.where(res["fallback"], "FALLBACK", "JITTER")),
            )
        )
    out = pl.concat(frames).sort("site_id")
    if out["lon_deg"].is_nan().any() or out["lat_deg"].is_nan().any():
        raise EngineError(
            "E_1B_POINT_OUTSIDE", "a site has no point", where="s6_site_jitter", state=ctx.state
        )
    tries = out["attempts"].cast(pl.Int64).to_numpy()
    counter = (
        sites["merchant_id"].to_numpy(),  # sites and out are both in site_id order
        sites["legal_country_iso"].replace_strict(iso_num, return_dtype=pl.UInt64).to_numpy(),
        sites["site_order"].to_numpy(),
    )
    ctx.record_draws(
        "jitter",
        counter,
        draws=2 * tries,
        blocks=tries,
        streams=tries,
        value=out["lon_deg"].to_numpy(),
        entity=out["site_id"].to_numpy(),
    )
    ctx.count("fallback", int((out["placement"] == "FALLBACK").sum()))
    ctx.publish("s6_site_jitter", out.drop("merchant_id"))
