"""Policy packs: strict JSON Schema + pydantic, generated schemas without drift, resolved bytes (§7, §8)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.core.errors import EngineError
from engine.core.policy import (
    MODELS,
    POLICY_DIR,
    dump_policy,
    generated_schema,
    load_policy_file,
    resolve_policy,
    schema_path,
    schema_text,
    validate_policy,
)

# CFG packs are resolved from the run config itself, not shipped under config/policies
PACKS = sorted((seg, name) for seg, models in MODELS.items() for name in models if seg != "CFG")


def _shipped(seg: str, name: str) -> dict[str, Any]:
    return yaml.safe_load((POLICY_DIR / seg / f"{name}.yaml").read_text())


def _invalid(seg: str, name: str, doc: Any) -> EngineError:
    with pytest.raises(EngineError) as info:
        validate_policy(seg, name, doc, source="p.yaml", state="config")
    err = info.value
    assert err.code == "E_POLICY_INVALID"
    assert err.state == "config"
    assert err.where.startswith("p.yaml field ")
    return err


def test_every_model_has_a_shipped_policy_and_vice_versa() -> None:
    shipped = sorted((p.parent.name, p.stem) for p in POLICY_DIR.glob("*/*.yaml"))
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


def test_unknown_top_level_key() -> None:
    doc = _shipped("ING", "merchant_universe")
    doc["n_merchant"] = 5
    err = _invalid("ING", "merchant_universe", doc)
    assert err.where == "p.yaml field <root>"
    assert "'n_merchant' was unexpected" in err.what


def test_unknown_nested_key_names_its_parent_path() -> None:
    doc = _shipped("ING", "merchant_universe")
    doc["countries"]["max_countriez"] = 5
    err = _invalid("ING", "merchant_universe", doc)
    assert err.where == "p.yaml field countries"
    assert "'max_countriez' was unexpected" in err.what
    assert err.line().startswith("ERROR E_POLICY_INVALID config: ")
    assert "(p.yaml field countries)" in err.line()


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
    assert "'hub_boost' is a required property" in err.what


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
    assert "ladder tiers must start at n_min 2 and increase strictly" in err.what


def test_crossborder_home_floor_last_tier_open() -> None:
    doc = _shipped("1A", "crossborder")
    doc["home_floor"][-1]["n_max"] = 1000
    err = _invalid("1A", "crossborder", doc)
    assert "only the last tier may (and must) have n_max null" in err.what


def test_sectors_mcc_in_two_sectors() -> None:
    doc = _shipped("1A", "sectors")
    doc["sectors"]["restaurants"]["mccs"].append(5411)  # grocery's
    err = _invalid("1A", "sectors", doc)
    assert "MCC 5411 belongs to both" in err.what
    assert "grocery" in err.what and "restaurants" in err.what


def test_sectors_mcc_inside_another_sectors_range() -> None:
    doc = _shipped("1A", "sectors")
    doc["sectors"]["fuel"]["mccs"].append(3500)  # inside travel's [3000, 3999]
    err = _invalid("1A", "sectors", doc)
    assert "MCC 3500 belongs to both" in err.what


def test_sectors_must_be_the_closed_set() -> None:
    doc = _shipped("1A", "sectors")
    doc["sectors"]["gambling"] = {"mccs": [7801], "ranges": []}
    err = _invalid("1A", "sectors", doc)
    assert "sectors must be exactly" in err.what


@pytest.mark.parametrize("table", ["hurdle.sector", "nb.sector", "nb.phi_sector"])
def test_hurdle_nb_missing_a_sector(table: str) -> None:
    doc = _shipped("1A", "hurdle_nb")
    outer, inner = table.split(".")
    del doc[outer][inner]["grocery"]
    err = _invalid("1A", "hurdle_nb", doc)
    assert err.what.endswith(f"{table} must name every sector exactly once")


def test_hurdle_nb_breaks_increasing() -> None:
    doc = _shipped("1A", "hurdle_nb")
    doc["gdp_bucket_breaks_usd"] = [4000, 3000, 30000, 60000]
    err = _invalid("1A", "hurdle_nb", doc)
    assert "strictly increasing" in err.what


def test_merchant_universe_cap_feasible() -> None:
    doc = _shipped("ING", "merchant_universe")
    doc["countries"]["max_countries"] = 5
    doc["countries"]["max_share"] = 0.1
    err = _invalid("ING", "merchant_universe", doc)
    assert "max_share × max_countries must be ≥ 1" in err.what


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


def test_resolve_policy_without_overrides_is_the_shipped_policy_sorted() -> None:
    for seg, name in PACKS:
        got = resolve_policy(seg, name, {})
        assert got == dump_policy(_shipped(seg, name))
        assert yaml.safe_load(got) == _shipped(seg, name)
        assert resolve_policy(seg, name, {}) == got


def test_resolve_policy_override_only_touches_its_pack() -> None:
    overrides = {"ING": {"merchant_universe": {"n_merchants": 500}}}
    doc = yaml.safe_load(resolve_policy("ING", "merchant_universe", overrides))
    shipped = _shipped("ING", "merchant_universe")
    assert doc == {**shipped, "n_merchants": 500}
    assert resolve_policy("1A", "sectors", overrides) == dump_policy(_shipped("1A", "sectors"))


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
        "start_utc: '2026-01-05T00:00:00Z'\n"
    )
    assert got == want.encode()
    start, end = cfg.horizon.window()
    assert (start.isoformat(), end.isoformat()) == ("2025-12-29T00:00:00+00:00", "2026-08-07T00:00:00+00:00")
