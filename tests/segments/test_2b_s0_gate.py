"""2B.S0: the alias layout a decoder can read, and the horizon sealed exactly as 2A sealed it."""

import json
from pathlib import Path

import pytest

from engine.core.errors import EngineError
from engine.core.policy import validate_policy
from engine.core.sealing import check_same_as_upstream

LAYOUT = {
    "layout_version": 1,
    "magic": "ALS1",
    "endianness": "little",
    "alignment_bytes": 8,
    "mass_bits": 24,
    "prob_qbits": 32,
}


@pytest.mark.parametrize(
    "change", [{"mass_bits": 33}, {"prob_qbits": 16}, {"alignment_bytes": 4}, {"magic": "ALS2"}]
)
def test_alias_layout_outside_the_decoder_is_refused(change: dict) -> None:
    with pytest.raises(EngineError) as err:
        validate_policy("2B", "alias_layout", {**LAYOUT, **change}, source="alias_layout.yaml", state="2B.S0")
    assert err.value.code == "E_POLICY_INVALID"


def test_horizon_must_match_2a(tmp_path: Path) -> None:
    gate = tmp_path / "data/layer1/2A/gate/manifest_fingerprint=abc"
    gate.mkdir(parents=True)
    (gate / "sealed_inputs.json").write_text(
        json.dumps({"inputs": [{"id": "CFG/horizon.yaml", "sha256": "a" * 64}]})
    )
    spec = {"upstream": {"2A": "abc"}}
    check_same_as_upstream(
        tmp_path,
        spec,
        [{"id": "CFG/horizon.yaml", "sha256": "a" * 64}],
        "2A",
        "CFG/horizon.yaml",
        "E_HORIZON_MISMATCH",
        "2B.S0",
    )
    with pytest.raises(EngineError) as err:
        check_same_as_upstream(
            tmp_path,
            spec,
            [{"id": "CFG/horizon.yaml", "sha256": "b" * 64}],
            "2A",
            "CFG/horizon.yaml",
            "E_HORIZON_MISMATCH",
            "2B.S0",
        )
    assert err.value.code == "E_HORIZON_MISMATCH"


def test_an_unbuilt_day_effect_law_is_refused_not_ignored() -> None:
    doc = {"distribution": "gamma_mean1", "sigma": [{"min_sites": 1, "sigma": 0.18}], "clip": [0.4, 2.5]}
    with pytest.raises(EngineError) as err:
        validate_policy("2B", "day_effects", doc, source="day_effects.yaml", state="2B.S0")
    assert err.value.code == "E_POLICY_INVALID"
    validate_policy(
        "2B", "day_effects", {**doc, "distribution": "lognormal_mean1"}, source="x", state="2B.S0"
    )
