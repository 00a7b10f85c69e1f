"""3B.S0 — verify the 1A, 1B and 2A flags per seed; seal 3B's policies, 2A's resolver policies, the horizon,
the references, and the upstream data 3B reads (merchants, 1B's tiles and tile sampler, 2A's tz cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from engine.core.contracts import dataset_file
from engine.core.errors import EngineError
from engine.core.policy import load_policy_file
from engine.core.policy_model import expand_codes
from engine.core.proj_guard import ensure_proj_data
from engine.core.sealing import check_inputs, check_same_as_upstream, seal_upstream, write_gate
from engine.core.yaml12 import load as load_yaml
from engine.segments.l1.s3b.rules import check_reachable

STATE = "3B.S0"
# the alias layouts the shared decoder (engine/kernels/alias.py, router.py) reads
LAYOUT_VERSIONS = (1,)
UPSTREAM = {
    "1A": ["merchant_catalogue"],
    "1B": ["tile_index", "tile_sampler"],
    "2A": ["tz_transitions"],
}


def check_layout_version(path: Path) -> None:
    """Before the layout is validated as a whole: a version the engine cannot decode is its own error."""
    version = (load_yaml(path.read_text()) or {}).get("layout_version")
    if version not in LAYOUT_VERSIONS:
        raise EngineError(
            "E_3B_LAYOUT_UNSUPPORTED",
            f"alias layout_version {version!r} is not one the engine decodes",
            where=f"{path} layout_version",
            fix=f"use layout_version {', '.join(map(str, LAYOUT_VERSIONS))}",
            state=STATE,
        )


def check_hub_tiles(root: Path, spec: dict[str, Any], paths: dict[str, Path]) -> None:
    """Every settlement and CDN hub country has tiles in 1B's tile index (else it could hold no edge)."""
    settlement = load_policy_file("3B", "settlement", paths["3B/settlement.yaml"], state=STATE)
    edges = load_policy_file("3B", "edges", paths["3B/edges.yaml"], state=STATE)
    tiles = pl.read_parquet(
        dataset_file(root, "tile_index", mf=spec["upstream"]["1B"]), columns=["country_iso"]
    )
    with_tiles = set(tiles["country_iso"].unique().to_list())
    for policy, hubs in (
        ("settlement.yaml hubs", settlement.hubs),
        ("edges.yaml cdn_weights.hubs", edges.cdn_weights.hubs),
    ):
        missing = sorted(set(hubs) - with_tiles)
        if missing:
            raise EngineError(
                "E_3B_HUB_NO_TILES",
                f"hub countries without tiles in 1B's tile index: {', '.join(missing)}",
                where=f"3B/{policy}",
                fix="name hubs whose polygons hold at least one raster cell",
                state=STATE,
            )


def run(root: Path, spec: dict[str, Any]) -> None:
    ensure_proj_data(STATE)
    layout_key = next(p for p in spec["policies"] if p["key"] == "3B/alias_layout.yaml")
    check_layout_version(root / layout_key["path"])
    inputs, paths = check_inputs(root, spec, STATE)
    check_same_as_upstream(root, spec, inputs, "2A", "CFG/horizon.yaml", "E_HORIZON_MISMATCH", STATE)
    for key in ("2A/tz_resolution.yaml", "2A/tz_overrides.yaml"):  # edges resolve as 2A's sites did
        check_same_as_upstream(root, spec, inputs, "2A", key, "E_3B_RESOLVER_MISMATCH", STATE)
    sectors = load_policy_file("1A", "sectors", paths["1A/sectors.yaml"], state=STATE)
    sector_mccs = {name: expand_codes(s.mccs, list(s.ranges)) for name, s in sectors.sectors.items()}
    rules = load_policy_file("3B", "virtual_rules", paths["3B/virtual_rules.yaml"], state=STATE)
    check_reachable(rules, sector_mccs, STATE)
    check_hub_tiles(root, spec, paths)
    checks = [
        "fingerprint",
        "policies",
        "references",
        "horizon",
        "resolver",
        "rules_reachable",
        "layout_version",
        "hub_tiles",
    ]
    write_gate(root, spec, inputs, checks, STATE)
    seal_upstream(root, spec, spec["seeds"], UPSTREAM, STATE)
