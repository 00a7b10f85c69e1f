"""3B.S4 on the tiny world: the routing policy's contract, and route_virtual over the published edge tables
returning only the merchant's own edges, never a site, and nothing for a physical merchant."""

import json
from pathlib import Path

import numpy as np
import polars as pl

from engine.kernels.alias_blob import AliasLayout
from engine.kernels.router import OK, UNKNOWN_MERCHANT, load_edge_router, route_virtual


def _dir(root: Path, name: str) -> Path:
    return next(root.glob(f"data/layer1/3B/{name}/seed=42/*"))


def test_virtual_arrivals_reach_only_their_merchants_edges(tiny_world: Path) -> None:
    index = json.loads((_dir(tiny_world, "edge_alias") / "edge_alias_index.json").read_text())
    members = pl.read_parquet(_dir(tiny_world, "s3_edge_alias_members") / "part-00000.parquet")
    tables = load_edge_router(
        index,
        _dir(tiny_world, "edge_alias") / "edge_alias.bin",
        members.sort("merchant_id", "member_index")["edge_id"].to_numpy(),
        AliasLayout(),
    )
    edges = pl.read_parquet(_dir(tiny_world, "edge_catalogue") / "part-00000.parquet")
    own = {m: set(g["edge_id"].to_list()) for (m,), g in edges.group_by(["merchant_id"])}
    sites = set(
        pl.read_parquet(next(tiny_world.glob("data/layer1/1B/site_locations/seed=42/*/part-00000.parquet")))[
            "site_id"
        ].to_list()
    )
    lanes = np.random.default_rng(5).integers(0, 2**64, size=400, dtype=np.uint64)
    for m, edge_ids in own.items():
        got = set()
        for w in lanes:
            status, edge = route_virtual(tables, np.uint64(m), w)
            assert status == OK
            got.add(int(edge))
        assert got <= edge_ids and not got & sites
    cls = pl.read_parquet(_dir(tiny_world, "virtual_classification") / "part-00000.parquet")
    for m in cls.filter(pl.col("virtual_mode") == "PHYSICAL")["merchant_id"].head(20).to_list():
        assert route_virtual(tables, np.uint64(m), lanes[0])[0] == UNKNOWN_MERCHANT


def test_routing_policy_names_the_clocks_and_counts(tiny_world: Path) -> None:
    doc = json.loads((_dir(tiny_world, "virtual_routing_policy") / "virtual_routing_policy.json").read_text())
    cls = pl.read_parquet(_dir(tiny_world, "virtual_classification") / "part-00000.parquet")
    counts = dict(cls.group_by("virtual_mode").len().iter_rows())
    assert doc["merchants"] == {"HYBRID": counts["HYBRID"], "VIRTUAL_ONLY": counts["VIRTUAL_ONLY"]}
    assert doc["clocks"]["primary"] == "operational" and doc["clocks"]["settlement_cutoff_local"] == "22:00"
    assert doc["layout_version"] == 1
