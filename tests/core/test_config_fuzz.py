"""Fuzzed invalid run configs and policy overrides: every one ends in one E_CONFIG_INVALID / E_POLICY_INVALID
naming the field it broke, never another exception (wrong types, bool-as-int, float-as-int, NaN/inf, naive
timestamps, unknown names, reversed bounds, duplicates, out-of-range values). Each mutation knows the field it
broke, so the expected `where` is exact."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from snakemake.cli import parse_config

from engine.core import yaml12
from engine.core.config import PRESETS, SCENARIOS, RunConfig, cli_typed, load_run_config, segment_policies
from engine.core.errors import EngineError
from engine.core.horizon import Horizon
from engine.core.policy import resolve_policy

SEGMENT_POLICIES = segment_policies()
FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Path_ = tuple[str | int, ...]
VALID_START = "2026-01-05T00:00:00Z"

# --- values that are never valid for a type --------------------------------------------------------

WORDS = st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True).filter(
    lambda w: w not in {"true", "false", "null"}
)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
CONTAINERS = st.one_of(st.lists(st.integers(), max_size=2), st.dictionaries(WORDS, st.integers(), max_size=2))
NOT_A_NUMBER = st.one_of(st.booleans(), NON_FINITE, WORDS, CONTAINERS)
NOT_AN_INT = st.one_of(
    NOT_A_NUMBER,
    st.integers(-(10**6), 10**6).map(float),  # float-as-int
    st.floats(-1e6, 1e6).filter(lambda f: not f.is_integer()),
)
NOT_A_STRING = st.one_of(st.booleans(), st.integers(), st.floats(-1e6, 1e6), NON_FINITE, CONTAINERS)


def _int_outside(lo: int, hi: int) -> st.SearchStrategy[Any]:
    """Anything but an int in [lo, hi]."""
    return st.one_of(NOT_AN_INT, st.integers(max_value=lo - 1), st.integers(min_value=hi + 1))


# --- run-config mutations: (raw config, the field path it broke) --------------------------------------


def _horizon(**fields: Any) -> dict[str, Any]:
    return {"horizon": {"start_utc": VALID_START, "days": 14, **fields}}


NAIVE_STARTS = st.one_of(
    st.datetimes().map(lambda d: d.isoformat(timespec="seconds")),  # no zone
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M")),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    WORDS,
)
FAR_STARTS = st.one_of(
    st.integers(1, 1969).map(lambda y: f"{y:04d}-06-01T00:00:00Z"),
    st.integers(2200, 9999).map(lambda y: f"{y:04d}-06-01T00:00:00+02:00"),
)


@st.composite
def bad_seeds(draw: st.DrawFn) -> tuple[dict[str, Any], Path_]:
    seeds = draw(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=4, unique=True))
    i = draw(st.integers(0, len(seeds)))
    kind = draw(st.sampled_from(["item", "duplicate", "not_list"]))
    if kind == "not_list":
        return {"seeds": draw(st.one_of(st.integers(), WORDS, st.booleans()))}, ("seeds",)
    if kind == "duplicate":
        return {"seeds": [*seeds, seeds[i % len(seeds)]]}, ("seeds", len(seeds))
    return {"seeds": [*seeds[:i], draw(_int_outside(0, 2**64 - 1)), *seeds[i:]]}, ("seeds", i)


@st.composite
def bad_scenarios(draw: st.DrawFn) -> tuple[dict[str, Any], Path_]:
    names = list(draw(st.permutations(SCENARIOS)))[: draw(st.integers(1, 2))]
    i = draw(st.integers(0, len(names)))
    if draw(st.booleans()):
        return {"scenarios": [*names, names[i % len(names)]]}, ("scenarios", len(names))
    bad = draw(st.one_of(WORDS.filter(lambda w: w not in SCENARIOS), NOT_A_STRING))
    return {"scenarios": [*names[:i], bad, *names[i:]]}, ("scenarios", i)


@st.composite
def bad_overrides(draw: st.DrawFn) -> tuple[dict[str, Any], Path_]:
    """Unknown segment, policy or top-level key in policy_overrides (values are the plan's to check)."""
    seg = draw(st.sampled_from(sorted(SEGMENT_POLICIES)))
    name = draw(st.sampled_from(sorted(SEGMENT_POLICIES[seg])))
    level = draw(st.sampled_from(["segment", "policy", "key"]))
    if level == "segment":
        bad = draw(
            st.from_regex(r"[0-9A-Za-z]{1,4}", fullmatch=True).filter(lambda s: s not in SEGMENT_POLICIES)
        )
        return {"policy_overrides": {bad: {}}}, ("policy_overrides", bad)
    if level == "policy":
        bad = draw(WORDS.filter(lambda w: w not in SEGMENT_POLICIES[seg]))
        return {"policy_overrides": {seg: {bad: {}}}}, ("policy_overrides", seg, bad)
    key = draw(WORDS.filter(lambda w: w not in SEGMENT_POLICIES[seg][name].model_fields))
    return {"policy_overrides": {seg: {name: {key: 1}}}}, ("policy_overrides", seg, name, key)


CONFIG_MUTATIONS = st.one_of(
    bad_seeds(),
    bad_scenarios(),
    bad_overrides(),
    _int_outside(1, 4096).map(lambda v: ({"shards": v}, ("shards",))),
    NAIVE_STARTS.map(lambda v: (_horizon(start_utc=v), ("horizon", "start_utc"))),
    FAR_STARTS.map(lambda v: (_horizon(start_utc=v), ("horizon", "start_utc"))),
    _int_outside(1, 3660).map(lambda v: (_horizon(days=v), ("horizon", "days"))),
    _int_outside(0, 366).map(
        lambda v: (_horizon(cache_margin_days_before=v), ("horizon", "cache_margin_days_before"))
    ),
    _int_outside(0, 3660).map(
        lambda v: (_horizon(cache_margin_days_after=v), ("horizon", "cache_margin_days_after"))
    ),
    WORDS.filter(lambda w: w not in RunConfig.model_fields).map(lambda k: ({k: 1}, (k,))),
    WORDS.filter(lambda w: w not in Horizon.model_fields).map(lambda k: (_horizon(**{k: 1}), ("horizon", k))),
    st.one_of(NOT_A_STRING, st.just("")).map(lambda v: ({"output_root": v}, ("output_root",))),
    WORDS.map(
        lambda p: ({"merchant_universe": {"source": "generate", "path": p}}, ("merchant_universe", "path"))
    ),
    st.just(({"merchant_universe": {"source": "file"}}, ("merchant_universe", "path"))),
    st.one_of(WORDS.filter(lambda w: w not in {"generate", "file"}), NOT_A_STRING).map(
        lambda v: ({"merchant_universe": {"source": v}}, ("merchant_universe", "source"))
    ),
    st.one_of(WORDS.filter(lambda w: w not in PRESETS), NOT_A_STRING).map(
        lambda v: ({"preset": v}, ("preset",))
    ),
)


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path)


def _as_command_line(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The same config as `--config key=value` items through Snakemake's own parser, when YAML can say it
    (a quoted string that reads as a number cannot survive the command line, so those stay a dict)."""
    flow = {"default_flow_style": True, "width": 10**9}
    items = [
        f"{k}={yaml.safe_dump(v, **flow).strip() if isinstance(v, dict | list) else v}"
        for k, v in raw.items()
    ]
    try:
        parsed = parse_config(items)
    except ValueError:  # Snakemake's own refusal (a one-letter key): not ours to test, keep the dict form
        return None
    return parsed if repr(cli_typed(parsed)) == repr(cli_typed(raw)) else None


@FUZZ
@given(mutation=CONFIG_MUTATIONS, via_cli=st.booleans())
def test_invalid_run_configs_name_their_field(mutation: tuple[dict[str, Any], Path_], via_cli: bool) -> None:
    patch, path = mutation
    raw = {"preset": "tiny", **patch}
    if via_cli:
        raw = _as_command_line(raw) or raw
    with pytest.raises(EngineError) as info:
        load_run_config(raw)
    err = info.value
    assert err.code == "E_CONFIG_INVALID", err.line()
    assert err.where == f"config field {_dotted(path)}", err.line()
    assert err.fix and "\n" not in err.line()


# --- policy-override mutations ------------------------------------------------------------------------

PACKS = sorted((seg, name) for seg, models in SEGMENT_POLICIES.items() for name in models)
# the resolved (normalised) packs: a leaf's type is its field's (`4000` for a float field reads back 4000.0)
SHIPPED = {(seg, name): yaml12.load(resolve_policy(seg, name, {})) for seg, name in PACKS}


def _children(node: Any) -> list[tuple[str | int, Any]]:
    return (
        list(node.items())
        if isinstance(node, dict)
        else list(enumerate(node))
        if isinstance(node, list)
        else []
    )


def _leaves(node: Any, path: Path_ = ()) -> list[tuple[Path_, Any]]:
    if not isinstance(node, dict | list):
        return [(path, node)]
    return [leaf for k, v in _children(node) for leaf in _leaves(v, (*path, k))]


def _dicts(node: Any, path: Path_ = ()) -> list[Path_]:
    return ([path] if isinstance(node, dict) else []) + [
        p for k, v in _children(node) for p in _dicts(v, (*path, k))
    ]


LEAVES = [(pack, path, value) for pack, doc in SHIPPED.items() for path, value in _leaves(doc)]
DICTS = [(pack, path) for pack, doc in SHIPPED.items() for path in _dicts(doc) if path]


def _bad_leaf(value: Any) -> st.SearchStrategy[Any]:
    if value is None:  # nullable: only a value of no admissible type is invalid
        return st.one_of(st.booleans(), NON_FINITE, WORDS)
    if isinstance(value, str):
        return st.one_of(NOT_A_STRING, st.just(f"{value}_bogus"))
    if isinstance(
        value, bool
    ):  # the other bool is valid (a flag like `enabled` can break only a cross-field rule)
        return st.one_of(st.integers(), st.floats(-1e6, 1e6), NON_FINITE, WORDS, CONTAINERS)
    return NOT_AN_INT if isinstance(value, int) else NOT_A_NUMBER


def _set(doc: dict[str, Any], path: Path_, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


@st.composite
def leaf_mutations(draw: st.DrawFn) -> tuple[tuple[str, str], Path_, dict[str, Any]]:
    pack, path, value = draw(st.sampled_from(LEAVES))
    return pack, path, _set(SHIPPED[pack], path, draw(_bad_leaf(value)))


@st.composite
def unknown_keys(draw: st.DrawFn) -> tuple[tuple[str, str], Path_, dict[str, Any]]:
    pack, path = draw(st.sampled_from(DICTS))
    key = "zz_" + draw(WORDS)
    node: Any = SHIPPED[pack]
    for part in path:
        node = node[part]
    return pack, (*path, key), _set(SHIPPED[pack], path, {**node, key: 1})


@st.composite
def rule_breaks(draw: st.DrawFn) -> tuple[tuple[str, str], Path_, dict[str, Any]]:
    """Cross-field rules: reversed clamps and bands, duplicate check ids."""
    kind = draw(st.sampled_from(["clamp", "band", "duplicate_id"]))
    if kind == "clamp":
        clamp = draw(st.sampled_from(["mu_clamp", "phi_clamp"]))
        hi = draw(st.floats(0.01, 100.0))
        lo = draw(st.floats(hi, 5000.0, exclude_min=True))
        return ("1A", "hurdle_nb"), ("nb", clamp), _set(SHIPPED["1A", "hurdle_nb"], ("nb", clamp), [lo, hi])
    pack = (draw(st.sampled_from(["1A", "1B", "2A"])), "validation")
    checks = SHIPPED[pack]["checks"]
    j = draw(st.integers(1, len(checks) - 1))
    if kind == "duplicate_id":
        i = draw(st.integers(0, j - 1))
        return pack, ("checks", j, "id"), _set(SHIPPED[pack], ("checks", j, "id"), checks[i]["id"])
    hi = draw(st.floats(-1e6, 1e6))
    lo = draw(st.floats(hi, 1e7, exclude_min=True))
    return pack, ("checks", j, "lo"), _set(SHIPPED[pack], ("checks", j), {**checks[j], "lo": lo, "hi": hi})


# plausibility and range bounds the models state: (pack, path, values outside them)
OUT_OF_RANGE = [
    (("1A", "hurdle_nb"), ("nb", "log_mu0"), st.floats(10.0, 1e300, exclude_min=True)),
    (("1A", "hurdle_nb"), ("hurdle", "beta0"), st.floats(-1e300, -10.0, exclude_max=True)),
    (("1A", "hurdle_nb"), ("nb", "phi_sector", "fuel"), st.floats(0.2, 1e6, exclude_min=True)),
    (
        ("1A", "hurdle_nb"),
        ("nb", "n_max"),
        st.one_of(st.integers(max_value=1), st.integers(min_value=100_001)),
    ),
    (("1A", "crossborder"), ("open_prob", 2, "p"), st.floats(1.0, 1e9, exclude_min=True)),
    (("1A", "crossborder"), ("openness", "cnp"), st.floats(1.0, 1e9, exclude_min=True)),
    (("1A", "crossborder"), ("ztp", "max_attempts"), st.one_of(st.integers(max_value=0), st.integers(1025))),
    (("1A", "currency_weights"), ("spill_default",), st.floats(1.0, 1e9)),
    (("1A", "currency_weights"), ("spill_exponent",), st.floats(4.0, 1e9, exclude_min=True)),
    (
        ("ING", "merchant_universe"),
        ("n_merchants",),
        st.one_of(st.integers(max_value=0), st.integers(10**7 + 1)),
    ),
    (("ING", "merchant_universe"), ("countries", "exponent"), st.floats(-1e9, 0.0)),
    (("1B", "placement"), ("jitter_max_attempts",), st.one_of(st.integers(max_value=0), st.integers(256))),
    (("1B", "tile_weights"), ("background_share",), st.floats(1.0, 1e9)),
    (("2A", "tz_resolution"), ("epsilon_deg",), st.floats(1.0, 1e9)),
    (("2A", "validation"), ("min_support",), st.integers(max_value=0)),
]


@st.composite
def out_of_range(draw: st.DrawFn) -> tuple[tuple[str, str], Path_, dict[str, Any]]:
    pack, path, values = draw(st.sampled_from(OUT_OF_RANGE))
    return pack, path, _set(SHIPPED[pack], path, draw(values))


POLICY_MUTATIONS = st.one_of(leaf_mutations(), unknown_keys(), rule_breaks(), out_of_range())


@FUZZ
@given(mutation=POLICY_MUTATIONS)
def test_invalid_policy_overrides_name_their_field(
    mutation: tuple[tuple[str, str], Path_, dict[str, Any]],
) -> None:
    (seg, name), path, doc = mutation
    top = path[0]
    raw = {"preset": "tiny", "policy_overrides": {seg: {name: {top: doc[top]}}}}
    with pytest.raises(EngineError) as info:
        cfg = load_run_config(raw)
        resolve_policy(seg, name, cfg.policy_overrides)
    err = info.value
    if len(path) == 1 and top not in SEGMENT_POLICIES[seg][name].model_fields:  # an unknown top-level key
        assert err.code == "E_CONFIG_INVALID", err.line()
        assert err.where == f"config field policy_overrides.{seg}.{name}.{top}", err.line()
    else:
        assert err.code == "E_POLICY_INVALID", err.line()
        label = f"config/policies/{seg}/{name}.yaml (+ policy_overrides)"
        assert err.where == f"{label} field {_dotted(path)}", err.line()
    assert err.fix and "\n" not in err.line()


def test_the_fuzzed_leaves_cover_every_pack() -> None:
    assert {pack for pack, _, _ in LEAVES} == {p for p in PACKS if p != ("2A", "tz_overrides")}  # ships empty
    assert len(LEAVES) > 200
