"""3A.S0: the escalation and prior policies' cross-field rules, and what the gate seals (flags, tiles,
2A's resolver settings byte for byte)."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.core.errors import EngineError
from engine.core.layout import gate_dir
from engine.core.policy import validate_policy
from tests.conftest import REPO, tiny_plan


def _shipped(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "config" / "policies" / "3A" / f"{name}.yaml").read_text())
    return doc


def _refused(name: str, doc: dict[str, Any]) -> str:
    with pytest.raises(EngineError) as err:
        validate_policy("3A", name, doc, source=f"{name}.yaml", state="3A.S0")
    assert err.value.code == "E_POLICY_INVALID"
    return str(err.value)


def test_shipped_policies_validate() -> None:
    for name in ("zone_escalation", "zone_priors", "validation"):
        validate_policy("3A", name, _shipped(name), source=name, state="3A.S0")


def test_rule_list_must_end_in_a_catch_all() -> None:
    doc = _shipped("zone_escalation")
    doc["rules"] = doc["rules"][:-1]
    assert "catch-all" in _refused("zone_escalation", doc)
    doc = _shipped("zone_escalation")
    doc["rules"].insert(1, {"name": "EARLY", "escalate": "never"})
    assert "unreachable" in _refused("zone_escalation", doc)


def test_theta_mix_and_bounds_are_checked() -> None:
    doc = _shipped("zone_escalation")
    doc["theta_mix"] = 1.5
    _refused("zone_escalation", doc)
    doc = _shipped("zone_escalation")
    doc["rules"][0] = {"name": "BAD", "min_zones": 3, "max_zones": 2, "escalate": "always"}
    _refused("zone_escalation", doc)


def test_kappa_range_must_be_ordered() -> None:
    doc = copy.deepcopy(_shipped("zone_priors"))
    doc["kappa_range"] = [200.0, 8.0]
    assert "reversed" in _refused("zone_priors", doc)


def test_gate_seals_flags_tiles_and_2a_resolver_settings(tiny_world: Path) -> None:
    plan = tiny_plan(tiny_world)
    mf = plan["3A"].manifest_fingerprint
    upstream = json.loads((gate_dir(tiny_world, "3A", mf, 42) / "sealed_upstream.json").read_text())
    assert sorted(upstream["flags"]) == ["1A", "1B", "2A"]
    assert [i["id"] for i in upstream["inputs"]] == [
        "outlet_catalogue",
        "site_timezones",
        "tile_index",
        "tile_weights",
    ]
    sealed = {
        i["id"]: i
        for i in json.loads((gate_dir(tiny_world, "3A", mf) / "sealed_inputs.json").read_text())["inputs"]
    }
    per_seed = {i["id"]: i["sha256"] for i in upstream["inputs"]}
    for name in ("tile_index", "tile_weights"):  # seed-free S2 reads them from the seed-free list
        assert sealed[name]["kind"] == "upstream_dataset"
        assert sealed[name]["sha256"] == per_seed[name]
    mf_2a = plan["2A"].manifest_fingerprint
    ours_2a = {
        i["id"]: i["sha256"]
        for i in json.loads((gate_dir(tiny_world, "2A", mf_2a) / "sealed_inputs.json").read_text())["inputs"]
    }
    for key in ("2A/tz_resolution.yaml", "2A/tz_overrides.yaml", "CFG/horizon.yaml"):
        assert sealed[key]["sha256"] == ours_2a[key]
