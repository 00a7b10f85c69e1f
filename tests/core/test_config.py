"""Run configuration: presets, overrides, and E_CONFIG_INVALID naming the field path (design README §8)."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
import yaml

from engine.core.config import PRESETS, REPO_ROOT, RunConfig, deep_merge, load_run_config
from engine.core.errors import EngineError


def _preset(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "config" / "presets" / f"{name}.yaml").read_text())


def _config_yaml() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())


def test_presets_are_exactly_the_shipped_files() -> None:
    assert sorted(PRESETS) == sorted(p.stem for p in (REPO_ROOT / "config" / "presets").glob("*.yaml"))


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_with_its_values(name: str) -> None:
    cfg = load_run_config({"preset": name})
    preset = _preset(name)
    assert cfg.preset == name
    assert cfg.seeds == preset["seeds"]
    assert cfg.shards == preset["shards"]
    assert cfg.scenarios == preset["scenarios"]
    assert cfg.merchant_universe.source == preset["merchant_universe"]["source"]
    assert cfg.policy_overrides == preset["policy_overrides"]
    assert cfg.output_root == "."


def test_preset_scales_are_ordered() -> None:
    n = {
        p: load_run_config({"preset": p}).policy_overrides["ING"]["merchant_universe"]["n_merchants"]
        for p in PRESETS
    }
    assert n["tiny"] < n["default"] < n["large"]
    assert load_run_config({"preset": "large"}).shards > 1


def test_shipped_config_yaml_loads() -> None:
    raw = _config_yaml()
    cfg = load_run_config(raw)
    assert cfg.preset == raw["preset"]
    assert cfg.output_root == raw["output_root"]


def test_missing_preset_means_default() -> None:
    cfg = load_run_config({"seeds": [7]})
    assert cfg.preset == "default"
    assert cfg.seeds == [7]
    assert cfg.policy_overrides == _preset("default")["policy_overrides"]


def test_command_line_overrides_win_over_preset() -> None:
    # what Snakemake hands over: config.yaml, then `--config preset=tiny shards=3 seeds=[1,2] output_root=out`
    raw = {**_config_yaml(), "preset": "tiny", "shards": 3, "seeds": [1, 2], "output_root": "out"}
    cfg = load_run_config(raw)
    assert cfg.preset == "tiny"
    assert cfg.shards == 3
    assert cfg.seeds == [1, 2]  # lists replace, not extend
    assert cfg.output_root == "out"
    assert cfg.scenarios == _preset("tiny")["scenarios"]  # untouched keys come from the preset


def test_policy_overrides_deep_merge_into_preset() -> None:
    raw = {"preset": "tiny", "policy_overrides": {"ING": {"merchant_universe": {"n_merchants": 50}}}}
    cfg = load_run_config(raw)
    assert cfg.policy_overrides == {
        "ING": {"merchant_universe": {"n_merchants": 50, "countries": {"max_countries": 25}}},
        "1B": {"tiles": {"raster": "ref_population_raster_0p25"}},
    }


def test_deep_merge_does_not_alias_inputs() -> None:
    base = {"a": {"b": [1]}, "c": 1}
    over = {"a": {"d": {"e": 2}}, "c": [3]}
    out = deep_merge(base, over)
    assert out == {"a": {"b": [1], "d": {"e": 2}}, "c": [3]}
    out["a"]["b"].append(9)
    out["a"]["d"]["e"] = 5
    assert base == {"a": {"b": [1]}, "c": 1}
    assert over == {"a": {"d": {"e": 2}}, "c": [3]}


def test_run_config_is_frozen() -> None:
    cfg = load_run_config({"preset": "tiny"})
    with pytest.raises(pydantic.ValidationError):
        cfg.shards = 2  # type: ignore[misc]
    assert isinstance(cfg, RunConfig)


BAD = {
    "negative_seed": ({"seeds": [-1]}, "seeds.0"),
    "second_seed_too_big": ({"seeds": [1, 2**64]}, "seeds.1"),
    "no_seeds": ({"seeds": []}, "seeds"),
    "zero_shards": ({"shards": 0}, "shards"),
    "too_many_shards": ({"shards": 4097}, "shards"),
    "shards_not_int": ({"shards": "two"}, "shards"),
    "bad_scenario": ({"scenarios": ["baseline", "Black Friday"]}, "scenarios.1"),
    "unknown_key": ({"seed": 42}, "seed"),
    "unknown_universe_source": ({"merchant_universe": {"source": "ftp"}}, "merchant_universe.source"),
    "unknown_universe_key": (
        {"merchant_universe": {"source": "generate", "url": "x"}},
        "merchant_universe.url",
    ),
    "file_without_path": ({"merchant_universe": {"source": "file"}}, "merchant_universe.path"),
    "unknown_preset": ({"preset": "huge"}, "preset"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_values_name_the_field(case: str) -> None:
    override, field = BAD[case]
    with pytest.raises(EngineError) as info:
        load_run_config({"preset": "tiny", **override})
    err = info.value
    assert err.code == "E_CONFIG_INVALID"
    assert err.state == "config"
    assert err.where == f"config field {field}"
    line = err.line()
    assert line.startswith("ERROR E_CONFIG_INVALID config: ")
    assert f"(config field {field}) — " in line
    assert "\n" not in line


def test_unknown_preset_lists_the_choices() -> None:
    with pytest.raises(EngineError) as info:
        load_run_config({"preset": "huge"})
    assert info.value.what == "unknown preset 'huge'"
    assert info.value.fix == "use one of tiny, default, large"


def test_file_source_with_path_is_accepted() -> None:
    cfg = load_run_config({"preset": "tiny", "merchant_universe": {"source": "file", "path": "m.csv"}})
    assert cfg.merchant_universe.source == "file"
    assert cfg.merchant_universe.path == "m.csv"


def test_seed_bounds_inclusive() -> None:
    assert load_run_config({"preset": "tiny", "seeds": [0, 2**64 - 1]}).seeds == [0, 2**64 - 1]


def test_policy_override_strings_from_the_command_line_are_typed() -> None:
    from engine.core.config import load_run_config

    overrides = {"1A": {"crossborder": {"cnp_open_multiplier": "0.5", "hubs": "[US]"}}}
    raw = {"preset": "tiny", "policy_overrides": overrides}
    cfg = load_run_config(raw)
    assert cfg.policy_overrides["1A"]["crossborder"] == {"cnp_open_multiplier": 0.5, "hubs": ["US"]}
