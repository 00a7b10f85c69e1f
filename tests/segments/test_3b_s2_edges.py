"""3B.S2: edge counts, the country mix, country and tile draws, and the published edges on the tiny world."""

import math
from pathlib import Path

import numpy as np
import polars as pl
import shapely

from engine.core.ids import hid
from engine.kernels.alias import encode, integer_masses
from engine.segments.l1.s1b.geo import CountryShapes
from engine.segments.l1.s3b.cdn import merchant_mix
from engine.segments.l1.s3b.s2_edges import (
    decode_tiles,
    draw_countries,
    edge_counts,
    edge_weights,
    outside_count,
)
from tests.conftest import shipped_policy

POLICY = shipped_policy("3B", "edges")


def test_edge_count_known_answers_and_clamp() -> None:
    base = POLICY.edge_count.base
    s = POLICY.edge_count.sigma
    z = np.array([0.0, 0.0, 5.0, -5.0])
    modes = np.array(["VIRTUAL_ONLY", "HYBRID", "VIRTUAL_ONLY", "HYBRID"])
    n = np.array([1, 100, 1, 1])
    got = edge_counts(z, modes, n, POLICY)
    want0 = round(base["VIRTUAL_ONLY"] * math.exp(-s * s / 2))
    want1 = round(base["HYBRID"] * (1 + 0.25 * math.log(100)) * math.exp(-s * s / 2))
    assert got.tolist() == [want0, want1, POLICY.edge_count.range[1], POLICY.edge_count.range[0]]


def test_mix_sums_to_one_clamps_the_settlement_and_keeps_the_rest_in_proportion() -> None:
    c = np.array([0.5, 0.3, 0.1, 0.1])
    lat = np.array([0.0, 0.0, 0.0, 60.0])  # countries 2 and 3 have equal c; 2 is on the equator
    lon = np.array([0.0, 30.0, 1.0, 1.0])
    p = merchant_mix(c, lat, lon, np.array([0.0, 0.0]), np.array([0.0, 30.0]), np.array([0, 1]), POLICY)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-12)
    lo, hi = POLICY.settlement_share_range
    assert lo <= p[0, 0] <= hi and lo <= p[1, 1] <= hi
    assert p[0, 2] > p[0, 3]  # nearer the settlement, same base weight: more mass
    # before the clamp: (1 − κ)c + κ·loc, loc ∝ c·exp(−d/L) — written out for merchant 0's countries 1 and 3
    km = [
        2 * 6371.0088 * math.asin(math.sqrt(math.sin(math.radians(la) / 2) ** 2
              + math.cos(math.radians(la)) * math.sin(math.radians(lo_) / 2) ** 2))
        for la, lo_ in zip(lat, lon, strict=True)
    ]  # fmt: skip
    loc = [ci * math.exp(-k / POLICY.locality_km) for ci, k in zip(c, km, strict=True)]
    raw = [(1 - POLICY.kappa) * ci + POLICY.kappa * li / sum(loc) for ci, li in zip(c, loc, strict=True)]
    assert math.isclose(p[0, 1] / p[0, 3], raw[1] / raw[3], rel_tol=1e-12)


def test_country_draw_is_the_inverse_cdf() -> None:
    p = np.array([[0.2, 0.0, 0.5, 0.3], [0.25, 0.25, 0.25, 0.25]])
    row = np.array([0, 0, 0, 0, 1, 1])
    u = np.array([0.0, 0.19999, 0.2000001, 0.7000001, 0.49, 0.999999])
    assert draw_countries(p, row, u).tolist() == [0, 0, 2, 3, 1, 3]


def test_edge_weight_splits_a_country_over_its_edges_then_normalises() -> None:
    p_x = np.array([0.5, 0.5, 0.2, 0.3, 0.3])
    cell = np.array([7, 7, 8, 9, 10])  # merchant 0: two edges in one country, one in another
    row = np.array([0, 0, 0, 1, 1])
    z = np.array([0.0, 0.0, 0.0, 1.0, -1.0])
    w = edge_weights(p_x, cell, row, z, 0.0)
    assert np.allclose(w, [0.25 / 0.7, 0.25 / 0.7, 0.2 / 0.7, 0.5, 0.5], rtol=1e-15)
    w = edge_weights(p_x, cell, row, z, 0.35)
    ratio = math.exp(0.35 * 1.0) / math.exp(-0.35)
    assert math.isclose(w[3] / w[4], ratio, rel_tol=1e-12) and math.isclose(w[3] + w[4], 1.0, rel_tol=1e-15)


def test_tile_decode_matches_the_alias_rule_written_out() -> None:
    weights = {"AA": np.array([1.0, 2.0, 3.0, 4.0]), "BB": np.array([5.0, 1.0])}
    rows = []
    for iso2, w in weights.items():
        prob_q, alias = encode(integer_masses(w, 32), 32)
        for k in range(w.size):
            rows.append((iso2, k, 100 * (1 + list(weights).index(iso2)) + k, int(prob_q[k]), int(alias[k])))
    sampler = pl.DataFrame(
        rows, schema=["country_iso", "member_index", "tile_id", "prob_q", "alias"], orient="row"
    )
    lanes = np.random.default_rng(3).integers(0, 2**64, size=500, dtype=np.uint64)
    country = np.where(np.arange(500) % 2 == 0, "AA", "BB")
    got = decode_tiles(sampler, country, lanes)
    table = {r[0]: [] for r in rows}
    for r in rows:
        table[r[0]].append(r)
    for w, iso2, tile in zip(lanes.tolist(), country.tolist(), got.tolist(), strict=True):
        members = table[iso2]
        j = ((w >> 32) * len(members)) >> 32
        k = j if (w & 0xFFFFFFFF) < members[j][3] else members[j][4]
        assert tile == members[k][2]


def test_points_outside_their_country_are_counted() -> None:
    boxes = pl.DataFrame(
        {
            "iso2": ["AA", "BB"],
            "geometry": [
                shapely.to_wkb(shapely.box(0, 0, 10, 10)),
                shapely.to_wkb(shapely.box(20, 0, 30, 10)),
            ],
        }
    )
    shapes = CountryShapes(boxes)
    country = np.array(["AA", "AA", "BB", "BB", "AA"])
    lon = np.array([5.0, 25.0, 25.0, 10.0, np.nan])  # inside, in the other country, inside, outside, missing
    lat = np.array([5.0, 5.0, 5.0, 5.0, 5.0])
    assert outside_count(shapes, country, lon, lat) == 3
    assert outside_count(shapes, country[[0, 2]], lon[[0, 2]], lat[[0, 2]]) == 0
    assert (
        outside_count(shapes, np.array(["AA"]), np.array([10.0]), np.array([10.0])) == 0
    )  # the corner counts


def test_published_edges_are_inside_their_tile_and_country(tiny_world: Path) -> None:
    part = "seed=42/*/part-00000.parquet"
    edges = pl.read_parquet(next(tiny_world.glob(f"data/layer1/3B/edge_catalogue/{part}")))
    settle = pl.read_parquet(next(tiny_world.glob(f"data/layer1/3B/virtual_settlement/{part}")))
    polygons = pl.read_parquet(next(tiny_world.glob("resources/ref_country_polygons/build=*/*.parquet")))
    tiles = pl.read_parquet(next(tiny_world.glob("data/layer1/1B/tile_index/*/part-00000.parquet")))
    shapes = CountryShapes(polygons)
    for (iso2,), grp in edges.group_by(["country_iso"]):
        assert shapely.intersects_xy(
            shapes.union(iso2), grp["lon_deg"].to_numpy(), grp["lat_deg"].to_numpy()
        ).all()
    cells = edges.join(tiles, on=["country_iso", "tile_id"], how="left")
    assert ((cells["lon_deg"] >= cells["lon_min"]) & (cells["lon_deg"] <= cells["lon_max"])).all()
    assert ((cells["lat_deg"] >= cells["lat_min"]) & (cells["lat_deg"] <= cells["lat_max"])).all()
    first = edges.filter(pl.col("edge_seq") == 0).join(settle, on="merchant_id")
    assert first.height == settle.height and (first["country_iso"] == first["country_iso_right"]).all()
    sums = edges.group_by("merchant_id").agg(pl.col("edge_weight").sum())["edge_weight"]
    assert ((sums - 1.0).abs() <= 1e-12).all()
    assert edges["edge_id"].to_list() == [
        hid("edge", m, s) for m, s in edges.select("merchant_id", "edge_seq").iter_rows()
    ]
    assert edges.select("merchant_id", "edge_seq").equals(
        edges.select("merchant_id", "edge_seq").sort("merchant_id", "edge_seq")
    )
