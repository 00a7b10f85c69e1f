"""5B's reads of upstream files that are not tables (2B's site and group alias blobs, 3B's edge alias, edge
universe and routing policy, 2A's cache manifest): their paths, and their bytes checked against the digest
the producing segment's validation bundle vouches for (the bundle's flag is what S0 sealed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.core.state import StateContext
from engine.kernels.router import EdgeTables, RouterTables, load_edge_router, load_router
from engine.segments.l1.alias_layout import AliasLayoutPolicy
from engine.segments.l1.s2a.s3_tz_cache import manifest_path
from engine.segments.l1.s2b.common import GROUP_ALIAS, SITE_ALIAS, partition_dir
from engine.segments.l1.s3b.files import file_path
from engine.segments.l2.s5a.s0_gate import vouched


def alias_paths(root: Path, mfs: dict[str, str], seed: int) -> dict[str, Path]:
    """The five routing files 5B reads, by name."""
    site = partition_dir(root, SITE_ALIAS[0], mfs["2B"], seed)
    group = partition_dir(root, GROUP_ALIAS[0], mfs["2B"], seed)
    return {
        "site_index": site / SITE_ALIAS[2],
        "site_blob": site / SITE_ALIAS[1],
        "group_index": group / GROUP_ALIAS[2],
        "group_blob": group / GROUP_ALIAS[1],
        "edge_index": file_path(root, "edge_alias_index.json", seed, mfs["3B"]),
        "edge_blob": file_path(root, "edge_alias.bin", seed, mfs["3B"]),
        "edge_universe": file_path(root, "edge_universe.json", seed, mfs["3B"]),
        "routing_policy": file_path(root, "virtual_routing_policy.json", seed, mfs["3B"]),
    }


def owner_of(name: str) -> str:
    return "3B" if name.startswith(("edge", "routing")) else "2B"


def vouched_json(root: Path, mfs: dict[str, str], seed: int, name: str) -> Any:
    """A routing JSON file after checking it against its segment's bundle."""
    path = alias_paths(root, mfs, seed)[name]
    seg = owner_of(name)
    vouched(root, seg, seed, mfs[seg], path)
    return json.loads(path.read_text())


def cache_manifest(root: Path, mfs: dict[str, str], seed: int) -> dict[str, Any]:
    path = manifest_path(root, mfs["2A"])
    vouched(root, "2A", seed, mfs["2A"], path)
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def routers(ctx: StateContext) -> tuple[RouterTables, EdgeTables, dict[str, Any]]:
    """2B's router and 3B's edge router over the vouched blobs (the loaders check each blob against its
    vouched index), and 3B's routing policy."""
    assert ctx.seed is not None
    mfs = ctx.sealed.doc["upstream"]
    paths = alias_paths(ctx.root, mfs, ctx.seed)
    layout = ctx.policy("2B/alias_layout.yaml")
    assert isinstance(layout, AliasLayoutPolicy)
    sites = ctx.sealed_table("s2_site_alias_members").sort("merchant_id", "tz_index", "member_index")
    edges = ctx.sealed_table("s3_edge_alias_members").sort("merchant_id", "member_index")
    router = load_router(
        vouched_json(ctx.root, mfs, ctx.seed, "site_index"),
        paths["site_blob"],
        sites["site_id"].to_numpy(),
        vouched_json(ctx.root, mfs, ctx.seed, "group_index"),
        paths["group_blob"],
        layout.layout(),
    )
    edge_router = load_edge_router(
        vouched_json(ctx.root, mfs, ctx.seed, "edge_index"),
        paths["edge_blob"],
        edges["edge_id"].to_numpy(),
        layout.layout(),
    )
    return router, edge_router, routing_policy(ctx)


def routing_policy(ctx: StateContext) -> dict[str, Any]:
    """3B's virtual_routing_policy.json (the settlement cut-off, the clocks), vouched."""
    assert ctx.seed is not None
    doc: dict[str, Any] = vouched_json(ctx.root, ctx.sealed.doc["upstream"], ctx.seed, "routing_policy")
    return doc


def cutoff_seconds(policy: dict[str, Any]) -> int:
    """The settlement cut-off "HH:MM" of 3B's routing policy, in seconds after local midnight."""
    hh, mm = policy["clocks"]["settlement_cutoff_local"].split(":")
    return int(hh) * 3600 + int(mm) * 60


def tz_table(ctx: StateContext) -> pl.DataFrame:
    """2A's transitions sorted by (tz_index, valid_from)."""
    return ctx.sealed_table("tz_transitions").sort("tz_index", "valid_from")


def zone_vocabulary(transitions: pl.DataFrame) -> tuple[pl.Enum, np.ndarray]:
    """The world's tzids as the sorted Enum 5B writes `tzid_local` in, and each tz_index's position in it."""
    zones = transitions.select("tz_index", pl.col("tzid").cast(pl.String)).unique().sort("tz_index")
    tzid = pl.Enum(sorted(zones["tzid"].to_list()))
    tz_pos = np.full(int(zones["tz_index"].max()) + 1, -1, dtype=np.int64)
    tz_pos[zones["tz_index"].to_numpy()] = np.searchsorted(
        tzid.categories.to_numpy(), zones["tzid"].to_numpy()
    )
    return tzid, tz_pos


def flat_clock(transitions: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first, valid_from, offset_s) per tz_index position: zone z's rows are first[z]..first[z+1]-1."""
    tz = transitions["tz_index"].to_numpy().astype(np.int64)
    n_tz = int(tz.max()) + 1 if tz.size else 0
    first = np.searchsorted(tz, np.arange(n_tz + 1)).astype(np.int64)
    return (
        first,
        transitions["valid_from"].to_numpy().astype(np.int64),
        transitions["utc_offset_s"].to_numpy().astype(np.int64),
    )
