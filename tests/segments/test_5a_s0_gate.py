"""5A.S0's cross-checks on hand-made policies: caps, scenario windows, holiday years, unmapped MCCs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from engine.core.errors import EngineError
from engine.core.horizon import Horizon
from engine.core.yaml12 import load
from engine.segments.l2.s5a import s0_gate
from engine.segments.l2.s5a.policy import DemandScale, MerchantClass, Scenario

POLICIES = Path(__file__).resolve().parents[2] / "config" / "policies" / "5A"


def doc(name: str) -> dict:
    return load((POLICIES / f"{name}.yaml").read_text())


def test_caps_must_cohere() -> None:
    s0_gate.check_caps(DemandScale.model_validate(doc("demand_scale")))  # 250 ≥ 200 × 1.10
    bad = doc("demand_scale") | {"hard_cap_to_mean": 219}
    with pytest.raises(EngineError) as err:
        s0_gate.check_caps(DemandScale.model_validate(bad))
    assert err.value.code == "E_5A_CAP_INCONSISTENT"


def test_peak_window_must_meet_the_horizon() -> None:
    stress = doc("scenarios/holiday_peak")
    s0_gate.check_scenario_windows({"holiday_peak": Scenario.model_validate(stress)}, dt.date(2026, 3, 2), 14)
    stress["peak"]["window_days"] = [20, 25]
    with pytest.raises(EngineError) as err:
        s0_gate.check_scenario_windows({"x": Scenario.model_validate(stress)}, dt.date(2026, 3, 2), 14)
    assert err.value.code == "E_5A_SCENARIO_EMPTY"
    with pytest.raises(ValueError, match="STRESS"):
        Scenario.model_validate(doc("scenarios/baseline") | {"role": "STRESS"})


def test_holiday_years_cover_the_horizon(tmp_path: Path) -> None:
    prov = tmp_path / "provenance.json"
    prov.write_text(json.dumps({"years": [2024, 2028]}))
    h = Horizon.model_validate({"start_utc": "2026-03-02T00:00:00Z", "days": 90})
    s0_gate.check_holiday_years(prov, h)
    late = Horizon.model_validate({"start_utc": "2027-12-20T00:00:00Z", "days": 30})  # needs 2026–2029
    with pytest.raises(EngineError) as err:
        s0_gate.check_holiday_years(prov, late)
    assert err.value.code == "E_HORIZON_NOT_COVERED"


def test_unmapped_mcc(tmp_path: Path) -> None:
    pol = doc("merchant_class")
    pol["sectors"]["services"]["ranges"] = [[0, 2999]]  # 4000-… and 6013-… are no longer covered
    path = tmp_path / "m.parquet"
    pl.DataFrame({"mcc": pl.Series([5411, 7230], dtype=pl.UInt16)}).write_parquet(path)
    with pytest.raises(EngineError) as err:
        s0_gate.check_mccs(path, MerchantClass.model_validate(pol))
    assert err.value.code == "E_5A_UNMAPPED_MCC" and "7230" in err.value.what
