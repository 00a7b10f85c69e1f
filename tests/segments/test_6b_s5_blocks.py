"""Amendment 5, block and reissue (6B.S5a, S5b, S5 and S7's checks): which detections block a card, each
card's first detection and its `6B.block` draws replayed in plain Python, the blocks applied flow by flow,
and S7 counting every broken rule exactly."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl
import pytest

from engine.core.validation import PhiloxBlocks, u01
from engine.segments.l3.s6b.blocks import REISSUE_BIT, Blocks, apply_blocks, candidates, card_blocks
from engine.segments.l3.s6b.decisions import AUTH_DECISIONS, Auth
from engine.segments.l3.s6b.disputes import AT_AUTH, CHARGE_OFF, CUSTOMER_REPORT, MONITORING, Learned
from engine.segments.l3.s6b.policy import DECLINE_REASONS, BlockReissue
from engine.segments.l3.s6b.s7_scan import block_violations

KEY = (0x0123456789ABCDEF, 0x0FEDCBA987654321)
S, H, D = 1_000_000, 3_600_000_000, 86_400_000_000
T0 = int(dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp()) * S
POLICY = BlockReissue(
    p_block=0.95,
    block_delay_s={"lo": 0, "hi": 3600},
    reissue_d={"lo": 3, "hi": 10},
    compromise_subtypes=["CNP_STOLEN", "LOST_STOLEN"],
)
TS = pl.Datetime("us", "UTC")


def learned(detection: list[int], detection_ts: list[int]) -> Learned:
    n = len(detection)
    zeros = np.full(n, -1, dtype=np.int64)
    fields: dict[str, Any] = {name: zeros for name in Learned.__dataclass_fields__}
    fields.update(detection=np.array(detection), detection_ts=np.array(detection_ts, dtype=np.int64))
    return Learned(**fields)


def test_candidates_are_compromise_detections_and_fraud_reports_on_cards() -> None:
    view = pl.DataFrame(
        {
            "flow_id": pl.Series([1, 2, 3, 4, 5, 6, 7, 8], dtype=pl.UInt64),
            "instrument_id": pl.Series([10, 11, 12, 13, 14, 15, None, 16], dtype=pl.UInt64),
            "party_id": pl.Series([1, 1, 2, 2, 3, 3, None, 4], dtype=pl.UInt64),
            "account_id": pl.Series([1, 1, 2, 2, 3, 3, None, 4], dtype=pl.UInt64),
            "instrument_type": [
                "DEBIT_PHYSICAL",  # 1: CNP_STOLEN caught at auth → blocks
                "CREDIT_VIRTUAL",  # 2: PROMO_ABUSE caught by monitoring → not a compromise
                "DEVICE_TOKEN",  # 3: friendly fraud reported as fraud → the holder says compromised
                "BANK_ACCOUNT",  # 4: a scam claim on a transfer → no card
                "CREDIT_PHYSICAL",  # 5: LOST_STOLEN by monitoring → blocks
                "DEBIT_VIRTUAL",  # 6: charged off → not a block
                None,  # 7: a probe on a made-up number
                "DEBIT_PHYSICAL",  # 8: CNP_STOLEN failing a 3DS challenge → stopped, not a block
            ],
            "truth_subtype": [
                "CNP_STOLEN",
                "PROMO_ABUSE",
                "FRIENDLY_FRAUD",
                "APP_SCAM",
                "LOST_STOLEN",
                "CNP_STOLEN",
                "CARD_TESTING",
                "CNP_STOLEN",
            ],
        }
    )
    got = learned(
        [AT_AUTH, MONITORING, CUSTOMER_REPORT, CUSTOMER_REPORT, MONITORING, CHARGE_OFF, AT_AUTH, AT_AUTH],
        [T0 + k * H for k in range(8)],
    )
    a = auth(8, [False] * 8)
    decision = ["DECLINE_FRAUD", *["APPROVE"] * 5, "DECLINE_FRAUD", "CHALLENGE_FAIL"]
    a = replace(a, decision=np.array([AUTH_DECISIONS.index(d) for d in decision], dtype=np.int8))
    out = candidates(view, a, got, POLICY)
    assert out["flow_id"].to_list() == [1, 3, 5]
    assert out["detection_channel"].cast(pl.String).to_list() == ["AT_AUTH", "CUSTOMER_REPORT", "MONITORING"]
    assert out["detection_ts_utc"].dt.epoch("us").to_list() == [T0, T0 + 2 * H, T0 + 4 * H]


def found(rows: list[tuple[int, int, int, str]]) -> pl.DataFrame:
    """(flow_id, instrument_id, detection ts offset µs, channel) rows as s5_block_candidates."""
    return pl.DataFrame(
        {
            "flow_id": pl.Series([r[0] for r in rows], dtype=pl.UInt64),
            "instrument_id": pl.Series([r[1] for r in rows], dtype=pl.UInt64),
            "party_id": pl.Series([r[1] // 10 for r in rows], dtype=pl.UInt64),
            "account_id": pl.Series([r[1] // 10 for r in rows], dtype=pl.UInt64),
            "detection_channel": pl.Series([r[3] for r in rows]).cast(
                pl.Enum(["AT_AUTH", "MONITORING", "CUSTOMER_REPORT"])
            ),
            "detection_ts_utc": pl.Series([T0 + r[2] for r in rows]).cast(TS),
        }
    )


def test_each_card_blocks_from_its_first_detection_with_draws_replayed_by_hand() -> None:
    rows = [
        (5, 20, 3 * H, "MONITORING"),
        (9, 20, H, "CUSTOMER_REPORT"),  # card 20's first detection
        (4, 30, 2 * H, "AT_AUTH"),  # card 30: two at the same time, the lower flow_id wins
        (2, 30, 2 * H, "MONITORING"),
        (7, 40, 0, "AT_AUTH"),
    ]
    out, ids, u = card_blocks(found(rows), KEY, POLICY)
    assert ids.tolist() == [20, 30, 40]
    gen = PhiloxBlocks(KEY)
    replay = {card: [u01(w) for w in gen.block(card, 0, 0, 0)][:3] for card in (20, 30, 40)}
    assert u.tolist() == [replay[20], replay[30], replay[40]]
    first = {20: (9, H), 30: (2, 2 * H), 40: (7, 0)}
    want = []
    for card in (20, 30, 40):
        coin, ub, ur = replay[card]
        if coin < 0.95:
            flow, t = first[card]
            blocked = T0 + t + int(np.floor(ub * 3600 * S))
            want.append((card, flow, blocked, REISSUE_BIT | card, blocked + int(np.floor((3 + 7 * ur) * D))))
    got = out.select(
        "instrument_id",
        "detection_flow_id",
        pl.col("card_blocked_ts_utc").dt.epoch("us"),
        "new_instrument_id",
        pl.col("reissue_ts_utc").dt.epoch("us"),
    ).rows()
    assert got == want


def test_no_card_blocks_when_the_coin_never_lands() -> None:
    never = POLICY.model_copy(update={"p_block": 0.0})
    out, _, u = card_blocks(found([(1, 20, 0, "AT_AUTH")]), KEY, never)
    assert out.height == 0 and u.shape == (1, 3)


def auth(n: int, challenged: list[bool]) -> Auth:
    return Auth(
        decision=np.zeros(n, dtype=np.int8),
        reason=np.full(n, -1, dtype=np.int8),
        challenged=np.array(challenged),
        step_up=np.where(challenged, 0, -1).astype(np.int8),
        three_ds=np.full(n, -1, dtype=np.int8),
        eci=np.full(n, -1, dtype=np.int8),
        liability_shift=np.zeros(n, dtype=bool),
    )


def test_blocks_decline_fraud_and_move_genuine_spending_to_the_replacement() -> None:
    blocks = Blocks(
        card=np.array([20], dtype=np.uint64),
        blocked_us=np.array([T0 + H]),
        new_card=np.array([REISSUE_BIT | 20], dtype=np.uint64),
        reissue_us=np.array([T0 + 5 * D]),
    )
    cards = pl.Series([20, 20, 20, 20, 20, 21, None], dtype=pl.UInt64)
    request = np.array([T0, T0 + 2 * H, T0 + 2 * H, T0 + 6 * D, T0 + 6 * D, T0 + 2 * H, T0 + 2 * H])
    legit = np.array([True, False, True, True, False, True, True])
    a = auth(7, [False, True, True, False, False, False, False])
    got = apply_blocks(cards, request, legit, a, blocks)
    # before the block; fraud after it; genuine before the replacement; genuine after; fraud after; others
    assert got.instrument_id.tolist() == [20, 20, 20, REISSUE_BIT | 20, 20, 21, 0]
    assert got.card_blocked_us.tolist() == [T0 + H, T0 + H, T0 + H, -1, T0 + H, -1, -1]
    assert got.declined.tolist() == [False, True, True, False, True, False, False]
    assert got.moved.tolist() == [False, False, False, True, False, False, False]
    decisions = [AUTH_DECISIONS[d] for d in got.auth.decision]
    assert decisions == ["APPROVE", "DECLINE", "DECLINE", "APPROVE", "DECLINE", "APPROVE", "APPROVE"]
    reasons = [DECLINE_REASONS[r] if r >= 0 else None for r in got.auth.reason]
    assert reasons == [None, "LOST_STOLEN_CARD", "LOST_STOLEN_CARD", None, "LOST_STOLEN_CARD", None, None]
    assert got.auth.challenged.tolist() == [False] * 7 and got.auth.step_up.tolist() == [-1] * 7


def tx(rows: list[tuple[int, int, str | None, str, int, int | None]]) -> pl.LazyFrame:
    """(instrument_id, ts offset, decline_reason, truth_label, party_id, card_blocked offset) rows."""
    return pl.LazyFrame(
        {
            "instrument_id": pl.Series([r[0] for r in rows], dtype=pl.UInt64),
            "ts_utc": pl.Series([T0 + r[1] for r in rows]).cast(TS),
            "decline_reason": [r[2] for r in rows],
            "truth_label": [r[3] for r in rows],
            "party_id": pl.Series([r[4] for r in rows], dtype=pl.UInt64),
            "card_blocked_ts_utc": pl.Series([None if r[5] is None else T0 + r[5] for r in rows]).cast(TS),
        }
    )


@pytest.mark.parametrize(
    ("row", "broken"),
    [
        ((20, 2 * H, "LOST_STOLEN_CARD", "FRAUD", 2, H), None),  # as amendment 5 says
        ((20, 2 * H, None, "FRAUD", 2, H), "blocked_card_not_declined"),
        ((21, 2 * H, "LOST_STOLEN_CARD", "LEGIT", 2, None), "block_decline_without_block"),
        ((REISSUE_BIT | 20, 4 * D, None, "LEGIT", 2, None), "reissued_card_misused"),  # before it arrives
        ((REISSUE_BIT | 20, 6 * D, None, "FRAUD", 2, None), "reissued_card_misused"),
        ((REISSUE_BIT | 20, 6 * D, None, "LEGIT", 3, None), "reissued_card_misused"),  # not the holder
        ((20, 0, None, "LEGIT", 2, None), "card_blocked_ts_mismatch"),
    ],
)
def test_s7_counts_each_broken_block_rule(row: tuple, broken: str | None) -> None:
    reissues = pl.DataFrame(
        {
            "instrument_id": pl.Series([20], dtype=pl.UInt64),
            "party_id": pl.Series([2], dtype=pl.UInt64),
            "card_blocked_ts_utc": pl.Series([T0 + H]).cast(TS),
            "new_instrument_id": pl.Series([REISSUE_BIT | 20], dtype=pl.UInt64),
            "reissue_ts_utc": pl.Series([T0 + 5 * D]).cast(TS),
        }
    )
    counts = block_violations(tx([row]), reissues)
    assert counts == {k: int(k == broken) for k in counts}
