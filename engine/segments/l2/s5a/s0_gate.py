"""5A.S0 — verify the 1A, 2A, 3A and 3B flags per seed; seal 5A's policies and scenario packs, the horizon
2A sealed, ref_countries and ref_holidays, and the upstream data 5A reads; prove the horizon, the caps, the
MCC map and the scenario windows coherent before any compute.

Two upstream files are not tables: 2A's `tz_cache_manifest.json` (its window must cover the horizon and its
margins, and it must describe the sealed transitions) and 3A's `zone_alloc_universe.json` (its hash recomputes
and it binds the sealed zone_alloc). Each is checked against the digest its segment's bundle vouches for.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import polars as pl

from engine.core.canonical import hash_parts, sha256_file
from engine.core.errors import EngineError
from engine.core.gates import UPSTREAM as UPSTREAM_FILE
from engine.core.layout import bundle_dir, gate_dir
from engine.core.policy import load_policy_file
from engine.core.sealing import check_inputs, check_same_as_upstream, seal_upstream, write_gate
from engine.segments.l1.s2a.s3_tz_cache import manifest_path
from engine.segments.l1.s3a.universe import PARTS, universe_path
from engine.segments.l2.s5a.policy import SCENARIO_IDS, DemandScale, MerchantClass, Scenario

STATE = "5A.S0"
UPSTREAM = {
    "1A": ["merchant_catalogue"],
    "2A": ["tz_transitions", "tz_dst_windows"],
    "3A": ["zone_alloc"],
    "3B": ["virtual_classification"],
}


def fail(code: str, what: str, where: str, fix: str = "") -> EngineError:
    return EngineError(code, what, where=where, fix=fix, state=STATE)


def check_caps(scale: DemandScale) -> None:
    """S1's soft cap must never trip S3's hard limit: hard ≥ soft × ceiling."""
    if scale.hard_cap_to_mean < scale.soft_cap_to_mean * scale.soft_cap_ceiling:
        raise fail(
            "E_5A_CAP_INCONSISTENT",
            f"hard_cap_to_mean {scale.hard_cap_to_mean} < soft_cap_to_mean × soft_cap_ceiling "
            f"{scale.soft_cap_to_mean * scale.soft_cap_ceiling}",
            "5A/demand_scale.yaml hard_cap_to_mean",
            "raise hard_cap_to_mean or lower the soft cap",
        )


def check_scenario_windows(scenarios: dict[str, Scenario], start: dt.date, days: int) -> None:
    """Every scenario's overlay window intersects the horizon's dates."""
    last = start + dt.timedelta(days=days - 1)
    for sid, scen in scenarios.items():
        if scen.peak is None:
            continue
        a, b = scen.peak.window(start)
        if b < start or a > last:
            raise fail(
                "E_5A_SCENARIO_EMPTY",
                f"scenario {sid}'s peak window {a}..{b} misses the horizon {start}..{last}",
                f"5A/scenarios/{sid}.yaml peak",
                "move the window inside the horizon",
            )


def check_holiday_years(provenance: Path, horizon: Any) -> None:
    """The calendar's built years must hold every horizon year ± 1."""
    lo, hi = json.loads(provenance.read_text())["years"]
    need = (horizon.start().year - 1, horizon.end().year + 1)
    if need[0] < lo or need[1] > hi:
        raise fail(
            "E_HORIZON_NOT_COVERED",
            f"ref_holidays holds {lo}–{hi}; the horizon needs {need[0]}–{need[1]}",
            str(provenance),
            "widen engine/refdata/holidays.py YEARS and relock the references",
        )


def check_mccs(merchants: Path, classes: MerchantClass) -> None:
    mccs = set(pl.read_parquet(merchants, columns=["mcc"])["mcc"].unique().to_list())
    unmapped = sorted(mccs - set(classes.sector_of()))
    if unmapped:
        raise fail(
            "E_5A_UNMAPPED_MCC",
            f"{len(unmapped)} merchant MCCs map to no sector, e.g. {unmapped[0]}",
            "5A/merchant_class.yaml sectors",
            "list them (or a range holding them) under a sector",
        )


def vouched(root: Path, seg: str, seed: int, mf: str, path: Path) -> None:
    """`path` holds the bytes `seg`'s validation bundle vouches for (E_SEALED_INPUT_DIGEST_MISMATCH)."""
    reports = json.loads((bundle_dir(root, seg, seed, mf) / "state_reports.json").read_text())
    passed = {o["path"]: o["sha256"] for doc in reports.values() for o in doc.get("outputs", [])}
    rel = str(path.relative_to(root))
    if not path.is_file() or passed.get(rel) != sha256_file(path):
        raise fail(
            "E_SEALED_INPUT_DIGEST_MISMATCH",
            f"{path.name} differs from the bytes {seg}'s validation passed",
            str(path),
            f"delete it and rerun seg{seg}",
        )


def sealed(root: Path, spec: dict[str, Any], seed: int) -> dict[str, dict[str, str]]:
    """This seed's sealed upstream inputs by id (seal_upstream's sealed_upstream.json)."""
    doc = json.loads((gate_dir(root, "5A", spec["manifest_fingerprint"], seed) / UPSTREAM_FILE).read_text())
    return {i["id"]: i for i in doc["inputs"]}


def check_cache(root: Path, spec: dict[str, Any], seed: int, horizon: Any, horizon_sha: str) -> None:
    """2A's cache manifest belongs to this horizon and transitions, and covers [start − 7 d, end + 200 d]."""
    path = manifest_path(root, spec["upstream"]["2A"])
    vouched(root, "2A", seed, spec["upstream"]["2A"], path)
    doc = json.loads(path.read_text())
    lo, hi = (dt.datetime.fromisoformat(doc[k]) for k in ("window_start_utc", "window_end_utc"))
    need = (horizon.start() - dt.timedelta(days=7), horizon.end() + dt.timedelta(days=200))
    if lo > need[0] or hi < need[1] or doc["horizon_sha256"] != horizon_sha:
        raise fail(
            "E_HORIZON_NOT_COVERED",
            f"the tz cache covers {lo:%Y-%m-%d}..{hi:%Y-%m-%d} for horizon {doc['horizon_sha256'][:12]}; "
            f"5A needs {need[0]:%Y-%m-%d}..{need[1]:%Y-%m-%d} for {horizon_sha[:12]}",
            str(path),
            "rebuild 2A with the same horizon (its cache margins must be at least 7 and 200 days)",
        )
    if doc["transitions_sha256"] != sealed(root, spec, seed)["tz_transitions"]["sha256"]:
        raise fail("E_SEALED_INPUT_DIGEST_MISMATCH", "the cache manifest names other transitions", str(path))


def check_universe(root: Path, spec: dict[str, Any], seed: int) -> None:
    """3A's universe hash recomputes from its parts and binds the zone_alloc sealed here."""
    path = universe_path(root, spec["upstream"]["3A"], seed)
    vouched(root, "3A", seed, spec["upstream"]["3A"], path)
    doc = json.loads(path.read_text())
    again = hash_parts(*(doc[p] for p in PARTS)).hex()
    if (
        again != doc["universe_hash"]
        or doc["zone_alloc_sha256"] != sealed(root, spec, seed)["zone_alloc"]["sha256"]
    ):
        raise fail(
            "E_5A_UNIVERSE_MISMATCH",
            "zone_alloc_universe.json does not recompute or does not bind the sealed zone_alloc",
            str(path),
            "rerun seg3A so its allocation and universe file are rebuilt together",
        )


def warn_missing_holidays(root: Path, spec: dict[str, Any], holidays: Path) -> None:
    """Countries with demand but no holiday calendar get none; listed, never an error."""
    with_days = set(pl.read_parquet(holidays, columns=["country_iso"])["country_iso"].unique().to_list())
    for seed in spec["seeds"]:
        alloc = pl.read_parquet(
            root / sealed(root, spec, seed)["zone_alloc"]["path"], columns=["legal_country_iso"]
        )
        missing = sorted(set(alloc["legal_country_iso"].unique().to_list()) - with_days)
        if missing:
            print(f"WARNING {STATE}: seed {seed}: no holidays for {', '.join(missing)}", file=sys.stderr)


def run(root: Path, spec: dict[str, Any]) -> None:
    inputs, paths = check_inputs(root, spec, STATE)
    check_same_as_upstream(root, spec, inputs, "2A", "CFG/horizon.yaml", "E_HORIZON_MISMATCH", STATE)
    horizon = load_policy_file("CFG", "horizon", paths["CFG/horizon.yaml"], state=STATE)
    scale = load_policy_file("5A", "demand_scale", paths["5A/demand_scale.yaml"], state=STATE)
    classes = load_policy_file("5A", "merchant_class", paths["5A/merchant_class.yaml"], state=STATE)
    scenarios = {
        sid: load_policy_file("5A", f"scenarios/{sid}", paths[f"5A/scenarios/{sid}.yaml"], state=STATE)
        for sid in SCENARIO_IDS
    }
    check_caps(scale)
    check_scenario_windows(scenarios, horizon.start().date(), horizon.days)
    check_holiday_years(paths["ref_holidays"].parent / "provenance.json", horizon)
    seal_upstream(root, spec, spec["seeds"], UPSTREAM, STATE)
    horizon_sha = {i["id"]: i["sha256"] for i in inputs}["CFG/horizon.yaml"]
    for seed in spec["seeds"]:
        check_cache(root, spec, seed, horizon, horizon_sha)
        check_universe(root, spec, seed)
        check_mccs(root / sealed(root, spec, seed)["merchant_catalogue"]["path"], classes)
    warn_missing_holidays(root, spec, paths["ref_holidays"])
    checks = [
        "fingerprint",
        "policies",
        "references",
        "horizon",
        "caps",
        "scenarios",
        "cache",
        "universe",
        "mccs",
    ]
    write_gate(root, spec, inputs, checks, STATE)
