"""3A.S0 — verify the 1A, 1B and 2A flags per seed; seal 3A's policies, the tz references, 2A's resolver
settings (so S2 resolves tile centres exactly as 2A resolved sites) and 1B's seed-free tile tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.core.canonical import sha256_file
from engine.core.contracts import dataset_file
from engine.core.policy import load_policy_file
from engine.core.proj_guard import ensure_proj_data
from engine.core.sealing import check_inputs, check_same_as_upstream, seal_upstream, write_gate

STATE = "3A.S0"
# per seed: the pairs and their sites' zones; seed-free: the tiles whose centres S2 resolves
SEEDED = {"1A": ["outlet_catalogue"], "2A": ["site_timezones"]}
TILES = ["tile_index", "tile_weights"]
# sealed by 3A and by 2A: they must be 2A's bytes, or 3A's priors would use another resolver than the sites
SHARED_WITH_2A = {
    "CFG/horizon.yaml": "E_HORIZON_MISMATCH",
    "2A/tz_resolution.yaml": "E_3A_RESOLVER_MISMATCH",
    "2A/tz_overrides.yaml": "E_3A_RESOLVER_MISMATCH",
}


def run(root: Path, spec: dict[str, Any]) -> None:
    ensure_proj_data(STATE)
    inputs, paths = check_inputs(root, spec, STATE)
    for key, code in SHARED_WITH_2A.items():
        check_same_as_upstream(root, spec, inputs, "2A", key, code, STATE)
    load_policy_file("2A", "tz_resolution", paths["2A/tz_resolution.yaml"], state=STATE)
    load_policy_file("2A", "tz_overrides", paths["2A/tz_overrides.yaml"], state=STATE)
    # every seed's 1B flag vouches for the tile tables (seal_upstream checks their bytes against each);
    # S2 is seed-free, so they are sealed once more beside the policies, where a seed-free state reads
    seal_upstream(root, spec, spec["seeds"], {**SEEDED, "1B": TILES}, STATE)
    for name in TILES:
        path = dataset_file(root, name, mf=spec["upstream"]["1B"])
        inputs.append(
            {
                "id": name,
                "kind": "upstream_dataset",
                "path": str(path.relative_to(root)),
                "sha256": sha256_file(path),
            }
        )
    write_gate(root, spec, inputs, ["fingerprint", "policies", "references", "resolver", "tiles"], STATE)
