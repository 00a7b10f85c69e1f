"""Codes in policies (countries, MCCs, tzids, currencies) against the references each S0 seals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pydantic import BaseModel

from engine.core import sealing, yaml12
from engine.core.config import load_run_config
from engine.core.errors import EngineError
from engine.core.plan import build_plan
from engine.core.policy import POLICY_DIR, policy_models
from engine.core.policy_codes import check_policy_codes, closest_code, coded_values

MODELS = policy_models()

COUNTRIES = [
    "AE",
    "BY",
    "CH",
    "CU",
    "DE",
    "FR",
    "GB",
    "HK",
    "IR",
    "JP",
    "KP",
    "NL",
    "NO",
    "RU",
    "SG",
    "SY",
    "US",
]
MCCS = [1520, 4829, 5411, 5967, 6051, 7995]
TZ = [("FR", "Europe/Paris"), ("NO", "Europe/Oslo"), ("US", "America/New_York")]
CURRENCIES = [("US", "USD"), ("DE", "EUR"), ("NO", "NOK")]


def _refs(tmp_path: Path, *names: str) -> dict[str, Path]:
    """Small stand-ins of the sealed references, with the real column names and dtypes."""
    frames = {
        "ref_countries": pl.DataFrame({"iso2": COUNTRIES}),
        "ref_mcc": pl.DataFrame({"mcc": pl.Series(MCCS, dtype=pl.UInt16)}),
        "ref_tz_country": pl.DataFrame({"iso2": [c for c, _ in TZ], "tzid": [t for _, t in TZ]}),
        "ref_currencies": pl.DataFrame(
            {"iso2": [c for c, _ in CURRENCIES], "currency": [c for _, c in CURRENCIES]}
        ),
    }
    paths = {}
    for name in names:
        paths[name] = tmp_path / f"{name}.parquet"
        frames[name].write_parquet(paths[name])
    return paths


def _model(seg: str, name: str, **changes: Any) -> BaseModel:
    doc = yaml12.load((POLICY_DIR / seg / f"{name}.yaml").read_text())
    return MODELS[seg][name].model_validate({**doc, **changes})


def _refused(seg: str, name: str, model: BaseModel, paths: dict[str, Path]) -> EngineError:
    key = f"{seg}/{name}.yaml"
    with pytest.raises(EngineError) as info:
        check_policy_codes({key: model}, {**paths, key: Path(f"/sealed/{name}.yaml")}, "X.S0")
    err = info.value
    assert err.code == "E_POLICY_INVALID"
    assert err.state == "X.S0"
    return err


def test_coded_values_of_the_shipped_crossborder() -> None:
    found = list(coded_values(_model("1A", "crossborder")))
    assert [p for p, k, _ in found if k == "mcc"] == [("deny_cnp_mcc", i) for i in range(4)]
    assert [c for _, k, c in found if k == "mcc"] == [4829, 5967, 6051, 7995]
    countries = [(p[0], c) for p, k, c in found if k == "country"]
    assert countries[:6] == [("deny_home", c) for c in ["BY", "CU", "IR", "KP", "RU", "SY"]]
    assert len(countries) == 6 + 5 + 10  # deny_home, deny_dest, hubs
    assert {k for _, k, _ in found} == {"country", "mcc"}


def test_coded_values_follow_an_overrides_scope() -> None:
    entries = [
        {"scope": "country", "target": "FR", "tzid": "Europe/Paris", "reason": "r"},
        {"scope": "mcc", "target": "5411", "tzid": "Europe/Oslo", "reason": "r"},
        {"scope": "site", "target": "77", "tzid": "America/New_York", "reason": "r"},
    ]
    found = list(coded_values(MODELS["2A"]["tz_overrides"].model_validate({"overrides": entries})))
    assert found == [
        (("overrides", 0, "target"), "country", "FR"),
        (("overrides", 0, "tzid"), "tzid", "Europe/Paris"),
        (("overrides", 1, "target"), "mcc", "5411"),
        (("overrides", 1, "tzid"), "tzid", "Europe/Oslo"),
        (("overrides", 2, "tzid"), "tzid", "America/New_York"),  # a site id has no reference
    ]


def test_currency_keys_and_sector_mccs_are_coded() -> None:
    found = list(coded_values(_model("1A", "currency_weights")))
    assert found == [
        (("spill_overrides", "EUR"), "currency", "EUR"),
        (("spill_overrides", "USD"), "currency", "USD"),
    ]
    sectors = list(coded_values(_model("1A", "sectors")))
    assert (("sectors", "grocery", "mccs", 0), "mcc", 5411) in sectors
    assert not any("ranges" in p for p, _, _ in sectors)  # ranges classify, they are not codes


def test_shipped_crossborder_passes_against_references_listing_its_codes(tmp_path: Path) -> None:
    paths = _refs(tmp_path, "ref_countries", "ref_mcc")
    key = "1A/crossborder.yaml"
    check_policy_codes({key: _model("1A", "crossborder")}, {**paths, key: tmp_path / "c.yaml"}, "1A.S0")


@pytest.mark.parametrize(
    ("field", "value", "where", "what"),
    [
        (
            "deny_home",
            ["BY", "ZZ"],
            "deny_home.1",
            "country code 'ZZ' is not in ref_countries",
        ),
        ("hubs", ["US", "NX"], "hubs.1", "country code 'NX' is not in ref_countries (closest: 'NL')"),
        ("deny_cnp_mcc", [4829, 1234], "deny_cnp_mcc.1", "mcc code 1234 is not in ref_mcc (closest: 1520)"),
    ],
)
def test_unknown_codes_name_field_and_closest(
    tmp_path: Path, field: str, value: list[Any], where: str, what: str
) -> None:
    err = _refused(
        "1A",
        "crossborder",
        _model("1A", "crossborder", **{field: value}),
        _refs(tmp_path, "ref_countries", "ref_mcc"),
    )
    assert err.where == f"/sealed/crossborder.yaml field {where}"
    assert err.what == what
    assert err.fix == f"use a code {what.split(' is not in ')[1].split(' ')[0]} lists"


def test_unknown_currency_key(tmp_path: Path) -> None:
    model = _model("1A", "currency_weights", spill_overrides={"EUR": 0.1, "NOX": 0.2})
    err = _refused("1A", "currency_weights", model, _refs(tmp_path, "ref_currencies"))
    assert err.where == "/sealed/currency_weights.yaml field spill_overrides.NOX"
    assert err.what == "currency code 'NOX' is not in ref_currencies (closest: 'NOK')"


def test_sector_mcc_missing_from_ref_mcc(tmp_path: Path) -> None:
    err = _refused("1A", "sectors", _model("1A", "sectors"), _refs(tmp_path, "ref_mcc"))
    assert err.where == "/sealed/sectors.yaml field sectors.grocery.mccs.1"  # 5411 is listed, 5499 is not
    assert err.what == "mcc code 5499 is not in ref_mcc (closest: 5411)"


@pytest.mark.parametrize(
    ("entry", "where", "what"),
    [
        (
            {"scope": "site", "target": "1", "tzid": "Mars/Base", "reason": "r"},
            "overrides.0.tzid",
            "tzid code 'Mars/Base' is not in ref_tz_country (closest: 'Europe/Paris')",
        ),
        (
            {"scope": "country", "target": "XX", "tzid": "Europe/Paris", "reason": "r"},
            "overrides.0.target",
            "country code 'XX' is not in ref_countries",
        ),
    ],
)
def test_unknown_override_codes(tmp_path: Path, entry: dict[str, str], where: str, what: str) -> None:
    model = MODELS["2A"]["tz_overrides"].model_validate({"overrides": [entry]})
    err = _refused("2A", "tz_overrides", model, _refs(tmp_path, "ref_tz_country", "ref_countries"))
    assert err.where == f"/sealed/tz_overrides.yaml field {where}"
    assert err.what == what


def test_kinds_without_a_sealed_reference_are_left_alone(tmp_path: Path) -> None:
    # 2A does not seal ref_mcc: an mcc-scope target is checked by the segments that seal it, not here
    entry = {"scope": "mcc", "target": "1234", "tzid": "Europe/Paris", "reason": "r"}
    model = MODELS["2A"]["tz_overrides"].model_validate({"overrides": [entry]})
    paths = {
        **_refs(tmp_path, "ref_tz_country", "ref_countries"),
        "2A/tz_overrides.yaml": tmp_path / "o.yaml",
    }
    check_policy_codes({"2A/tz_overrides.yaml": model}, paths, "2A.S0")
    with pytest.raises(EngineError) as info:
        check_policy_codes({"2A/tz_overrides.yaml": model}, {**paths, **_refs(tmp_path, "ref_mcc")}, "2A.S0")
    assert info.value.what == "mcc code 1234 is not in ref_mcc (closest: 1520)"


def test_closest_code() -> None:
    assert closest_code(1234, [1000, 1300, 1200]) == 1200
    assert closest_code(1250, [1200, 1300]) == 1200  # ties: the smaller code
    assert closest_code("Europe/Pariss", ["Asia/Tokyo", "Europe/Paris"]) == "Europe/Paris"
    assert closest_code("fr", ["DE", "FR"]) == "FR"
    assert closest_code("NX", ["NL", "NO"]) == "NL"  # ties: the first
    assert closest_code("ZZ", ["DE", "FR"]) is None


def test_check_inputs_refuses_an_unknown_tzid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """2A.S0's common opening (sealing.check_inputs) runs the code check on 2A's own sealed policies."""
    entry = {"scope": "country", "target": "FR", "tzid": "Mars/Base", "reason": "r"}
    raw = {
        "preset": "tiny",
        "output_root": str(tmp_path),
        "policy_overrides": {"2A": {"tz_overrides": {"overrides": [entry]}}},
    }
    plan = build_plan(load_run_config(raw))["2A"]
    for pol in plan.policies:
        (tmp_path / pol.relpath).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / pol.relpath).write_bytes(pol.data)
    refs = _refs(tmp_path, "ref_tz_country", "ref_countries")
    sealed = [{"id": k, "kind": "reference", "path": p.name, "sha256": ""} for k, p in refs.items()]
    monkeypatch.setattr(sealing, "check_references", lambda root, spec, state: sealed)  # real refs: e2e tests
    with pytest.raises(EngineError) as info:
        sealing.check_inputs(tmp_path, plan.spec(), "2A.S0")
    pol = next(p for p in plan.policies if p.key == "2A/tz_overrides.yaml")
    assert info.value.code == "E_POLICY_INVALID"
    assert info.value.where == f"{tmp_path / pol.relpath} field overrides.0.tzid"
    assert info.value.what == "tzid code 'Mars/Base' is not in ref_tz_country (closest: 'Europe/Paris')"
