"""2A.S0: override rules (judged at the horizon start) and the per-seed seal of the 1A and 1B flags."""

import datetime as dt
import json
from pathlib import Path

import pytest

from engine.core.errors import EngineError
from engine.core.layout import gate_dir
from engine.segments.l1.s2a.resolver import Override, active_overrides
from tests.conftest import tiny_plan

TZ = {"US": ["America/Chicago", "America/New_York"], "GB": ["Europe/London"]}
START = dt.date(2026, 1, 5)


def test_expired_overrides_are_inactive_and_duplicates_refused() -> None:
    old = Override("country", "US", "America/Chicago", "legacy", dt.date(2025, 12, 31))
    new = Override("country", "US", "America/New_York", "current")
    assert list(active_overrides([old, new], START, tz_country=TZ).values()) == [new]
    with pytest.raises(EngineError) as err:
        active_overrides([new, Override("country", "US", "America/Chicago", "again")], START, tz_country=TZ)
    assert err.value.code == "E_2A_OVERRIDE_DUPLICATE"


def test_override_tzid_must_belong_to_its_country() -> None:
    with pytest.raises(EngineError) as err:
        active_overrides([Override("country", "GB", "America/New_York", "wrong")], START, tz_country=TZ)
    assert err.value.code == "E_2A_OVERRIDE_TZID"


def test_sealed_upstream_carries_both_flags(tiny_world: Path) -> None:
    mf = tiny_plan(tiny_world)["2A"].manifest_fingerprint
    doc = json.loads((gate_dir(tiny_world, "2A", mf, 42) / "sealed_upstream.json").read_text())
    assert sorted(doc["flags"]) == ["1A", "1B"]
    assert [i["id"] for i in doc["inputs"]] == ["merchant_catalogue", "site_locations"]
