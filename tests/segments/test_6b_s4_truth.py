"""6B.S4 truth, selection and retries on hand-built frames: the ranked rules' known answers, the collision
guard, the first-type-wins claim rule replayed from Philox blocks, retry ids and times, timing tactics."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine.core.errors import EngineError
from engine.core.validation import PhiloxBlocks, u01
from engine.segments.l3.s6b.policy import TACTIC_BITS, Rule
from engine.segments.l3.s6b.retries import COPIED, TAG, retry_rows
from engine.segments.l3.s6b.tactics import TIMING_COLUMNS, apply_timing, claims, select
from engine.segments.l3.s6b.truth import assign_truth, campaign_truth

RULES = [
    Rule(rank=4, rule="DEFAULT", label="LEGIT", subtype="NONE"),
    Rule(rank=1, rule="CAMPAIGN"),
    Rule(rank=3, rule="FRIENDLY", label="ABUSE", subtype="FRIENDLY_FRAUD"),
    Rule(rank=2, rule="POSTURE", label="ABUSE", subtype="MULE_ACTIVITY"),
]
T0 = dt.datetime(2026, 3, 3, tzinfo=dt.UTC)
KEY = (0xDEAD_BEEF_0000_0001, 0x0123_4567_89AB_CDEF)


def test_ranked_rules_known_answers() -> None:
    facts = pl.DataFrame(
        {
            "campaign_label": ["FRAUD", None, None, None, "ABUSE", None],
            "campaign_subtype": ["CNP_STOLEN", None, None, None, "REFUND_ABUSE", None],
            "posture": [True, True, True, False, False, False],
            "friendly": [True, False, True, True, True, False],
        }
    )
    out = assign_truth(facts, RULES)
    assert out.rows() == [
        ("FRAUD", "CNP_STOLEN", "CAMPAIGN", 1),  # the campaign outranks posture and friendly
        ("ABUSE", "MULE_ACTIVITY", "POSTURE", 2),
        ("ABUSE", "MULE_ACTIVITY", "POSTURE", 2),  # posture outranks friendly
        ("ABUSE", "FRIENDLY_FRAUD", "FRIENDLY", 3),
        ("ABUSE", "REFUND_ABUSE", "CAMPAIGN", 1),
        ("LEGIT", "NONE", "NONE", 4),
    ]


def test_rank_order_comes_from_the_policy() -> None:
    swapped = [
        Rule(rank=1, rule="CAMPAIGN"),
        Rule(rank=2, rule="FRIENDLY", label="ABUSE", subtype="FRIENDLY_FRAUD"),
        Rule(rank=3, rule="POSTURE", label="ABUSE", subtype="MULE_ACTIVITY"),
        Rule(rank=4, rule="DEFAULT", label="LEGIT", subtype="NONE"),
    ]
    facts = pl.DataFrame(
        {"campaign_label": [None], "campaign_subtype": [None], "posture": [True], "friendly": [True]},
        schema={
            "campaign_label": pl.String,
            "campaign_subtype": pl.String,
            "posture": pl.Boolean,
            "friendly": pl.Boolean,
        },
    )
    assert assign_truth(facts, swapped).row(0) == ("ABUSE", "FRIENDLY_FRAUD", "FRIENDLY", 2)


def test_campaign_subtype_and_unmatched_campaign() -> None:
    campaigns = pl.DataFrame(
        {
            "campaign_id": pl.Series([4 << 56 | 1, 1 << 56 | 2], dtype=pl.UInt64),
            "campaign_type": ["APP_SCAM", "CARD_TESTING"],
            "truth_label": ["FRAUD", "FRAUD"],
        }
    )
    flows = pl.DataFrame(
        {
            "flow_id": pl.Series([1, 2, 3, 4], dtype=pl.UInt64),
            "campaign_id": pl.Series([4 << 56 | 1, 4 << 56 | 1, 1 << 56 | 2, None], dtype=pl.UInt64),
            "campaign_phase": ["TRANSFER_OUT", "ONWARD_TRANSFER", "PROBE", None],
        }
    )
    out = campaign_truth(flows, campaigns)
    assert out["campaign_subtype"].to_list() == ["APP_SCAM", "MULE_CASHOUT", "CARD_TESTING", None]
    assert out["campaign_label"].to_list() == ["FRAUD", "FRAUD", "FRAUD", None]
    orphan = flows.with_columns(pl.lit(9 << 56 | 9, pl.UInt64).alias("campaign_id"))
    with pytest.raises(EngineError) as err:
        campaign_truth(orphan, campaigns)
    assert err.value.code == "E_6B_TRUTH_UNMATCHED"


def test_collision_guard_refuses_a_legit_campaign_flow() -> None:
    facts = pl.DataFrame(
        {"campaign_label": ["LEGIT"], "campaign_subtype": ["NONE"], "posture": [False], "friendly": [False]}
    )
    with pytest.raises(EngineError) as err:
        assign_truth(facts, RULES)
    assert err.value.code == "E_6B_TRUTH_COLLISION"


def test_first_type_in_catalogue_order_wins_the_claim() -> None:
    """Two campaigns target party 7 (types 5 and 9) and one targets merchant 3 (type 8): each claim's coin is
    lane 0 of ⟨flow_id, campaign_id, 0, 0⟩; among the coins under p_select the lowest type code wins."""
    flows = pl.DataFrame(
        {
            "flow_id": pl.Series([101, 102, 103, 104], dtype=pl.UInt64),
            "ts_utc": pl.Series(
                [T0, T0 + dt.timedelta(days=1), T0, T0 + dt.timedelta(days=9)], dtype=pl.Datetime("us", "UTC")
            ),
            "channel": ["ECOM", "POS", "ECOM", "ECOM"],
            "nonfraud_decline": pl.Series([None, None, "DO_NOT_HONOUR", None], dtype=pl.String),
            "reversal": [False, False, False, False],
            "party_id": pl.Series([7, 7, 7, 7], dtype=pl.UInt64),
            "account_id": pl.Series([70, 70, 70, 70], dtype=pl.UInt64),
            "instrument_id": pl.Series([700, 700, 700, 700], dtype=pl.UInt64),
            "merchant_id": pl.Series([3, 3, 3, 3], dtype=pl.UInt64),
            "device_id": pl.Series([None, None, None, None], dtype=pl.UInt64),
        }
    )
    start, end = T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=5)
    us = lambda t: int(t.timestamp() * 1_000_000)  # noqa: E731
    targets = pl.DataFrame(
        {
            "target_kind": ["PARTY", "PARTY", "MERCHANT"],
            "target_id": pl.Series([7, 7, 3], dtype=pl.UInt64),
            "campaign_id": pl.Series([5 << 56 | 1, 9 << 56 | 1, 8 << 56 | 1], dtype=pl.UInt64),
            "window_start": [us(start)] * 3,
            "window_end": [us(end)] * 3,
            "p_select": [0.5, 1.0, 1.0],
            "type_code": [5, 9, 8],
            "campaign_type": ["BUST_OUT", "REFUND_ABUSE", "MERCHANT_COLLUSION"],
        }
    )

    class Plan:  # the part of tactics.Overlay that claims() reads
        pass

    plan = Plan()
    plan.targets = targets  # type: ignore[attr-defined]
    claimed = claims(flows, plan)  # type: ignore[arg-type]
    # flow 104 is outside every window; REFUND_ABUSE claims only cleared ECOM flows (101)
    assert sorted(zip(claimed["flow_id"].to_list(), claimed["type_code"].to_list(), strict=True)) == [
        (101, 5),
        (101, 8),
        (101, 9),
        (102, 5),
        (102, 8),
        (103, 5),
        (103, 8),
    ]
    winners, coins, lost = select(claimed, KEY)
    gen = PhiloxBlocks(KEY)
    want = {}
    for fid, cid, code, p in claimed.select("flow_id", "campaign_id", "type_code", "p_select").iter_rows():
        u = u01(gen.block(fid, cid, 0, 0)[0])
        if u < p and (fid not in want or code < want[fid]):
            want[fid] = code
    got = dict(zip(winners["flow_id"].to_list(), winners["type_code"].to_list(), strict=True))
    assert got == want and set(got) == {101, 102, 103}  # type 8 has p 1: every flow is claimed
    assert lost == int((coins < claimed["p_select"].to_numpy()).sum()) - len(got)


def test_retry_ids_and_times() -> None:
    merchant_idx = 17
    parent = merchant_idx << 40 | 12345
    frame = pl.DataFrame(
        {
            "flow_id": pl.Series([parent, parent + 1, merchant_idx << 40 | 1 << 39 | 3], dtype=pl.UInt64),
            "retry": [True, False, True],
            "retry_delay_us": [45_000_000, 1, 30_000_000],
            "campaign_id": pl.Series([None, None, 1 << 56 | 1], dtype=pl.UInt64),
            "ts_utc": pl.Series([T0] * 3, dtype=pl.Datetime("us", "UTC")),
            **{c: [None, None, None] for c in COPIED},
        }
    )
    rows = retry_rows(frame)
    assert rows.height == 1  # the campaign flow's retry flag makes no legit retry
    assert rows["flow_id"][0] == merchant_idx << 40 | 1 << 39 | 1 << 38 | 12345 == parent | TAG
    assert rows["retry_of_flow_id"][0] == parent
    assert rows["ts_utc"][0] == T0 + dt.timedelta(seconds=45)
    assert np.uint64(rows["flow_id"][0]) >> np.uint64(40) == merchant_idx


def test_timing_tactics_known_answers() -> None:
    """Burst scales every delay by lo + u·(hi − lo) (≥ 1 µs); refund injection is a full refund 1 + 4u
    days after clearing that drops a planned reversal; clearing suppression sets its flag; other rows keep
    theirs."""
    bits = TACTIC_BITS
    frame = pl.DataFrame(
        {
            "tactic_mask": pl.Series(
                [bits["BURST_TIMING"], bits["REFUND_INJECTION"], bits["CLEARING_SUPPRESSION"], 0],
                dtype=pl.UInt16,
            ),
            **{c: [1_000_000 if c == "auth_latency_us" else 1, 3, 1, 10] for c in TIMING_COLUMNS},
            "clearing_suppressed": [False] * 4,
            "refund": [False] * 4,
            "refund_fraction_bp": pl.Series([5000] * 4, dtype=pl.UInt16),
            "reversal": [True] * 4,
        }
    )
    values = np.array([[0.5, 0.0, 0, 0], [0.0, 0.25, 0, 0], [0.9, 0.9, 0, 0], [0.1, 0.1, 0, 0]])
    out = apply_timing(frame, values, (0.2, 0.6))
    assert out.row(0, named=True)["auth_latency_us"] == 400_000  # 1 s × (0.2 + 0.5·0.4)
    assert out.row(0, named=True)["stepup_user_us"] == 1  # 1 µs × 0.4 rounds to 0, floored at 1
    r = out.row(1, named=True)
    assert (r["refund"], r["refund_fraction_bp"], r["reversal"]) == (True, 10_000, False)
    assert r["refund_delay_us"] == 2 * 86_400 * 10**6  # 1 + 4·0.25 days
    assert out.row(2, named=True)["clearing_suppressed"] and out.row(2, named=True)["reversal"]
    assert out.row(3, named=True) == frame.row(3, named=True)


def test_flow_order_matches_a_three_key_sort() -> None:
    """A sorted run followed by unsorted extras (and a tie on (merchant, µs) broken by flow_id) comes out in
    (merchant_id, ts_utc, flow_id) order, as a plain three-key sort puts it."""
    from engine.segments.l3.s6b.s4_overlay_truth import flow_order

    rng = np.random.default_rng(7)
    idx = np.sort(rng.integers(1, 40, 3000)).astype(np.uint64)
    ts = np.sort(rng.integers(0, 10**9, 3000))
    flows = (idx << np.uint64(40)) | np.arange(3000, dtype=np.uint64)
    run = pl.DataFrame({"merchant_id": idx * 7, "flow_id": flows, "ts_us": ts}).sort("merchant_id", "ts_us")
    extra_idx = rng.integers(1, 40, 300).astype(np.uint64)
    extra = pl.DataFrame(
        {
            "merchant_id": extra_idx * 7,
            "flow_id": (extra_idx << np.uint64(40)) | np.uint64(1 << 39) | np.arange(300, dtype=np.uint64),
            "ts_us": rng.integers(0, 10**9, 300),
        }
    )
    for frame in (pl.concat([run, extra]), pl.concat([run, run.head(1).with_columns(pl.col("flow_id") + 1)])):
        frame = frame.with_columns(pl.col("ts_us").cast(pl.Datetime("us", "UTC")).alias("ts_utc"))
        want = frame.sort("merchant_id", "ts_utc", "flow_id")
        assert frame[flow_order(frame)].equals(want)
