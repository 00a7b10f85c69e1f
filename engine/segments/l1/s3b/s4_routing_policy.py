"""3B.S4 — the contract 5B follows for virtual and hybrid arrivals: which edge tables, which decoder, which
clock, which settlement day; every virtual or hybrid merchant has a slice and a cached settlement zone."""

from __future__ import annotations

import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.segments.l1.s3b.files import publish_file, read_json
from engine.segments.l1.s3b.policy import VirtualRouting


def run(ctx: StateContext) -> None:
    policy: VirtualRouting = ctx.policy("3B/virtual_routing.yaml")
    universe = read_json(ctx, "edge_universe.json")
    index = read_json(ctx, "edge_alias_index.json")
    cls = ctx.read("virtual_classification")
    settle = ctx.read("virtual_settlement")
    cached = set(ctx.sealed_table("tz_transitions")["tzid"].unique().to_list())
    virtual = cls.filter(pl.col("virtual_mode") != "PHYSICAL")
    sliced = {int(s["merchant_id"]) for s in index["slices"]}
    no_slice = sorted(set(virtual["merchant_id"].to_list()) - sliced)
    uncached = sorted(set(settle["tzid"].to_list()) - cached)
    if no_slice or uncached or settle.height != virtual.height:
        raise EngineError(
            "E_3B_ROUTING_COVERAGE",
            f"{len(no_slice)} virtual merchants without an edge slice, settlement zones outside 2A's cache: "
            f"{', '.join(uncached) or 'none'}",
            where="virtual_routing_policy.json",
            state=ctx.state,
        )
    modes = dict(virtual.group_by("virtual_mode").len().iter_rows())
    doc = {
        "edge_universe_hash": universe["universe_hash"],
        "layout_version": index["layout_version"],
        "router": {
            "entry_point": "engine.kernels.router.route_virtual",
            "signature": "route_virtual(T, merchant_id, w_edge) -> (status, edge_id)",
            "loader": "engine.kernels.router.load_edge_router(edge_alias_index, edge_alias.bin, "
            "s3_edge_alias_members.edge_id, layout)",
            "lanes_per_arrival": 1,
            "decoder": "layer1 §2B.S2 shared decoder on one raw 64-bit lane",
        },
        "hybrid_coin": {
            "rule": "an arrival of a HYBRID merchant is virtual iff u < virtual_share",
            "uniform": "one open uniform from the caller's own RNG family, never reused for the group, site "
            "or edge draw",
            "virtual_share": "virtual_classification.virtual_share",
        },
        "clocks": {
            "primary": policy.primary_clock,
            "operational": "edge_catalogue.tzid of the routed edge",
            "settlement": "virtual_settlement.tzid",
            "settlement_cutoff_local": policy.settlement_cutoff_local,
            "settlement_date": "the local date in the settlement zone, +1 day when the local time is at or "
            "after the cut-off",
        },
        "ip_geography": "edge_catalogue.country_iso, lat_deg, lon_deg of the routed edge",
        "merchants": {"HYBRID": modes.get("HYBRID", 0), "VIRTUAL_ONLY": modes.get("VIRTUAL_ONLY", 0)},
    }
    publish_file(ctx, "virtual_routing_policy.json", doc)
