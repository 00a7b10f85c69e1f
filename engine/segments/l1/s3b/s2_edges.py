"""3B.S2 — each virtual or hybrid merchant's CDN edges: how many, in which countries (leaning toward the
settlement), in which 1B tile, at which point (1B.S6's jitter), in which zone, with which weight."""

from __future__ import annotations

import numpy as np
import polars as pl
import shapely

from engine.core.errors import EngineError
from engine.core.ids import assign_ids
from engine.core.state import StateContext
from engine.segments.l1.s1b.geo import CountryShapes
from engine.segments.l1.s1b.s6_jitter import jitter_points
from engine.segments.l1.s3b.cdn import cdn_countries, merchant_mix
from engine.segments.l1.s3b.draws import blocks
from engine.segments.l1.s3b.places import country_anchors, tz_resolver
from engine.segments.l1.s3b.policy import Edges

_LO32 = np.uint64(0xFFFFFFFF)
_CHUNK = 20_000  # edges per country draw: bounds the (edges × countries) CDF comparison


def edge_counts(z: np.ndarray, modes: np.ndarray, n_outlets: np.ndarray, policy: Edges) -> np.ndarray:
    """E = clamp(round(base_mode · (1 + slope·ln n) · exp(σZ − σ²/2)), range), round half to even."""
    ec = policy.edge_count
    base = np.array([ec.base[m] for m in modes.tolist()], dtype=np.float64)
    mean = base * (1.0 + ec.size_slope * np.log(n_outlets.astype(np.float64)))
    e = np.rint(mean * np.exp(ec.sigma * z - ec.sigma**2 / 2.0))
    return np.clip(e, ec.range[0], ec.range[1]).astype(np.int64)


def draw_countries(p: np.ndarray, row: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Column of each edge's country: inverse CDF of its merchant's mix p[row] on u (as `settle.pick`)."""
    cdf = np.cumsum(p, axis=1)
    out = np.empty(row.size, dtype=np.int64)
    for a in range(0, row.size, _CHUNK):
        c = cdf[row[a : a + _CHUNK]]
        t = u[a : a + _CHUNK] * c[:, -1]
        idx = (c <= t[:, None]).sum(axis=1)
        out[a : a + _CHUNK] = np.minimum(idx, (c < c[:, -1:]).sum(axis=1))
    return out


def decode_tiles(sampler: pl.DataFrame, country: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Tile of each edge: §2B.S2's decoder on raw lane w over its country's tile_sampler table."""
    table = sampler.sort("country_iso", "member_index")
    starts = (
        table.group_by("country_iso", maintain_order=True)
        .agg(pl.len().alias("n"))
        .with_columns((pl.col("n").cum_sum() - pl.col("n")).alias("start"))
    )
    at = dict(
        zip(starts["country_iso"].to_list(), zip(starts["start"], starts["n"], strict=True), strict=True)
    )
    start = np.array([at[c][0] for c in country.tolist()], dtype=np.int64)
    n = np.array([at[c][1] for c in country.tolist()], dtype=np.uint64)
    j = (((w >> np.uint64(32)) * n) >> np.uint64(32)).astype(np.int64)
    prob_q, alias = table["prob_q"].to_numpy().astype(np.uint64), table["alias"].to_numpy().astype(np.int64)
    k = np.where((w & _LO32) < prob_q[start + j], j, alias[start + j])
    return table["tile_id"].to_numpy()[start + k]


def place_points(
    key: tuple[int, int], edges: pl.DataFrame, shapes: CountryShapes, max_attempts: int
) -> dict[str, np.ndarray]:
    """1B.S6's jitter for every edge (rows with merchant_id, edge_seq, country_iso, the tile's bounds and a
    `_row` position): attempt t on ⟨merchant_id, edge_seq, t, 0⟩, all pending edges of a country together."""
    n = edges.height
    out = {"lon": np.full(n, np.nan), "lat": np.full(n, np.nan)}
    out |= {"attempts": np.zeros(n, np.int64), "fallback": np.zeros(n, bool)}
    for (iso2,), grp in edges.group_by(["country_iso"], maintain_order=True):
        words = (grp["merchant_id"].to_numpy(), grp["edge_seq"].to_numpy().astype(np.uint64), 0, 0)
        res = jitter_points(key, words, 2, grp, shapes.union(iso2), max_attempts)
        for name, values in res.items():
            out[name][grp["_row"].to_numpy()] = values
    return out


def outside_count(shapes: CountryShapes, country: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> int:
    """Points not in (or on the boundary of) their country's polygon; a missing point counts as outside."""
    bad = int(np.isnan(lon).sum() + np.isnan(lat).sum())
    for iso2 in np.unique(country).tolist():
        mine = (country == iso2) & ~np.isnan(lon) & ~np.isnan(lat)
        bad += int((~shapely.intersects_xy(shapes.union(iso2), lon[mine], lat[mine])).sum())
    return bad


def edge_weights(
    p_x: np.ndarray, cell: np.ndarray, row: np.ndarray, z: np.ndarray, sigma: float
) -> np.ndarray:
    """w_e = p(x_e)/E(x_e)·exp(σZ_e − σ²/2), normalised per merchant (`row`); E(x) counts the merchant's
    edges in the same (merchant, country) `cell`."""
    _, inverse, counts = np.unique(cell, return_inverse=True, return_counts=True)
    raw = p_x / counts[inverse] * np.exp(sigma * z - sigma**2 / 2.0)
    return raw / np.bincount(row, weights=raw)[row]


def run(ctx: StateContext) -> None:
    policy: Edges = ctx.policy("3B/edges.yaml")
    cls = ctx.read("virtual_classification")
    settle = ctx.read("virtual_settlement").sort("merchant_id")
    merchants = settle.join(cls.select("merchant_id", "virtual_mode"), on="merchant_id").join(
        ctx.sealed_table("merchant_catalogue").select("merchant_id", "n_outlets_total"), on="merchant_id"
    )
    tiles = ctx.sealed_table("tile_index")
    sampler = ctx.sealed_table("tile_sampler")
    shapes = CountryShapes(ctx.sealed_table("ref_country_polygons"))
    universe = cdn_countries(
        sampler, ctx.sealed_table("ref_country_macro"), ctx.sealed_table("ref_countries"), policy
    )
    iso = universe["country_iso"].to_list()
    col_of = {c: i for i, c in enumerate(iso)}
    missing = sorted(set(merchants["country_iso"].to_list()) - set(col_of))
    if missing:
        raise EngineError(
            "E_3B_SETTLEMENT_COUNTRY",
            f"settlement countries outside the CDN universe (no tiles or macro data): {', '.join(missing)}",
            where="virtual_settlement",
            state=ctx.state,
        )
    anchors = country_anchors(shapes, iso)
    mid = merchants["merchant_id"].to_numpy()
    _, _, z = blocks(ctx.family_key("edge_count"), mid)
    e_count = edge_counts(
        z[:, 0], merchants["virtual_mode"].to_numpy(), merchants["n_outlets_total"].to_numpy(), policy
    )
    ctx.record_draws("edge_count", (mid,), draws=2, blocks=1, value=e_count)
    settle_col = np.array([col_of[c] for c in merchants["country_iso"].to_list()], dtype=np.int64)
    p = merchant_mix(
        universe["c"].to_numpy(),
        anchors["lat"].to_numpy(),
        anchors["lon"].to_numpy(),
        merchants["lat_deg"].to_numpy(),
        merchants["lon_deg"].to_numpy(),
        settle_col,
        policy,
    )

    # one row per edge, in (merchant_id, edge_seq) order
    row = np.repeat(np.arange(mid.size), e_count)
    seq = np.arange(row.size) - np.repeat(np.cumsum(e_count) - e_count, e_count)
    raw, u, zz = blocks(ctx.family_key("edge_place"), mid[row], seq)
    col = np.where(seq == 0, settle_col[row], draw_countries(p, row, u[:, 0]))
    country = np.asarray(iso)[col]
    ctx.record_draws("edge_place", (mid[row], seq), draws=np.where(seq == 0, 3, 4), blocks=1, value=u[:, 0])
    tile_id = decode_tiles(sampler, country, raw[:, 1])
    edges = pl.DataFrame(
        {
            "merchant_id": pl.Series(mid[row], dtype=pl.UInt64),
            "edge_seq": pl.Series(seq, dtype=pl.UInt16),
            "country_iso": country,
            "tile_id": pl.Series(tile_id, dtype=pl.UInt64),
            "_row": np.arange(row.size),
        }
    ).join(
        tiles.select("country_iso", "tile_id", "lon_min", "lat_min", "lon_max", "lat_max", "interior"),
        on=["country_iso", "tile_id"],
        how="left",
        maintain_order="left",
    )
    pts = place_points(ctx.family_key("edge_jitter"), edges, shapes, policy.jitter_max_attempts)
    lon, lat, attempts, fallback = pts["lon"], pts["lat"], pts["attempts"], pts["fallback"]
    ctx.record_draws(
        "edge_jitter", (mid[row], seq), draws=2 * attempts, blocks=attempts, streams=attempts, value=lon
    )
    outside = outside_count(shapes, country, lon, lat)
    if outside:
        raise EngineError(
            "E_3B_EDGE_OUTSIDE",
            f"{outside} edges lie outside their country",
            where="edge_catalogue",
            state=ctx.state,
        )
    tz = tz_resolver(ctx)(lon, lat, country)

    weight = edge_weights(p[row, col], row * p.shape[1] + col, row, zz[:, 1], policy.edge_weight_sigma)
    sums = np.bincount(row, weights=weight, minlength=mid.size)
    if not (np.isfinite(weight).all() and (weight > 0).all() and np.abs(sums - 1.0).max() <= 1e-12):
        raise EngineError(
            "E_3B_EDGE_WEIGHT",
            "edge weights are not positive or do not sum to 1",
            where="edge_catalogue",
            state=ctx.state,
        )
    ids, probes = assign_ids(
        "edge", [(int(m), int(s)) for m, s in zip(mid[row].tolist(), seq.tolist(), strict=True)]
    )
    ctx.count("edge_id_probes", probes)
    ctx.count("fallback", int(fallback.sum()))
    out = pl.DataFrame(
        {
            "edge_id": pl.Series(ids, dtype=pl.UInt64),
            "merchant_id": pl.Series(mid[row], dtype=pl.UInt64),
            "edge_seq": pl.Series(seq, dtype=pl.UInt16),
            "country_iso": country,
            "tile_id": pl.Series(tile_id, dtype=pl.UInt64),
            "lat_deg": lat,
            "lon_deg": lon,
            "tzid": pl.Series(tz["tzid"], dtype=pl.String),
            "tz_index": pl.Series(tz["tz_index"], dtype=pl.UInt16),
            "resolution_method": pl.Series(tz["resolution_method"], dtype=pl.String),
            "edge_weight": weight,
            "attempts": pl.Series(attempts, dtype=pl.UInt8),
            "placement": np.where(fallback, "FALLBACK", "JITTER"),
        }
    )
    ctx.publish("edge_catalogue", out)
