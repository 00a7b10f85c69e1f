"""6B.S0's data checks on hand-made frames: the catalogue's channel feasibility (E_6B_CHANNEL_MISSING),
currency exponents (E_6B_CURRENCY_MISSING) and the local-time lag the tz cache must cover, by known answers
from the shipped packs. The sealing itself is exercised by the tiny build (test_6b_s1_attach.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from engine.core import yaml12
from engine.core.errors import EngineError
from engine.core.policy import policy_model
from engine.segments.l3.s6b import s0_gate

REPO = Path(__file__).resolve().parents[2]


def pack(name: str) -> Any:
    """A shipped 6B pack read as YAML 1.2, as the engine reads it (NO is Norway)."""
    return policy_model("6B", name).model_validate(
        yaml12.load((REPO / f"config/policies/6B/{name}.yaml").read_text())
    )


def profile(rows: list[tuple[str, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"channel_group": pl.String, "mcc": pl.UInt16, "weekly_expected": pl.Float64},
        orient="row",
    )


FULL = profile([("CP", 5411, 10.0), ("CNP", 5967, 10.0), ("CP", 6011, 3.0), ("CNP", 4829, 2.0)])
ROLES = pl.DataFrame({"merchant_id": [1, 2], "role": ["NORMAL", "COLLUSIVE"]})


def test_a_world_with_every_channel_and_a_colluder_passes() -> None:
    s0_gate.check_channels(FULL, ROLES, pack("channels"), pack("campaigns"))


@pytest.mark.parametrize(
    ("rows", "needs"),
    [
        ([("CP", 5411, 10.0), ("CNP", 5967, 10.0), ("CNP", 4829, 2.0)], "ATM"),  # no ATM merchant
        (
            [("CP", 5411, 10.0), ("CNP", 5967, 10.0), ("CP", 6011, 3.0), ("CNP", 4829, 0.0)],
            "TRANSFER",
        ),  # no demand
        ([("CP", 5411, 10.0), ("CP", 6011, 3.0), ("CNP", 4829, 2.0)], "ECOM"),
    ],
)
def test_a_missing_channel_names_the_type_and_channel(rows: list[tuple[str, int, float]], needs: str) -> None:
    with pytest.raises(EngineError) as err:
        s0_gate.check_channels(profile(rows), ROLES, pack("channels"), pack("campaigns"))
    assert err.value.code == "E_6B_CHANNEL_MISSING" and needs in err.value.what


def test_collusion_needs_a_collusive_merchant() -> None:
    roles = ROLES.with_columns(pl.lit("NORMAL").alias("role"))
    with pytest.raises(EngineError) as err:
        s0_gate.check_channels(FULL, roles, pack("channels"), pack("campaigns"))
    assert err.value.code == "E_6B_CHANNEL_MISSING" and "COLLUSIVE" in err.value.what


def test_currencies_need_an_exponent() -> None:
    ref = pl.DataFrame({"currency": ["EUR", "USD", "XXX"], "minor_units": [2, 2, None]})
    s0_gate.check_currencies({"EUR", "USD"}, ref, pack("channels"))
    with pytest.raises(EngineError) as err:
        s0_gate.check_currencies({"EUR", "XXX"}, ref, pack("channels"))
    assert err.value.code == "E_6B_CURRENCY_MISSING" and "XXX" in err.value.what


def test_longest_local_lag_is_clearing_then_a_return() -> None:
    # POS: next cut-off (≤ 1 d) + jitter 2 h + 48 h clip + a 7 d late tail = 10.083 d, above ECOM's 10 d
    # capture; then a return refund up to 90 d: 100.083 d (detection: 30 d + the next 02:00 batch = 31 d)
    lag = s0_gate.longest_local_lag_d(pack("flows"), pack("bank_view"))
    assert lag == pytest.approx(1 + 50 / 24 + 7 + 90)
