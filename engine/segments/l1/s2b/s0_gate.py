"""2B.S0 — verify the 1B and 2A flags per seed; seal 2B's policies and the horizon 2A sealed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.core.sealing import check_inputs, check_same_as_upstream, seal_upstream, write_gate

STATE = "2B.S0"
# the upstream data 2B reads, sealed per seed behind the owners' flags
UPSTREAM_DATA = {"1B": ["site_locations", "tile_weights"], "2A": ["site_timezones", "tz_in_use"]}


def run(root: Path, spec: dict[str, Any]) -> None:
    inputs, _ = check_inputs(root, spec, STATE)  # validates the alias layout's bit widths and alignment
    check_same_as_upstream(root, spec, inputs, "2A", "CFG/horizon.yaml", "E_HORIZON_MISMATCH", STATE)
    write_gate(root, spec, inputs, ["fingerprint", "policies", "horizon"], STATE)
    seal_upstream(root, spec, spec["seeds"], UPSTREAM_DATA, STATE)
