"""Policy packs: strict JSON Schema + pydantic, generated schemas without drift, resolved bytes (§7, §8)."""

from __future__ import annotations

import ast
import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from engine.core import yaml12
from engine.core.errors import EngineError
from engine.core.policy import (
    POLICY_DIR,
    dump_policy,
    generated_schema,
    load_policy_file,
    policy_models,
    resolve_policy,
    schema_path,
    schema_text,
    validate_policy,
)

MODELS = policy_models()
# CFG packs are resolved from the run config itself, not shipped under config/policies
PACKS = sorted((seg, name) for seg, models in MODELS.items() for name in models if seg != "CFG")


def _shipped(seg: str, name: str) -> dict[str, Any]:
    return yaml12.load((POLICY_DIR / seg / f"{name}.yaml").read_text())


def _invalid(seg: str, name: str, doc: Any) -> EngineError:
    with pytest.raises(EngineError) as info:
        validate_policy(seg, name, doc, source="p.yaml", state="config")
    err = info.value
    assert err.code == "E_POLICY_INVALID"
    assert err.state == "config"
    assert err.where.startswith("p.yaml field ")
    return err


def test_every_model_has_a_shipped_policy_and_vice_versa() -> None:
    parts = (p.relative_to(POLICY_DIR).with_suffix("").parts for p in POLICY_DIR.glob("*/**/*.yaml"))
    shipped = sorted((seg, "/".join(name)) for seg, *name in parts)  # 5A's packs: scenarios/<id>
    assert shipped == PACKS


@pytest.mark.parametrize(("seg", "name"), PACKS)
def test_shipped_policy_validates(seg: str, name: str) -> None:
    path = POLICY_DIR / seg / f"{name}.yaml"
    model = load_policy_file(seg, name, path, state="test")
    assert isinstance(model, MODELS[seg][name])


@pytest.mark.parametrize(("seg", "name"), PACKS)
def test_committed_schema_equals_generated(seg: str, name: str) -> None:
    path = schema_path(seg, name)
    assert (
        path == Path(__file__).resolve().parents[2] / "contracts" / "policies" / seg / f"{name}.schema.json"
    )
    assert path.read_text() == schema_text(seg, name)
    assert json.loads(path.read_text()) == generated_schema(seg, name)


def _objects(node: Any):
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            yield node
        for v in node.values():
            yield from _objects(v)
    elif isinstance(node, list):
        for v in node:
            yield from _objects(v)


@pytest.mark.parametrize(("seg", "name"), PACKS)
def test_generated_schema_is_strict(seg: str, name: str) -> None:
    objs = list(_objects(generated_schema(seg, name)))
    assert objs
    assert all(o.get("additionalProperties") is False for o in objs)


# --- strictness: JSON Schema ------------------------------------------------------------------------


def test_unknown_top_level_key_names_the_closest_field() -> None:
    doc = _shipped("ING", "merchant_universe")
    doc["n_merchant"] = 5
    err = _invalid("ING", "merchant_universe", doc)
    assert err.where == "p.yaml field n_merchant"
    assert err.what == "unknown field 'n_merchant' (did you mean 'n_merchants'?)"


def test_unknown_nested_key_names_its_path() -> None:
    doc = _shipped("ING", "merchant_universe")
    doc["countries"]["max_countriez"] = 5
    err = _invalid("ING", "merchant_universe", doc)
    assert err.where == "p.yaml field countries.max_countriez"
    assert err.what == "unknown field 'max_countriez' (did you mean 'max_countries'?)"
    assert err.line().startswith("ERROR E_POLICY_INVALID config: unknown field ")
    assert "(p.yaml field countries.max_countriez) — correct the policy" in err.line()


def test_unknown_key_without_a_close_name_lists_the_fields() -> None:
    doc = _shipped("1A", "currency_weights")
    doc["affinity"]["zzz"] = 1.0
    err = _invalid("1A", "currency_weights", doc)
    assert err.where == "p.yaml field affinity.zzz"
    assert err.what == "unknown field 'zzz' (known: other, same_region, same_subregion)"


def test_wrong_type_names_the_field() -> None:
    doc = _shipped("ING", "merchant_universe")
    doc["countries"]["max_countries"] = "many"
    err = _invalid("ING", "merchant_universe", doc)
    assert err.where == "p.yaml field countries.max_countries"
    assert err.what == "'many' is not of type 'integer'"


def test_out_of_range_list_item_names_the_index() -> None:
    doc = _shipped("1A", "crossborder")
    doc["open_prob"][1]["p"] = 1.5
    err = _invalid("1A", "crossborder", doc)
    assert err.where == "p.yaml field open_prob.1.p"


def test_missing_required_field() -> None:
    doc = _shipped("1A", "currency_weights")
    del doc["hub_boost"]
    err = _invalid("1A", "currency_weights", doc)
    assert err.where == "p.yaml field hub_boost"
    assert err.what == "required field 'hub_boost' is missing"


def test_first_error_is_the_smallest_path() -> None:
    doc = _shipped("ING", "merchant_universe")
    doc["n_merchants"] = 0
    doc["countries"]["exponent"] = -1.0
    err = _invalid("ING", "merchant_universe", doc)
    assert err.where == "p.yaml field countries.exponent"


# --- cross-field rules (pydantic) --------------------------------------------------------------------


def test_crossborder_ladder_must_start_at_two() -> None:
    doc = _shipped("1A", "crossborder")
    doc["ladder"][0]["n_min"] = 3  # schema-valid (n_min ≥ 2), but the ladder no longer starts at 2
    err = _invalid("1A", "crossborder", doc)
    assert err.what == "ladder tiers must start at n_min 2 and increase strictly"
    assert err.where == "p.yaml field ladder"
    assert err.fix == "correct the value so the rule holds"


def test_crossborder_home_floor_last_tier_open() -> None:
    doc = _shipped("1A", "crossborder")
    doc["home_floor"][-1]["n_max"] = 1000
    err = _invalid("1A", "crossborder", doc)
    assert err.what == "home_floor: only the last tier may (and must) have n_max null"
    assert err.where == "p.yaml field home_floor"


def test_sectors_mcc_in_two_sectors() -> None:
    doc = _shipped("1A", "sectors")
    doc["sectors"]["restaurants"]["mccs"].append(5411)  # grocery's
    err = _invalid("1A", "sectors", doc)
    assert err.what == "MCC 5411 belongs to both grocery and restaurants"
    assert err.where == "p.yaml field sectors.restaurants"


def test_sectors_mcc_inside_another_sectors_range() -> None:
    doc = _shipped("1A", "sectors")
    doc["sectors"]["fuel"]["mccs"].append(3500)  # inside travel's [3000, 3999]
    err = _invalid("1A", "sectors", doc)
    assert err.what == "MCC 3500 belongs to both fuel and travel"


def test_sectors_reversed_range() -> None:
    doc = _shipped("1A", "sectors")
    doc["sectors"]["travel"]["ranges"] = [[3999, 3000]]
    err = _invalid("1A", "sectors", doc)
    assert err.where == "p.yaml field sectors.travel.ranges.0"
    assert err.what == "[3999, 3000] is reversed: lo must not exceed hi"


def test_sectors_must_be_the_closed_set() -> None:
    doc = _shipped("1A", "sectors")
    doc["sectors"]["gambling"] = {"mccs": [7801], "ranges": []}
    err = _invalid("1A", "sectors", doc)
    assert err.where == "p.yaml field sectors.gambling"
    assert err.what.startswith("'gambling' is not a valid key here (known: apparel, digital_goods, ")


def test_misspelt_sector_key_names_the_closest_sector() -> None:
    doc = _shipped("1A", "crossborder")
    doc["openness"]["sector"]["travell"] = 0.1
    err = _invalid("1A", "crossborder", doc)
    assert err.where == "p.yaml field openness.sector.travell"
    assert err.what == "'travell' is not a valid key here (did you mean 'travel'?)"


@pytest.mark.parametrize("table", ["hurdle.sector", "nb.sector", "nb.phi_sector", "chain.p_chain"])
def test_hurdle_nb_missing_a_sector(table: str) -> None:
    doc = _shipped("1A", "hurdle_nb")
    outer, inner = table.split(".")
    del doc[outer][inner]["grocery"]
    err = _invalid("1A", "hurdle_nb", doc)
    assert err.what == "missing sector(s) grocery: the table must name every sector"
    assert err.where == f"p.yaml field {table}"


def test_hurdle_nb_breaks_increasing() -> None:
    doc = _shipped("1A", "hurdle_nb")
    doc["gdp_bucket_breaks_usd"] = [4000, 3000, 30000, 60000]
    err = _invalid("1A", "hurdle_nb", doc)
    assert err.what == "gdp_bucket_breaks_usd must be strictly increasing"
    assert err.where == "p.yaml field gdp_bucket_breaks_usd"


def test_hurdle_nb_chain_tail_within_n_max() -> None:
    doc = _shipped("1A", "hurdle_nb")
    doc["chain"]["tail_min"] = 6000
    err = _invalid("1A", "hurdle_nb", doc)
    assert err.what == "chain.tail_min 6000 exceeds nb.n_max 5000"
    assert err.where == "p.yaml field chain.tail_min"


def test_merchant_universe_mcc_in_two_channel_groups() -> None:
    doc = _shipped("ING", "merchant_universe")
    doc["p_cnp_mcc"][1]["mccs"].append(3100)  # inside group 3's airline range [3000, 3299]
    err = _invalid("ING", "merchant_universe", doc)
    assert err.what == "MCC 3100 is in p_cnp_mcc groups 1 and 3"
    assert err.where == "p.yaml field p_cnp_mcc.3"


def test_merchant_universe_channel_group_needs_a_reason() -> None:
    doc = _shipped("ING", "merchant_universe")
    doc["p_cnp_mcc"][0]["why"] = ""
    err = _invalid("ING", "merchant_universe", doc)
    assert err.where == "p.yaml field p_cnp_mcc.0.why"


def test_merchant_universe_cap_feasible() -> None:
    doc = _shipped("ING", "merchant_universe")
    doc["countries"]["max_countries"] = 5
    doc["countries"]["max_share"] = 0.1
    err = _invalid("ING", "merchant_universe", doc)
    assert err.what == "countries.max_share × max_countries must be ≥ 1 so the cap can be met"
    assert err.where == "p.yaml field countries.max_share"


# --- strict types, finite numbers, plausible bounds --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "what"),
    [
        (100.0, "Input should be a valid integer (got 100.0)"),
        (True, "True is not of type 'integer'"),
        ("100", "'100' is not of type 'integer'"),
    ],
)
def test_integer_fields_take_only_integers(value: Any, what: str) -> None:
    doc = {**_shipped("ING", "merchant_universe"), "n_merchants": value}
    err = _invalid("ING", "merchant_universe", doc)
    assert err.where == "p.yaml field n_merchants"
    assert err.what == what


@pytest.mark.parametrize(
    ("seg", "name", "path"),
    [
        ("1A", "hurdle_nb", ("nb", "log_phi0")),
        ("1A", "crossborder", ("cnp_open_multiplier",)),
        ("1A", "currency_weights", ("hub_boost",)),
        ("1B", "tile_weights", ("background_share",)),
        ("2A", "tz_resolution", ("fallback_max",)),
        ("1A", "validation", ("checks", 0, "lo")),
    ],
)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_with_a_fix(
    seg: str, name: str, path: tuple[Any, ...], bad: float
) -> None:
    doc = _shipped(seg, name)
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = bad
    err = _invalid(seg, name, doc)
    assert err.where == "p.yaml field " + ".".join(str(p) for p in path)
    assert err.fix in (
        "write a finite number (.inf and .nan are not allowed)",
        f"correct the policy (schema contracts/policies/{seg}/{name}.schema.json)",  # a bound refused inf
    )
    if bad != bad:  # NaN passes every JSON-Schema bound, so pydantic refuses it, with its own fix
        assert err.what == "Input should be a finite number (got nan)"


@pytest.mark.parametrize(("field", "value"), [("log_mu0", 1000.0), ("log_mu0", -10.5), ("cnp", 11)])
def test_nb_coefficients_have_plausible_bounds(field: str, value: float) -> None:
    doc = _shipped("1A", "hurdle_nb")
    doc["nb"][field] = value
    err = _invalid("1A", "hurdle_nb", doc)
    assert err.where == f"p.yaml field nb.{field}"


@pytest.mark.parametrize(
    ("clamp", "value", "what"),
    [
        ("mu_clamp", [400.0, 2.0], "[400.0, 2.0] is reversed: lo must not exceed hi"),
        ("phi_clamp", [50, 0.3], "[50.0, 0.3] is reversed: lo must not exceed hi"),
        ("mu_clamp", [2.0, 6000.0], "mu_clamp upper 6000.0 exceeds n_max 5000"),
    ],
)
def test_nb_clamps_are_ordered(clamp: str, value: list[float], what: str) -> None:
    doc = _shipped("1A", "hurdle_nb")
    doc["nb"][clamp] = value
    err = _invalid("1A", "hurdle_nb", doc)
    assert err.where == f"p.yaml field nb.{clamp}"
    assert err.what == what


def test_validation_metric_must_be_computed_by_the_segment() -> None:
    doc = _shipped("1A", "validation")
    doc["checks"][2]["metric"] = "gini_outlet"
    err = _invalid("1A", "validation", doc)
    assert err.where == "p.yaml field checks.2.metric"
    assert err.what == "'gini_outlet' is not allowed (did you mean 'gini_outlets'?)"


def test_validation_metric_of_another_segment_is_refused() -> None:
    doc = _shipped("2A", "validation")
    doc["checks"][0]["metric"] = "inside_country_share"  # a 1B metric
    err = _invalid("2A", "validation", doc)
    assert err.where == "p.yaml field checks.0.metric"


def test_validation_check_ids_are_unique() -> None:
    doc = _shipped("1B", "validation")
    doc["checks"][4]["id"] = doc["checks"][1]["id"]
    err = _invalid("1B", "validation", doc)
    assert err.where == "p.yaml field checks.4.id"
    assert err.what == "check id 1B.R02 repeats checks.1"


def test_validation_check_id_carries_its_segment() -> None:
    doc = _shipped("1B", "validation")
    doc["checks"][0]["id"] = "1A.R01"
    err = _invalid("1B", "validation", doc)
    assert err.where == "p.yaml field checks.0.id"


def test_validation_band_is_ordered() -> None:
    doc = _shipped("2A", "validation")
    doc["checks"][1].update(lo=0.5, hi=0.1)
    err = _invalid("2A", "validation", doc)
    assert err.where == "p.yaml field checks.1.lo"
    assert err.what == "[0.5, 0.1] is reversed: lo must not exceed hi"


def test_unknown_raster_names_the_closest() -> None:
    err = _invalid("1B", "tiles", {**_shipped("1B", "tiles"), "raster": "ref_population_raster_0p3"})
    assert err.where == "p.yaml field raster"
    assert (
        err.what == "'ref_population_raster_0p3' is not allowed (did you mean 'ref_population_raster_0p1'?)"
    )


def test_raster_enum_is_the_registry() -> None:
    from engine.refdata.registry import RASTER_RESOLUTIONS

    enum = generated_schema("1B", "tiles")["properties"]["raster"]["enum"]
    assert enum == [f"ref_population_raster_{r}" for r in RASTER_RESOLUTIONS]


@pytest.mark.parametrize(
    ("expires", "ok"),
    [("2026-03-01", True), ("2026-13-01", False), (20260301, False), ("2026-03-01T00:00:00Z", False)],
)
def test_override_expiry_is_a_calendar_date(expires: Any, ok: bool) -> None:
    entry = {"scope": "country", "target": "FR", "tzid": "Europe/Paris", "reason": "r", "expires": expires}
    doc = {"overrides": [entry]}
    if ok:
        model = validate_policy("2A", "tz_overrides", doc, source="p.yaml", state="config")
        assert model.overrides[0].expires == dt.date(2026, 3, 1)  # type: ignore[attr-defined]
    else:
        assert _invalid("2A", "tz_overrides", doc).where == "p.yaml field overrides.0.expires"


def test_numeric_override_target_is_sealed_as_text() -> None:
    entry = {"scope": "mcc", "target": 5411, "tzid": "Europe/Paris", "reason": "r"}
    as_int = resolve_policy("2A", "tz_overrides", {"2A": {"tz_overrides": {"overrides": [entry]}}})
    as_text = resolve_policy(
        "2A", "tz_overrides", {"2A": {"tz_overrides": {"overrides": [{**entry, "target": "5411"}]}}}
    )
    assert as_int == as_text
    assert yaml12.load(as_int)["overrides"][0]["target"] == "5411"
    assert _invalid("2A", "tz_overrides", {"overrides": [{**entry, "target": True}]}).where == (
        "p.yaml field overrides.0.target"
    )


def _metric_keys(module: str) -> set[str]:
    """The string keys of the `metrics = {...}` dict a validation state computes (read from its source)."""
    tree = ast.parse(Path(module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "metrics":
            assert isinstance(node.value, ast.Dict)
            return {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    raise AssertionError(f"no metrics dict in {module}")


@pytest.mark.parametrize(
    ("seg", "module"),
    [
        ("1A", "engine/segments/l1/s1a/s9_validation.py"),
        ("1B", "engine/segments/l1/s1b/s9_validation.py"),
        ("2A", "engine/segments/l1/s2a/s5_validation.py"),
    ],
)
def test_metric_enum_is_what_the_validation_state_computes(seg: str, module: str) -> None:
    repo = Path(__file__).resolve().parents[2]
    enum = generated_schema(seg, "validation")["$defs"][f"Check{seg}"]["properties"]["metric"]["enum"]
    assert set(enum) == _metric_keys(str(repo / module))
    assert {c["metric"] for c in _shipped(seg, "validation")["checks"]} <= set(enum)


# --- resolution -------------------------------------------------------------------------------------


def test_dump_policy_exact() -> None:
    assert (
        dump_policy({"b": [1, 2], "a": {"d": "é", "c": None}})
        == "a:\n  c: null\n  d: é\nb:\n- 1\n- 2\n".encode()
    )


def test_resolve_policy_applies_overrides_exact() -> None:
    got = resolve_policy(
        "1A",
        "currency_weights",
        {"1A": {"currency_weights": {"spill_default": 0.2, "affinity": {"other": 0.5}}}, "ING": {}},
    )
    want = (
        "affinity:\n"
        "  other: 0.5\n"
        "  same_region: 2.0\n"
        "  same_subregion: 3.0\n"
        "hub_boost: 2.0\n"
        "market_basis: gdp_total\n"
        "spill_default: 0.2\n"
        "spill_exponent: 0.7\n"
        "spill_overrides:\n"
        "  EUR: 0.15\n"
        "  USD: 0.25\n"
    )
    assert got == want.encode()


@pytest.mark.parametrize(("seg", "name"), PACKS)
def test_resolved_policy_is_the_validated_model_and_reads_back(seg: str, name: str, tmp_path: Path) -> None:
    got = resolve_policy(seg, name, {})
    model = MODELS[seg][name].model_validate(_shipped(seg, name))
    assert got == dump_policy(model.model_dump(mode="json"))
    assert resolve_policy(seg, name, {}) == got
    path = tmp_path / "p.yaml"
    path.write_bytes(got)
    assert load_policy_file(seg, name, path, state="test") == model


def test_resolved_floats_are_normalised() -> None:
    # the shipped breaks are written as integers; the sealed bytes hold the float each one is
    got = yaml12.load(resolve_policy("1A", "hurdle_nb", {}))
    assert got["gdp_bucket_breaks_usd"] == [4000.0, 13000.0, 30000.0, 60000.0]
    assert all(type(x) is float for x in got["gdp_bucket_breaks_usd"])


@pytest.mark.parametrize(("a", "b"), [(1, 1.0), (0.5, 5e-1), (2, 2.000)])
def test_spellings_of_one_float_resolve_to_the_same_bytes(a: float, b: float) -> None:
    def resolved(v: float) -> bytes:
        return resolve_policy("1B", "tile_weights", {"1B": {"tile_weights": {"exponent": v}}})

    assert resolved(a) == resolved(b)


def test_dump_quotes_strings_either_yaml_version_would_type() -> None:
    doc = {"c": ["NO", "0o17", "1_000", "on", "2026-01-05", "x"]}
    text = dump_policy(doc)
    assert text == b"c:\n- 'NO'\n- '0o17'\n- '1_000'\n- 'on'\n- '2026-01-05'\n- x\n"
    assert yaml12.load(text) == doc


def test_resolve_policy_override_only_touches_its_pack() -> None:
    overrides = {"ING": {"merchant_universe": {"n_merchants": 500}}}
    doc = yaml12.load(resolve_policy("ING", "merchant_universe", overrides))
    shipped = _shipped("ING", "merchant_universe")
    assert doc == {**shipped, "n_merchants": 500}
    assert resolve_policy("1A", "sectors", overrides) == resolve_policy("1A", "sectors", {})


def test_resolve_policy_rejects_an_invalid_override() -> None:
    with pytest.raises(EngineError) as info:
        resolve_policy(
            "ING", "merchant_universe", {"ING": {"merchant_universe": {"countries": {"exponent": 0}}}}
        )
    err = info.value
    assert err.code == "E_POLICY_INVALID"
    assert (
        err.where
        == "config/policies/ING/merchant_universe.yaml (+ policy_overrides) field countries.exponent"
    )


def test_validate_policy_does_not_mutate_input() -> None:
    doc = _shipped("1A", "crossborder")
    before = copy.deepcopy(doc)
    validate_policy("1A", "crossborder", doc, source="p.yaml", state="t")
    assert doc == before


def test_horizon_is_resolved_from_the_run_config() -> None:
    from engine.core.config import load_run_config

    cfg = load_run_config({"preset": "tiny"})
    got = resolve_policy("CFG", "horizon", {}, {"horizon": cfg.horizon.as_policy()})
    want = (
        "cache_margin_days_after: 200\ncache_margin_days_before: 7\ndays: 14\n"
        "start_utc: '2026-03-02T00:00:00Z'\n"
    )
    assert got == want.encode()
    start, end = cfg.horizon.window()
    assert (start.isoformat(), end.isoformat()) == ("2026-02-23T00:00:00+00:00", "2026-10-02T00:00:00+00:00")


def test_policy_file_with_broken_yaml_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("a: [1, 2\nb: 3\n")
    with pytest.raises(EngineError) as info:
        load_policy_file("1B", "tiles", path, state="1B.S0")
    err = info.value
    assert (err.code, err.state, err.where) == ("E_POLICY_INVALID", "1B.S0", str(path))
    assert err.what == "not valid YAML: did not find expected ',' or ']' at line 2, column 2"


def test_policy_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(EngineError) as info:
        load_policy_file("1B", "tiles", path, state="1B.S0")
    assert info.value.where == f"{path} field <root>"
    assert info.value.what == "['a', 'b'] is not of type 'object'"
