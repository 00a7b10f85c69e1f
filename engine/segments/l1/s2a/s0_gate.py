"""2A.S0 — verify the 1A and 1B flags per seed; seal tz references, tzdata, the horizon and 2A's policies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.core.gates import read_input_table
from engine.core.policy import load_policy_file
from engine.core.proj_guard import ensure_proj_data
from engine.core.sealing import check_inputs, seal_upstream, write_gate
from engine.segments.l1.s2a.resolver import active_overrides
from engine.segments.l1.s2a.s1_tz_lookup import overrides_of, tz_country_map

STATE = "2A.S0"


def run(root: Path, spec: dict[str, Any]) -> None:
    ensure_proj_data(STATE)
    inputs, paths = check_inputs(root, spec, STATE)
    horizon = load_policy_file("CFG", "horizon", paths["CFG/horizon.yaml"], state=STATE)
    overrides = load_policy_file("2A", "tz_overrides", paths["2A/tz_overrides.yaml"], state=STATE)
    # duplicates and country-scope tzids now; site and MCC scopes are checked against their countries in S1
    tzmap = tz_country_map(read_input_table(paths["ref_tz_country"], state=STATE))
    active_overrides(overrides_of(overrides), horizon.start().date(), tz_country=tzmap)
    write_gate(root, spec, inputs, ["fingerprint", "policies", "references", "overrides"], STATE)
    seal_upstream(root, spec, spec["seeds"], {"1A": ["merchant_catalogue"], "1B": ["site_locations"]}, STATE)
