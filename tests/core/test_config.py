"""Run configuration: presets, overrides, and E_CONFIG_INVALID naming the field path (design README §8)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml
from snakemake.cli import parse_config

from engine.core import yaml12
from engine.core.config import PRESETS, REPO_ROOT, SCENARIOS, RunConfig, deep_merge, load_run_config
from engine.core.errors import EngineError
from engine.core.plan import build_plan
from engine.core.policy import resolve_policy


def _preset(name: str) -> dict[str, Any]:
    return yaml12.load((REPO_ROOT / "config" / "presets" / f"{name}.yaml").read_text())


def _config_yaml() -> dict[str, Any]:
    return yaml12.load((REPO_ROOT / "config" / "config.yaml").read_text())


def _cli(*items: str) -> RunConfig:
    """What `snakemake --config ITEMS` hands the workflow: config.yaml (YAML 1.1) under Snakemake's parse."""
    return load_run_config(
        deep_merge(
            yaml.load((REPO_ROOT / "config" / "config.yaml").read_text(), yaml.FullLoader),
            parse_config(list(items)),
        )
    )


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
        "2B": {"router": {"probe_arrivals_per_merchant": 1024}},
        "5A": {"demand_scale": {"target_arrivals": 100000.0}},
        "6B": {
            "campaigns": {"fraud_rate_target": 0.004, "fraud_rate_band": [0.002, 0.012], "min_instances": 1}
        },
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
    "duplicate_scenario": ({"scenarios": ["holiday_peak", "holiday_peak"]}, "scenarios.1"),
    "duplicate_seed": ({"seeds": [3, 1, 3]}, "seeds.2"),
    "bool_seed": ({"seeds": [True]}, "seeds.0"),
    "float_seed": ({"seeds": [1.0]}, "seeds.0"),
    "bool_shards": ({"shards": True}, "shards"),
    "float_shards": ({"shards": 2.0}, "shards"),
    "seeds_not_list": ({"seeds": 42}, "seeds"),
    "generate_with_path": (
        {"merchant_universe": {"source": "generate", "path": "m.csv"}},
        "merchant_universe.path",
    ),
    "unknown_override_segment": ({"policy_overrides": {"1C": {}}}, "policy_overrides.1C"),
    "unknown_override_policy": (
        {"policy_overrides": {"1A": {"crossboarder": {}}}},
        "policy_overrides.1A.crossboarder",
    ),
    "unknown_override_key": (
        {"policy_overrides": {"1A": {"crossborder": {"deny_hom": []}}}},
        "policy_overrides.1A.crossborder.deny_hom",
    ),
    "override_not_mapping": (
        {"policy_overrides": {"1A": {"crossborder": [1]}}},
        "policy_overrides.1A.crossborder",
    ),
    "horizon_override_is_not_a_policy": (
        {"policy_overrides": {"CFG": {"horizon": {}}}},
        "policy_overrides.CFG",
    ),
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


def test_command_line_values_are_typed_by_yaml_12() -> None:
    cfg = _cli(
        "preset=tiny",
        "seeds=[1,2]",
        "horizon={start_utc: 2026-01-05T00:00:00Z, days: 20}",
        "policy_overrides={1A: {crossborder: {cnp_open_multiplier: 0.5, hubs: [US, NO], deny_home: [ON]}}}",
    )
    assert cfg.seeds == [1, 2]
    assert cfg.horizon.days == 20
    assert cfg.horizon.start_utc.isoformat() == "2026-01-05T00:00:00+00:00"
    assert cfg.policy_overrides["1A"]["crossborder"] == {
        "cnp_open_multiplier": 0.5,
        "hubs": ["US", "NO"],
        "deny_home": ["ON"],
    }


@pytest.mark.parametrize("item", ["deny_home: [NO]", 'deny_home: ["NO"]', "deny_home: ['NO']"])
def test_norway_stays_norway_on_the_command_line(item: str) -> None:
    cfg = _cli("preset=tiny", f"policy_overrides={{1A: {{crossborder: {{{item}}}}}}}")
    assert cfg.policy_overrides["1A"]["crossborder"]["deny_home"] == ["NO"]
    sealed = yaml12.load(resolve_policy("1A", "crossborder", cfg.policy_overrides))
    assert sealed["deny_home"] == ["NO"]
    assert yaml.safe_load(resolve_policy("1A", "crossborder", cfg.policy_overrides))["deny_home"] == ["NO"]


def _repo_with_config(tmp_path: Path, config_text: str) -> Path:
    (tmp_path / "config").mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "config" / "presets", tmp_path / "config" / "presets")
    (tmp_path / "config" / "config.yaml").write_text(config_text)
    return tmp_path


def test_norway_stays_norway_in_config_yaml(tmp_path: Path) -> None:
    text = "preset: tiny\npolicy_overrides:\n  1A:\n    crossborder: {deny_home: [NO, 'YES'], hubs: [ON]}\n"
    repo = _repo_with_config(tmp_path, text)
    raw = yaml.load(text, Loader=yaml.FullLoader)  # what Snakemake hands over: YAML 1.1 made NO false
    assert raw["policy_overrides"]["1A"]["crossborder"]["deny_home"] == [False, "YES"]
    cfg = load_run_config(raw, repo)
    assert cfg.policy_overrides["1A"]["crossborder"] == {"deny_home": ["NO", "YES"], "hubs": ["ON"]}


def test_config_yaml_keeps_quoted_digits_as_text_and_command_line_wins(tmp_path: Path) -> None:
    text = "preset: tiny\noutput_root: '2024'\nshards: 2\n"
    repo = _repo_with_config(tmp_path, text)
    raw = yaml.load(text, Loader=yaml.FullLoader)
    assert load_run_config(raw, repo).output_root == "2024"
    cfg = load_run_config({**raw, **parse_config(["shards=3"])}, repo)
    assert (cfg.output_root, cfg.shards) == ("2024", 3)


def test_presets_are_read_as_yaml_12() -> None:
    assert yaml12.load("a: [NO, 1_000, 1:30, 2026-01-05]") == {"a": ["NO", "1_000", "1:30", "2026-01-05"]}


def test_scenarios_are_the_designs_packs() -> None:
    assert SCENARIOS == ("baseline", "holiday_peak")
    assert load_run_config({"preset": "tiny", "scenarios": ["holiday_peak", "baseline"]}).scenarios == [
        "holiday_peak",
        "baseline",
    ]
    with pytest.raises(EngineError) as info:
        load_run_config({"preset": "tiny", "scenarios": ["holiday"]})
    assert info.value.what == "unknown scenario 'holiday' (did you mean 'holiday_peak'?)"
    assert info.value.where == "config field scenarios.0"


def test_unknown_override_names_suggest_the_closest() -> None:
    cases = {
        "1a": "unknown segment '1a' (did you mean '1A'?)",
        "9Z": "unknown segment '9Z' (known: 1A, 1B, 2A, 2B, 3A, 3B, 5A, 5B, 6A, 6B, ING)",
    }
    for seg, what in cases.items():
        with pytest.raises(EngineError) as info:
            load_run_config({"preset": "tiny", "policy_overrides": {seg: {}}})
        assert info.value.what == what
    with pytest.raises(EngineError) as info:
        load_run_config({"preset": "tiny", "policy_overrides": {"1A": {"crossboarder": {"hubs": []}}}})
    assert info.value.what == "unknown 1A policy 'crossboarder' (did you mean 'crossborder'?)"
    with pytest.raises(EngineError) as info:
        load_run_config({"preset": "tiny", "policy_overrides": {"1A": {"crossborder": {"deny_hom": []}}}})
    assert info.value.what == "unknown field 'deny_hom' of 1A/crossborder (did you mean 'deny_home'?)"


def test_unknown_config_key_suggests_the_closest() -> None:
    with pytest.raises(EngineError) as info:
        load_run_config({"preset": "tiny", "horizon": {"start_utc": "2026-01-05T00:00:00Z", "dayz": 3}})
    assert info.value.where == "config field horizon.dayz"
    assert info.value.what == "unknown field 'dayz' (did you mean 'days'?)"
    assert info.value.fix.startswith("remove the field or correct its spelling")


# --- the horizon ------------------------------------------------------------------------------------


def _horizon(start: Any, days: Any = 14, **margins: Any) -> dict[str, Any]:
    return {"preset": "tiny", "horizon": {"start_utc": start, "days": days, **margins}}


@pytest.mark.parametrize(
    "start",
    ["2026-01-05T00:00:00", "2026-01-05", "2026-01-05 00:00:00", 0, 1767571200, True, None, "yesterday"],
)
def test_start_without_a_zone_is_refused(start: Any) -> None:
    with pytest.raises(EngineError) as info:
        load_run_config(_horizon(start))
    assert info.value.code == "E_CONFIG_INVALID"
    assert info.value.where == "config field horizon.start_utc"
    assert info.value.what == f"{start!r} is not a zoned timestamp: write e.g. '2026-01-05T00:00:00Z'"


def test_naive_start_does_not_depend_on_the_machine_zone() -> None:
    env = {**os.environ, "TZ": "America/New_York"}
    code = (
        "from engine.core.config import load_run_config\n"
        "from engine.core.errors import EngineError\n"
        "try:\n"
        "    h = {'start_utc': '2026-01-05T00:00:00', 'days': 14}\n"
        "    load_run_config({'preset': 'tiny', 'horizon': h})\n"
        "except EngineError as e:\n"
        "    print(e.where)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "config field horizon.start_utc", out.stderr


@pytest.mark.parametrize(
    "start", ["2026-01-05T01:00:00+01:00", "2026-01-04T19:00:00-05:00", "2026-01-05 00:00:00Z"]
)
def test_zoned_starts_normalise_to_one_utc_instant(start: str) -> None:
    base = load_run_config(_horizon("2026-01-05T00:00:00Z"))
    cfg = load_run_config(_horizon(start))
    assert cfg.horizon == base.horizon
    assert cfg.horizon.as_policy()["start_utc"] == "2026-01-05T00:00:00Z"
    assert build_plan(cfg)["2A"].manifest_fingerprint == build_plan(base)["2A"].manifest_fingerprint


def test_unquoted_start_in_config_yaml(tmp_path: Path) -> None:
    # YAML 1.1 (Snakemake) makes a datetime of an unquoted timestamp: aware is accepted, naive is not
    text = "preset: tiny\nhorizon: {start_utc: 2026-01-05T01:00:00+01:00, days: 14}\n"
    raw = yaml.load(text, Loader=yaml.FullLoader)
    assert isinstance(raw["horizon"]["start_utc"], dt.datetime)
    cfg = load_run_config(raw, _repo_with_config(tmp_path / "a", text))
    assert cfg.horizon.as_policy()["start_utc"] == "2026-01-05T00:00:00Z"
    aware = dt.datetime(2026, 1, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert load_run_config(_horizon(aware)).horizon == cfg.horizon
    with pytest.raises(EngineError) as info:
        load_run_config(_horizon(dt.datetime(2026, 1, 5)))
    assert info.value.where == "config field horizon.start_utc"


@pytest.mark.parametrize(
    ("start", "days", "what"),
    [
        ("9999-12-25T00:00:00Z", 14, "'9999-12-25T00:00:00Z' is outside [1970-01-01, 2200-01-01)"),
        ("1969-12-31T23:59:59Z", 14, "'1969-12-31T23:59:59Z' is outside [1970-01-01, 2200-01-01)"),
        (
            "2026-01-05T00:00:00.5Z",
            14,
            "'2026-01-05T00:00:00.5Z' is not a zoned timestamp: write e.g. '2026-01-05T00:00:00Z'",
        ),
        ("2026-02-30T00:00:00Z", 14, "'2026-02-30T00:00:00Z' is not a valid date and time"),
        ("1970-01-03T00:00:00Z", 14, "the tz-cache window starts 1969-12-27, before 1970-01-01"),
        ("2199-06-02T00:00:00Z", 14, "the tz-cache window ends 2200-01-02, after 2200-01-01"),
        ("2199-01-01T00:00:00Z", 3000, "the tz-cache window ends 2207-10-07, after 2200-01-01"),
    ],
)
def test_horizon_window_stays_representable(start: str, days: int, what: str) -> None:
    with pytest.raises(EngineError) as info:
        load_run_config(_horizon(start, days))
    assert info.value.where == "config field horizon.start_utc"
    assert info.value.what == what


def test_horizon_bounds_are_inclusive() -> None:
    first = load_run_config(_horizon("1970-01-01T00:00:00Z", cache_margin_days_before=0))
    assert first.horizon.window()[0].isoformat() == "1970-01-01T00:00:00+00:00"
    last = load_run_config(_horizon("2199-06-01T00:00:00Z", 14))
    assert last.horizon.window()[1].isoformat() == "2200-01-01T00:00:00+00:00"


# --- numbers: one spelling, one world -----------------------------------------------------------------


def _fingerprint(overrides: dict[str, Any]) -> str:
    return build_plan(load_run_config({"preset": "tiny", "policy_overrides": overrides}))[
        "ING"
    ].manifest_fingerprint


def test_int_and_float_spellings_of_a_float_field_hash_identically() -> None:
    def exponent(v: Any) -> dict[str, Any]:
        return {"ING": {"merchant_universe": {"countries": {"exponent": v}}}}

    assert _fingerprint(exponent(1)) == _fingerprint(exponent(1.0))
    assert _fingerprint(exponent(0.5)) == _fingerprint(exponent(5e-1))
    # and from the command line, where the values arrive as text
    a = _cli("preset=tiny", "policy_overrides={ING: {merchant_universe: {countries: {exponent: 1}}}}")
    b = _cli("preset=tiny", "policy_overrides={ING: {merchant_universe: {countries: {exponent: 1.0}}}}")
    c = _cli("preset=tiny", "policy_overrides={ING: {merchant_universe: {countries: {exponent: 10e-1}}}}")
    assert len({build_plan(x)["ING"].manifest_fingerprint for x in (a, b, c)}) == 1
    assert _fingerprint(exponent(1)) != _fingerprint(exponent(0.5))


def test_a_float_where_an_integer_is_due_is_refused_not_hashed() -> None:
    with pytest.raises(EngineError) as info:
        _fingerprint({"ING": {"merchant_universe": {"n_merchants": 100.0}}})
    assert info.value.code == "E_POLICY_INVALID"
    assert info.value.where == (
        "config/policies/ING/merchant_universe.yaml (+ policy_overrides) field n_merchants"
    )
    assert info.value.what == "Input should be a valid integer (got 100.0)"


def test_snakemake_dry_run_prints_exactly_one_error_line(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "--config",
        "preset=tiny",
        f"output_root={tmp_path / 'w'}",
        "horizon={start_utc: 2026-01-05T00:00:00, days: 14}",
    ]
    res = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    lines = [line for line in (res.stdout + res.stderr).splitlines() if line.startswith("ERROR ")]
    assert res.returncode != 0
    assert lines == [
        "ERROR E_CONFIG_INVALID config: '2026-01-05T00:00:00' is not a zoned timestamp: write e.g. "
        "'2026-01-05T00:00:00Z' (config field horizon.start_utc) — correct the value so the rule holds, "
        "in config/config.yaml or on the --config command line"
    ]
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("seeds: [1\n", "not valid YAML: did not find expected ',' or ']' at line 2, column 1"),
        ("- 1\n", "a preset must be a mapping of config fields"),
    ],
)
def test_broken_preset_is_one_error_line(tmp_path: Path, text: str, what: str) -> None:
    repo = _repo_with_config(tmp_path, "preset: tiny\n")
    (repo / "config" / "presets" / "tiny.yaml").write_text(text)
    with pytest.raises(EngineError) as info:
        load_run_config({"preset": "tiny"}, repo)
    err = info.value
    assert (err.code, err.where, err.what) == (
        "E_CONFIG_INVALID",
        str(repo / "config/presets/tiny.yaml"),
        what,
    )


def test_command_line_overrides_are_typed_by_the_field_they_override() -> None:
    # Snakemake reads nested --config values as text: 4834 and "13.70" arrive as '4834' and '13.70'
    raw = parse_config(
        [
            "preset=tiny",
            "policy_overrides={6B: {bank_view: {reason_codes: {MASTERCARD: {DUPLICATE: 4834}, "
            'VISA: {DUPLICATE: "13.70"}}}}, 1A: {hurdle_nb: {nb: {n_max: 500}}}}',
        ]
    )
    assert raw["policy_overrides"]["1A"]["hurdle_nb"]["nb"]["n_max"] == "500"
    cfg = load_run_config(raw)
    codes = cfg.policy_overrides["6B"]["bank_view"]["reason_codes"]
    assert codes == {"MASTERCARD": {"DUPLICATE": "4834"}, "VISA": {"DUPLICATE": "13.70"}}  # text fields
    assert cfg.policy_overrides["1A"]["hurdle_nb"]["nb"]["n_max"] == 500  # an integer field
    bank = yaml12.load(resolve_policy("6B", "bank_view", cfg.policy_overrides))
    assert bank["reason_codes"]["MASTERCARD"]["DUPLICATE"] == "4834"
    assert bank["reason_codes"]["VISA"]["DUPLICATE"] == "13.70"
    assert bank["reason_codes"]["MASTERCARD"]["NOT_RECEIVED"] == "4853"  # the shipped codes are untouched
    # a text field still refuses what is not text: a list where a code is due
    wrong = {"6B": {"bank_view": {"reason_codes": {"VISA": {"DUPLICATE": [1]}}}}}
    with pytest.raises(EngineError) as info:
        resolve_policy("6B", "bank_view", wrong)
    assert info.value.where.endswith("field reason_codes.VISA.DUPLICATE")


def test_an_override_named_like_a_path_is_refused_by_name(tmp_path: Path) -> None:
    # the policy name must not lead the typing of its leaves to a file outside contracts/policies/ (here one
    # that is not JSON: reading it would end in a traceback, not in the config error)
    (tmp_path / "bad.schema.json").write_text("not json")
    name = str(tmp_path / "bad")
    raw = {"preset": "tiny", "policy_overrides": {"6B": {name: {"a": "1"}}}}
    with pytest.raises(EngineError) as info:
        load_run_config(raw)
    assert info.value.code == "E_CONFIG_INVALID"
    assert info.value.what.startswith(f"unknown 6B policy {name!r}")
