"""6A.S0's own checks on hand-made policies and demand (design layer2_3.md §3.2): a mix that does not sum to 1
(E_POLICY_INVALID), a demand country whose UN M49 sub-region has no region (E_6A_REGION_UNMAPPED), and caps
below what their samplers can produce (E_6A_CAP_INCONSISTENT)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from engine.core import yaml12
from engine.core.errors import EngineError
from engine.core.policy import load_policy_file
from engine.segments.l3.s6a import s0_gate
from engine.segments.l3.s6a.common import country_regions, demand_by_country
from engine.segments.l3.s6a.policy import Accounts, Instruments, Population

POLICIES = Path(__file__).resolve().parents[2] / "config" / "policies" / "6A"


def doc(name: str) -> dict:
    return yaml12.load((POLICIES / f"{name}.yaml").read_text())


def ref_countries() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "iso2": ["AE", "DE", "FJ"],
            "iso_num": pl.Series([784, 276, 242], dtype=pl.UInt16),
            "subregion": ["Western Asia", "Western Europe", "Melanesia"],
        }
    )


def test_mix_not_summing_to_one_is_refused(tmp_path: Path) -> None:
    pop = doc("population")
    pop["type_mix"]["EUROPE"] = {"RETAIL": 0.96, "BUSINESS": 0.035}
    path = tmp_path / "population.yaml"
    path.write_text(yaml12.dump(pop))
    with pytest.raises(EngineError) as err:
        load_policy_file("6A", "population", path, state="6A.S0")
    assert err.value.code == "E_POLICY_INVALID" and "type_mix.EUROPE" in err.value.where + err.value.what
    inst = doc("instruments")
    inst["schemes"]["LATAM"]["OTHER"] = 0.09  # sums to 1.01
    with pytest.raises(ValueError, match="sums to"):
        Instruments.model_validate(inst)


def test_every_demand_country_needs_a_region() -> None:
    pop = Population.model_validate(doc("population"))
    rows = country_regions(["DE", "AE"], ref_countries(), pop, "6A.S0")
    assert rows.select("country_iso", "region").rows() == [("AE", "MIDDLE_EAST"), ("DE", "EUROPE")]
    unmapped = doc("population")
    del unmapped["region_map"]["Melanesia"]
    pop = Population.model_validate(unmapped)
    country_regions(["DE", "AE"], ref_countries(), pop, "6A.S0")  # FJ has no demand: not needed
    with pytest.raises(EngineError) as err:
        country_regions(["DE", "FJ"], ref_countries(), pop, "6A.S0")
    assert (
        err.value.code == "E_6A_REGION_UNMAPPED" and "FJ" in err.value.what and "Melanesia" in err.value.what
    )
    with pytest.raises(EngineError) as err:
        country_regions(["XK"], ref_countries(), pop, "6A.S0")  # not in the reference at all
    assert err.value.code == "E_6A_REGION_UNMAPPED"


def test_demand_countries_are_those_with_positive_demand() -> None:
    profile = pl.DataFrame(
        {"legal_country_iso": ["FR", "DE", "FR", "IT"], "weekly_expected": [1.0, 2.0, 3.0, 0.0]}
    )
    assert demand_by_country(profile).rows() == [("DE", 2.0), ("FR", 4.0)]


def test_caps_must_hold_what_the_samplers_produce() -> None:
    accounts = Accounts.model_validate(doc("accounts"))
    s0_gate.check_instrument_caps(Instruments.model_validate(doc("instruments")), accounts)
    seven = doc("instruments")
    seven["slots"]["CURRENT"].append({"type": "DEBIT_VIRTUAL", "p": 0.1})
    with pytest.raises(EngineError) as err:
        s0_gate.check_instrument_caps(Instruments.model_validate(seven), accounts)
    assert err.value.code == "E_6A_CAP_INCONSISTENT" and "CURRENT" in err.value.what
    narrow = doc("instruments")
    narrow["bin_ranges"]["AMEX"] = {"lo": 37000000, "hi": 37039999}  # 40 BINs per country, 8 per issuer
    s0_gate.check_instrument_caps(Instruments.model_validate(narrow), accounts)
    narrow["bins_per_issuer"] = 9
    with pytest.raises(EngineError) as err:
        s0_gate.check_instrument_caps(Instruments.model_validate(narrow), accounts)
    assert err.value.code == "E_6A_CAP_INCONSISTENT" and "AMEX" in err.value.what
