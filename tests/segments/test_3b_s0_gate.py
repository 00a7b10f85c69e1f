"""3B.S0: the rules end in a catch-all and every rule can fire, the layout version, and the per-seed seal."""

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from engine.core.errors import EngineError
from engine.core.layout import gate_dir
from engine.segments.l1.s3b.policy import VirtualRules
from engine.segments.l1.s3b.rules import check_reachable
from engine.segments.l1.s3b.s0_gate import check_layout_version
from tests.conftest import REPO, shipped_policy, tiny_plan

SECTORS = {"digital_goods": [5818, 5817], "travel": [4511, 4722, 7011], "other": [9399]}
BETA = {"alpha": 3.5, "beta": 6.5, "clip": [0.05, 0.8]}


def rules(*items: dict) -> VirtualRules:
    return VirtualRules.model_validate({"rules": list(items), "hybrid_virtual_share": BETA})


V01 = {"id": "V01", "version": "1", "sectors": ["digital_goods"], "channel": "card_not_present",
       "decision": "VIRTUAL_ONLY"}  # fmt: skip
P99 = {"id": "P99", "version": "1", "decision": "PHYSICAL"}


def test_the_shipped_rules_are_all_reachable() -> None:
    sectors = shipped_policy("1A", "sectors")
    from engine.core.policy_model import expand_codes

    table = {n: expand_codes(s.mccs, list(s.ranges)) for n, s in sectors.sectors.items()}
    check_reachable(shipped_policy("3B", "virtual_rules"), table, "3B.S0")


def test_rules_must_end_in_a_catch_all_and_hold_none_before() -> None:
    with pytest.raises(ValidationError, match="last rule must be a catch-all"):
        rules(V01)
    with pytest.raises(ValidationError, match="hides every rule after it"):
        rules(P99, {**V01, "id": "V02"}, {**P99, "id": "P98"})


def test_a_rule_shadowed_by_an_earlier_one_is_refused() -> None:
    shadowed = {**V01, "id": "V02", "decision": "HYBRID"}
    with pytest.raises(EngineError) as err:
        check_reachable(rules(V01, shadowed, P99), SECTORS, "3B.S0")
    assert err.value.code == "E_3B_RULE_UNREACHABLE"
    # narrower by size is still reachable only through (sector, channel) pairs left open; an MCC rule for
    # travel after a digital-goods rule is fine
    check_reachable(rules(V01, {**V01, "id": "V03", "sectors": None, "mccs": [4511]}, P99), SECTORS, "3B.S0")
    # a sector 1A does not map to MCCs: the model knows every sector name, 1A's sectors.yaml says which exist
    with pytest.raises(EngineError) as err:
        check_reachable(rules({**V01, "sectors": ["health"]}, P99), SECTORS, "3B.S0")
    assert err.value.code == "E_POLICY_INVALID"
    with pytest.raises(ValidationError, match="sectors"):  # a name no sector has: refused by the model
        rules({**V01, "sectors": ["gambling"]}, P99)


def test_an_alias_layout_version_the_engine_cannot_decode(tmp_path: Path) -> None:
    path = tmp_path / "alias_layout.yaml"
    path.write_text("layout_version: 2\nmagic: ALS1\n")
    with pytest.raises(EngineError) as err:
        check_layout_version(path)
    assert err.value.code == "E_3B_LAYOUT_UNSUPPORTED"
    path.write_text("layout_version: 1\n")
    check_layout_version(path)


def test_sealed_upstream_carries_three_flags_and_the_tiles(tiny_world: Path) -> None:
    mf = tiny_plan(tiny_world)["3B"].manifest_fingerprint
    doc = json.loads((gate_dir(tiny_world, "3B", mf, 42) / "sealed_upstream.json").read_text())
    assert sorted(doc["flags"]) == ["1A", "1B", "2A"]
    assert [i["id"] for i in doc["inputs"]] == [
        "merchant_catalogue",
        "tile_index",
        "tile_sampler",
        "tz_transitions",
    ]
    receipt = json.loads((gate_dir(tiny_world, "3B", mf) / "s0_gate_receipt.json").read_text())
    assert {"rules_reachable", "layout_version", "hub_tiles", "horizon"} <= set(receipt["checks_passed"])


def test_a_rule_version_given_as_a_number_is_its_text() -> None:
    """`--config` items (and so every override) read `1` as a number; the version seals as the text "1"."""
    from engine.core.config import load_run_config
    from engine.core.policy import resolve_policy

    shipped = yaml.safe_load((REPO / "config/policies/3B/virtual_rules.yaml").read_text())
    rules = [{**r, "version": 1} for r in shipped["rules"]]
    cfg = load_run_config({"preset": "tiny", "policy_overrides": {"3B": {"virtual_rules": {"rules": rules}}}})
    assert resolve_policy("3B", "virtual_rules", cfg.policy_overrides) == resolve_policy(
        "3B", "virtual_rules", {}
    )
