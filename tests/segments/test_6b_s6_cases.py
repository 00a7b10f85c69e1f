"""6B.S6 cases on a hand-built trigger set: grouping by account within the join window and the flow cap,
the timeline's order, outcomes, and the close delay replayed in plain Python (Marsaglia–Tsang over Philox
lanes)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine.core.errors import EngineError
from engine.core.validation import Lanes, PhiloxBlocks
from engine.segments.l1.s1a.replay import gamma as replay_gamma
from engine.segments.l3.s6b.policy import Cases, Gamma
from engine.segments.l3.s6b.s6_cases import DAY_US, build_cases, close_delays, group_cases

T0 = dt.datetime(2026, 3, 3, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
POLICY = Cases(
    case_key="ACCOUNT",
    join_window_h=72,
    max_flows_per_case=2,
    close_delay_d=Gamma(shape=1.6, scale=1.0, clip=(1 / 24, 60.0)),
)


def triggers(rows: list[tuple[int, int, str, dt.timedelta, str]]) -> pl.DataFrame:
    """(flow_id, account_id, trigger_type, trigger time after T0, bank_label) → s5_case_triggers columns;
    party = account + 1000, resolution 2 h after the trigger."""
    return pl.DataFrame(
        {
            "flow_id": pl.Series([r[0] for r in rows], dtype=pl.UInt64),
            "account_id": pl.Series([r[1] for r in rows], dtype=pl.UInt64),
            "party_id": pl.Series([r[1] + 1000 for r in rows], dtype=pl.UInt64),
            "trigger_type": [r[2] for r in rows],
            "trigger_ts": pl.Series([T0 + r[3] for r in rows], dtype=pl.Datetime("us", "UTC")),
            "resolution_ts": pl.Series([T0 + r[3] + 2 * H for r in rows], dtype=pl.Datetime("us", "UTC")),
            "bank_label": [r[4] for r in rows],
        }
    )


TRIGGERS = triggers(
    [
        # account 1: two flows within 72 h → case 0; a third 80 h after the opening → case 1
        (12, 1, "DETECTION", 80 * H, "CLEARED_LEGIT"),
        (10, 1, "DETECTION", 0 * H, "CONFIRMED_FRAUD"),
        (11, 1, "DISPUTE", 1 * H, "CHARGEBACK_FRAUD"),
        # account 2: one flow detected, then disputed 100 h later → two cases
        (20, 2, "DETECTION", 0 * H, "CLEARED_LEGIT"),
        (20, 2, "DISPUTE", 100 * H, "CLEARED_LEGIT"),
        # account 3: three flows inside the window, cap 2 → {30, 31} then {32}; 31's second trigger rejoins 0
        (30, 3, "AUTH_DECLINE_FRAUD", 0 * H, "CONFIRMED_FRAUD"),
        (31, 3, "DETECTION", 2 * H, "CLEARED_LEGIT"),
        (31, 3, "DISPUTE", 3 * H, "CLEARED_LEGIT"),
        (32, 3, "DETECTION", 4 * H, "CLEARED_LEGIT"),
    ]
)
FLOWS = pl.DataFrame(
    {
        "flow_id": pl.Series([10, 11, 12, 20, 30, 31, 32], dtype=pl.UInt64),
        "is_fraud_truth": [True, True, False, False, True, False, False],
        "chargeback_ts_utc": pl.Series(
            [None, T0 + 30 * H, None, None, None, None, None], dtype=pl.Datetime("us", "UTC")
        ),
        "chargeback_outcome_ts_utc": pl.Series(
            [None, T0 + 300 * H, None, None, None, None, None], dtype=pl.Datetime("us", "UTC")
        ),
    }
)
ONE_HOUR_US = 3_600_000_000


def fixed_delay(account: np.ndarray, index: np.ndarray) -> np.ndarray:
    return np.full(account.size, ONE_HOUR_US, dtype=np.int64)


def case_id(account: int, index: int) -> int:
    return account << 16 | index


def test_grouping_by_window_and_flow_cap() -> None:
    grouped = group_cases(TRIGGERS, POLICY)
    got = {(r["flow_id"], r["trigger_type"]): r["case_index"] for r in grouped.iter_rows(named=True)}
    assert got == {
        (10, "DETECTION"): 0,
        (11, "DISPUTE"): 0,
        (12, "DETECTION"): 1,
        (20, "DETECTION"): 0,
        (20, "DISPUTE"): 1,
        (30, "AUTH_DECLINE_FRAUD"): 0,
        (31, "DETECTION"): 0,
        (31, "DISPUTE"): 0,  # a flow already in the open case joins it without counting again
        (32, "DETECTION"): 1,  # the cap of 2 flows is reached
    }


def test_cases_and_timeline_known_answer() -> None:
    cases, timeline, grouped = build_cases(TRIGGERS, FLOWS, POLICY, fixed_delay)
    assert grouped.height == TRIGGERS.height  # every trigger in exactly one case
    by_id = {r["case_id"]: r for r in cases.iter_rows(named=True)}
    assert sorted(by_id) == sorted(
        [case_id(1, 0), case_id(1, 1), case_id(2, 0), case_id(2, 1), case_id(3, 0), case_id(3, 1)]
    )
    c10 = by_id[case_id(1, 0)]
    assert (c10["n_flows"], c10["n_truth_fraud"], c10["outcome"]) == (2, 2, "CONFIRMED_FRAUD")
    assert c10["opened_ts"] == T0
    # closes 1 h after its latest time: the chargeback decided 300 h in, later than every resolution
    assert c10["closed_ts"] == T0 + 301 * H
    c32 = by_id[case_id(3, 1)]
    assert (c32["n_flows"], c32["outcome"], c32["closed_ts"]) == (1, "CLEARED", T0 + 7 * H)
    assert by_id[case_id(3, 0)]["n_flows"] == 2 and by_id[case_id(3, 0)]["party_id"] == 1003
    events = timeline.filter(pl.col("case_id") == case_id(1, 0))
    assert events["event_type"].cast(pl.String).to_list() == [
        "CASE_OPENED",
        "DETECTION_ATTACHED",
        "DISPUTE_FILED",
        "CHARGEBACK_RAISED",
        "CHARGEBACK_DECIDED",
        "CASE_CLOSED",
    ]
    assert events["case_event_seq"].to_list() == list(range(6))
    assert events["flow_id"].to_list() == [10, 10, 11, 11, 11, None]
    # times never go back within a case, and each case opens first and closes last
    for _, group in timeline.group_by("case_id"):
        ts = group.sort("case_event_seq")["ts_utc"]
        assert (ts.diff().drop_nulls() >= dt.timedelta(0)).all()


def test_close_delay_replays_in_plain_python() -> None:
    key = (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321)
    account = np.array([1, 1, 7, 123456], dtype=np.uint64)
    index = np.array([0, 1, 0, 5], dtype=np.uint64)
    delay, draws, blocks = close_delays(key, account, index, POLICY)
    gen = PhiloxBlocks(key)
    lo, hi = POLICY.close_delay_d.clip
    for i in range(account.size):
        lanes = Lanes(gen, [int(account[i]), int(index[i]), 0, 0], 3)
        g = replay_gamma(lanes, 1.6)
        want = min(max(g * DAY_US, lo * DAY_US), hi * DAY_US)
        assert delay[i] == round(want)
        assert (draws[i], blocks[i]) == (lanes.draws, lanes.blocks)


def test_inconsistent_flows_raise() -> None:
    flows = FLOWS.with_columns(
        pl.when(pl.col("flow_id") == 11)
        .then(T0 - 500 * H)
        .otherwise(pl.col("chargeback_ts_utc"))
        .alias("chargeback_ts_utc")
    )  # a chargeback before the case opened puts a case event before CASE_OPENED
    with pytest.raises(EngineError) as err:
        build_cases(TRIGGERS, flows, POLICY, fixed_delay)
    assert err.value.code == "E_6B_CASE_INCONSISTENT"
