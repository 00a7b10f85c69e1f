"""5B.S0 — verify the 1A, 2A, 2B, 3A, 3B and 5A flags per seed; seal 5B's policies, the horizon, the alias
layout and the upstream tables 5B reads; prove that the clocks and the routing fabric cover the horizon before
any compute: the tz cache window (E_HORIZON_NOT_COVERED), 2B's day grid (E_5B_DAY_GRID_GAP), a site slice for
every physical (merchant, zone) and an edge slice for every virtual merchant (E_5B_ROUTE_MISSING), and 3B's
edge universe hash. Nothing is repaired here."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl

from engine.core.canonical import hash_parts, sha256_file
from engine.core.errors import EngineError
from engine.core.gates import UPSTREAM as UPSTREAM_FILE
from engine.core.layout import gate_dir
from engine.core.policy import load_policy_file
from engine.core.sealing import check_inputs, check_same_as_upstream, seal_upstream, write_gate
from engine.segments.l2.s5b.upstream import alias_paths, cache_manifest, vouched_json

STATE = "5B.S0"
UPSTREAM = {
    "1A": ["merchant_catalogue"],
    "2A": ["site_timezones", "tz_transitions", "tz_dst_windows"],
    "2B": ["s2_site_alias_members", "s4_group_weights"],
    "3A": [],  # its flag only: 5A carries its allocation
    "3B": ["virtual_classification", "virtual_settlement", "edge_catalogue", "s3_edge_alias_members"],
    "5A": ["merchant_zone_profile", "merchant_zone_scenario"],
}
UNIVERSE_PARTS = ("edge_catalogue", "edge_alias_bin", "edge_alias_index", "virtual_settlement")


def fail(code: str, what: str, where: str, fix: str = "") -> EngineError:
    return EngineError(code, what, where=where, fix=fix, state=STATE)


def sealed(root: Path, spec: dict[str, Any], seed: int) -> dict[str, dict[str, str]]:
    doc = json.loads((gate_dir(root, "5B", spec["manifest_fingerprint"], seed) / UPSTREAM_FILE).read_text())
    return {i["id"]: i for i in doc["inputs"]}


def check_cache(root: Path, spec: dict[str, Any], seed: int, horizon: Any, horizon_sha: str) -> None:
    """2A's cache manifest is this horizon's, covers [start − 7 d, end + 200 d] and binds the sealed
    transitions."""
    doc = cache_manifest(root, spec["upstream"], seed)
    lo, hi = (dt.datetime.fromisoformat(doc[k]) for k in ("window_start_utc", "window_end_utc"))
    need = (horizon.start() - dt.timedelta(days=7), horizon.end() + dt.timedelta(days=200))
    transitions = sealed(root, spec, seed)["tz_transitions"]["sha256"]
    if lo > need[0] or hi < need[1] or doc["horizon_sha256"] != horizon_sha:
        raise fail(
            "E_HORIZON_NOT_COVERED",
            f"the tz cache covers {lo:%Y-%m-%d}..{hi:%Y-%m-%d}; "
            f"5B needs {need[0]:%Y-%m-%d}..{need[1]:%Y-%m-%d}",
            "2A tz_cache_manifest.json",
            "rebuild 2A with the same horizon (cache margins of at least 7 and 200 days)",
        )
    if doc["transitions_sha256"] != transitions:
        raise fail("E_SEALED_INPUT_DIGEST_MISMATCH", "the cache manifest names other transitions", "2A cache")


def check_day_grid(group_index: dict[str, Any], merchants: set[int], days: int) -> None:
    """2B's group tables hold a slice for every (merchant, horizon day) 5B will count."""
    covered = {int(m["merchant_id"]): int(m["days"]) for m in group_index["merchants"]}
    short = sorted(m for m in merchants if covered.get(m, 0) < days)
    if short:
        raise fail(
            "E_5B_DAY_GRID_GAP",
            f"{len(short)} merchants lack 2B group weights for some of the {days} horizon days, e.g. "
            f"{short[0]} ({covered.get(short[0], 0)} days)",
            "2B group_alias_index.json",
            "rebuild 2B with the horizon 5B seals",
        )


def check_routes(profile: pl.DataFrame, site_index: dict[str, Any], edge_index: dict[str, Any]) -> None:
    """Every physical cell's (merchant, tz_index) has a 2B site slice; every virtual cell's merchant an edge
    slice (the routing rule of 5B.S3: virtual iff CNP and not PHYSICAL)."""
    virtual = (pl.col("channel_group") == "CNP") & (pl.col("virtual_mode") != "PHYSICAL")
    cells = profile.select(
        "merchant_id", (pl.col("zone_code") & 0xFFFF).alias("tz_index"), virtual.alias("virtual")
    ).unique()
    sites = {(int(s["merchant_id"]), int(s["tz_index"])) for s in site_index["slices"]}
    edges = {int(s["merchant_id"]) for s in edge_index["slices"]}
    phys = cells.filter(~pl.col("virtual"))
    missing = [
        (m, t) for m, t in zip(phys["merchant_id"], phys["tz_index"], strict=True) if (m, t) not in sites
    ]
    missing += [(m, None) for m in cells.filter(pl.col("virtual"))["merchant_id"].unique() if m not in edges]
    if missing:
        m, t = missing[0]
        raise fail(
            "E_5B_ROUTE_MISSING",
            f"{len(missing)} cells have no route, e.g. merchant {m} "
            + (f"tz_index {t} (no 2B site slice)" if t is not None else "(no 3B edge slice)"),
            "2B site_alias_index.json / 3B edge_alias_index.json",
            "rebuild 2B/3B from the same upstream world as 5A",
        )


def check_edge_universe(universe: dict[str, Any], seal: dict[str, dict[str, str]], index_sha: str) -> None:
    """3B's universe hash recomputes from its parts and binds the sealed catalogue and settlement."""
    again = hash_parts(universe["parameter_hash"], *(universe["sha256"][p] for p in UNIVERSE_PARTS)).hex()
    bound = (
        universe["sha256"]["edge_catalogue"] == seal["edge_catalogue"]["sha256"]
        and universe["sha256"]["virtual_settlement"] == seal["virtual_settlement"]["sha256"]
        and universe["sha256"]["edge_alias_index"] == index_sha
    )
    if again != universe["universe_hash"] or not bound:
        raise fail(
            "E_5B_ROUTE_MISSING",
            "edge_universe.json does not recompute or does not bind the sealed edge tables",
            "3B edge_universe.json",
            "rerun seg3B so its tables and universe are rebuilt together",
        )


def run(root: Path, spec: dict[str, Any]) -> None:
    inputs, paths = check_inputs(root, spec, STATE)
    check_same_as_upstream(root, spec, inputs, "2A", "CFG/horizon.yaml", "E_HORIZON_MISMATCH", STATE)
    check_same_as_upstream(root, spec, inputs, "5A", "CFG/horizon.yaml", "E_HORIZON_MISMATCH", STATE)
    horizon = load_policy_file("CFG", "horizon", paths["CFG/horizon.yaml"], state=STATE)
    seal_upstream(root, spec, spec["seeds"], UPSTREAM, STATE)
    horizon_sha = {i["id"]: i["sha256"] for i in inputs}["CFG/horizon.yaml"]
    for seed in spec["seeds"]:
        check_cache(root, spec, seed, horizon, horizon_sha)
        seal = sealed(root, spec, seed)
        profile = pl.read_parquet(
            root / seal["merchant_zone_profile"]["path"],
            columns=["merchant_id", "channel_group", "virtual_mode", "zone_code"],
        ).with_columns(pl.col(c).cast(pl.String) for c in ("channel_group", "virtual_mode"))
        group_index = vouched_json(root, spec["upstream"], seed, "group_index")
        check_day_grid(group_index, set(profile["merchant_id"].unique().to_list()), horizon.days)
        edge_index = vouched_json(root, spec["upstream"], seed, "edge_index")
        check_routes(profile, vouched_json(root, spec["upstream"], seed, "site_index"), edge_index)
        universe = vouched_json(root, spec["upstream"], seed, "edge_universe")
        index_sha = sha256_file(alias_paths(root, spec["upstream"], seed)["edge_index"])
        check_edge_universe(universe, seal, index_sha)
    checks = ["fingerprint", "policies", "horizon", "cache", "day_grid", "routes", "edge_universe"]
    write_gate(root, spec, inputs, checks, STATE)
