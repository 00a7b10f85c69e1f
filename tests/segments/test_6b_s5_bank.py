"""6B.S5 bank view on hand-built flows: the decision rules with draws replayed in plain Python, the event
templates against the decisions, the time-order invariants and the bank-label rules (design §4.8, §5.1, §5.2
with amendments 6, 7, 9)."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import yaml12
from engine.core.validation import PhiloxBlocks, u01
from engine.kernels.blocks import block_uniforms
from engine.segments.l3.s6b import bank_score
from engine.segments.l3.s6b import policy as p6b
from engine.segments.l3.s6b.decisions import AuthInputs, decide
from engine.segments.l3.s6b.disputes import Flows, learn
from engine.segments.l3.s6b.events import HeldEvents, LocalClock, Times, explode

REPO = Path(__file__).resolve().parents[2]
KEY = (0x0123456789ABCDEF, 0x0FEDCBA987654321)
T0 = int(dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp()) * 1_000_000
HOUR = 3600 * 1_000_000
DAY = 24 * HOUR


def pack(name: str) -> Any:
    return p6b.POLICIES[name].model_validate(
        yaml12.load((REPO / "config/policies/6B" / f"{name}.yaml").read_text())
    )


BANK: p6b.BankView = pack("bank_view")


# --- the decision ---------------------------------------------------------------------------------------
def auth_inputs(n: int, **over: Any) -> AuthInputs:
    base: dict[str, Any] = {
        "channel": np.full(n, 1),
        "no_card": np.zeros(n, bool),
        "nonfraud": np.full(n, -1),
        "decline_bias": np.zeros(n),
        "stand_in": np.zeros(n, bool),
        "recurring": np.zeros(n, bool),
        "subtype": np.zeros(n, dtype=np.int64),
        "three_ds_share": np.zeros(n),
        "challenge_share": np.zeros(n),
        "mastercard": np.zeros(n, bool),
    }
    base.update({k: np.asarray(v) for k, v in over.items()})
    return AuthInputs(**base)


def lanes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


def test_decision_rules_in_order() -> None:
    """Each rule on a hand-set lane: probe, non-fraud decline, score decline, 3DS frictionless, challenge."""
    ni = p6b.DECLINE_REASONS.index("INSUFFICIENT_FUNDS")
    x = auth_inputs(
        7,
        no_card=[True, False, False, False, False, False, False],
        decline_bias=[0, 0.5, 0, 0, 0, 0, 0],
        nonfraud=[-1, -1, ni, -1, -1, -1, -1],
        three_ds_share=[0, 0, 0, 0, 0.9, 0.9, 0],
        challenge_share=[0, 0, 0, 0, 0.3, 0.3, 0],
        channel=[1, 1, 0, 1, 1, 1, 3],
        mastercard=[False, False, False, False, True, False, False],
    )
    score = np.array([0.99, 0.01, 0.99, 0.95, 0.01, 0.01, 0.80])
    k0 = lanes(*[(0.5, 0.4, 0.5, 0.5)] * 4, (0.5, 0.9, 0.1, 0.9), (0.5, 0.9, 0.1, 0.1), (0.5, 0.9, 0.9, 0.9))
    k1 = lanes(*[(0.5, 0, 0, 0)] * 5, (0.99, 0, 0, 0), (0.10, 0, 0, 0))
    a = decide(x, score, k0, k1, BANK)
    names = [
        ("APPROVE", "DECLINE", "DECLINE_FRAUD", "CHALLENGE_PASS", "CHALLENGE_FAIL", "CHALLENGE_ABANDON")[d]
        for d in a.decision
    ]
    # 0 non-existent card; 1 decline-bias coin .4 < .5; 2 the plan's decline stands even at score .99;
    # 3 score .95 > .92; 4 3DS frictionless (.1 < .9, .9 ≥ .3), Mastercard ECI 02 and a liability shift;
    # 5 challenged (.1 < .3), legit abandons at u .99 ≥ .92; 6 TRANSFER above .75 challenged, passes at .10
    assert names == [
        "DECLINE",
        "DECLINE",
        "DECLINE",
        "DECLINE_FRAUD",
        "APPROVE",
        "CHALLENGE_ABANDON",
        "CHALLENGE_PASS",
    ]
    reasons = [p6b.DECLINE_REASONS[r] if r >= 0 else None for r in a.reason]
    assert reasons == [
        "INVALID_CARD_DATA",
        "INVALID_CARD_DATA",
        "INSUFFICIENT_FUNDS",
        "SUSPECTED_FRAUD",
        None,
        "AUTHENTICATION_FAILED",
        None,
    ]
    assert a.three_ds[4] == 0 and a.eci[4] == 3 and a.liability_shift[4]  # FRICTIONLESS, "02"
    assert a.three_ds[5] == 3 and a.eci[5] == 2 and not a.liability_shift[5]  # CHALLENGE_ABANDON, "07"
    assert a.three_ds[6] == -1 and a.challenged[6] and not a.liability_shift[6]  # TRANSFER: no 3DS fields
    assert a.challenged.tolist() == [False, False, False, False, False, True, True]


def test_decision_draws_replay_in_plain_python() -> None:
    """The engine's lanes equal numpy's Philox replay, and the decision follows from them by hand."""
    flow_ids = np.array([(7 << 40) | 1, (7 << 40) | 2, (9 << 40) | (1 << 39) | 5], dtype=np.uint64)
    gen = PhiloxBlocks(KEY)
    engine = [block_uniforms(KEY, flow_ids, k, lanes=4) for k in range(2)]
    for k in range(2):
        for i, fid in enumerate(flow_ids):
            replay = [u01(w) for w in gen.block(int(fid), k, 0, 0)]
            assert engine[k][i].tolist() == replay
    x = auth_inputs(3, three_ds_share=np.full(3, 0.85), challenge_share=np.full(3, 0.25))
    score = np.full(3, 0.05)
    a = decide(x, score, engine[0], engine[1], BANK)
    for i in range(3):
        w = [u01(v) for v in gen.block(int(flow_ids[i]), 0, 0, 0)]
        s = [u01(v) for v in gen.block(int(flow_ids[i]), 1, 0, 0)]
        if w[2] >= 0.85 or w[3] >= 0.25:
            want = "APPROVE"
        else:
            want = (
                "CHALLENGE_PASS" if s[0] < 0.88 else "CHALLENGE_FAIL" if s[0] < 0.92 else "CHALLENGE_ABANDON"
            )
        assert (
            "APPROVE",
            "DECLINE",
            "DECLINE_FRAUD",
            "CHALLENGE_PASS",
            "CHALLENGE_FAIL",
            "CHALLENGE_ABANDON",
        )[a.decision[i]] == want


def test_score_is_the_logistic_of_the_weighted_features() -> None:
    f = np.zeros((2, len(bank_score.FEATURES)))
    f[1, bank_score.FEATURES.index("anonymiser_ip")] = 1
    f[1, bank_score.FEATURES.index("kyc_tier")] = 3
    eps = np.array([0.0, 0.5])
    got = bank_score.score(f, BANK.score, eps)
    w = BANK.score.weights
    want1 = 1 / (
        1
        + math.exp(
            -(BANK.score.intercept + w["anonymiser_ip"] + 3 * w["kyc_tier"] + 0.5 * BANK.score.noise_sigma)
        )
    )
    assert got[0] == pytest.approx(1 / (1 + math.exp(-BANK.score.intercept)), rel=1e-12)
    assert got[1] == pytest.approx(want1, rel=1e-12)


def test_amount_quantile_under_the_reference_law() -> None:
    # 60 USD at the ECOM apparel median 60 sits at the median; 0 is a verification; JPY 6000 at scale 150 = 40
    q = bank_score.amount_quantile(
        np.array([6000, 0, 6000]),
        np.array([2, 2, 0]),
        np.array([1.0, 1.0, 150.0]),
        np.log([60.0, 60.0, 40.0]),
        np.array([1.0, 1.0, 1.0]),
    )
    assert q.tolist() == pytest.approx([0.5, 0.0, 0.5])


# --- events ------------------------------------------------------------------------------------------------
def test_event_templates_follow_the_decision() -> None:
    n = 4
    t = Times(
        request=np.array([0, 0, 0, 0]) + T0,
        challenge=np.array([-1, 100, -1, -1]) + np.array([0, T0, 0, 0]),
        result=np.array([-1, 200, -1, -1]) + np.array([0, T0, 0, 0]),
        response=np.array([10, 210, 10, 10]) + T0,
        clearing=np.array([50, 300, -1, -1]) + np.array([T0, T0, 0, 0]),
        reversal=np.array([-1, -1, 40, -1]) + np.array([0, 0, T0, 0]),
        refund=np.array([900, -1, -1, -1]) + np.array([T0, 0, 0, 0]),
    )
    chargeback = np.array([500, -1, -1, -1]) + np.array([T0, 0, 0, 0])
    ev = explode(t, chargeback)
    kinds = {i: [k for f, k in zip(ev.flow, ev.kind, strict=True) if f == i] for i in range(n)}
    # REQUEST 0, CHALLENGE 1, RESULT 2, RESPONSE 3, CLEARING 4, REVERSAL 5, REFUND 6, CHARGEBACK 7
    assert kinds == {0: [0, 3, 4, 7, 6], 1: [0, 1, 2, 3, 4], 2: [0, 3, 5], 3: [0, 3]}
    for i in range(n):
        times = ev.ts[ev.flow == i]
        assert (np.diff(times) > 0).all()
        assert ev.seq[ev.flow == i].tolist() == list(range(times.size))


def test_local_clock_crosses_the_us_spring_gap() -> None:
    gap = int(dt.datetime(2026, 3, 8, 7, tzinfo=dt.UTC).timestamp()) * 1_000_000  # 02:00 EST
    tr = pl.DataFrame(
        {
            "tz_index": [0, 0, 1],
            "tzid": ["America/New_York", "America/New_York", "Europe/London"],
            "valid_from": [T0 - 30 * DAY, gap, T0 - 30 * DAY],
            "utc_offset_s": [-18000, -14400, 0],
        }
    )
    clock = LocalClock(tr)
    zone = clock.zone_codes(pl.Series(["America/New_York", "America/New_York", "Europe/London"]))
    got = clock.local_us(zone, np.array([gap - 1, gap, gap]))
    assert (got - np.array([gap - 1, gap, gap])).tolist() == [-18000 * 10**6, -14400 * 10**6, 0]


# --- what the bank learns, and its label -------------------------------------------------------------------
SUB = {s: i for i, s in enumerate(p6b.TRUTH_SUBTYPES)}
LAB = {s: i for i, s in enumerate(p6b.TRUTH_LABELS)}
CASES = [  # (label, subtype, decision_detect, approved, transfer, liability_shift, collateral)
    ("LEGIT", "NONE", -1, True, False, False, -1),
    ("FRAUD", "CNP_STOLEN", -1, True, False, False, -1),
    ("FRAUD", "CNP_STOLEN", -1, True, False, True, -1),
    ("FRAUD", "BUST_OUT", -1, True, False, False, -1),
    ("FRAUD", "APP_SCAM", -1, True, True, False, -1),
    ("LEGIT", "NONE", -1, True, False, False, SUB["ACCOUNT_TAKEOVER"]),
    ("FRAUD", "CNP_STOLEN", 0, False, False, False, -1),
    ("ABUSE", "FRIENDLY_FRAUD", -1, True, False, False, -1),
]


def learned() -> Any:
    n = len(CASES)
    col = list(zip(*CASES, strict=True))
    approved = np.array(col[3])
    ts = np.full(n, T0)
    response = ts + 250_000
    f = Flows(
        ts=ts,
        response_ts=response,
        clearing_ts=np.where(approved, response + HOUR, -1),
        refund_ts=np.full(n, -1),
        utc_offset_s=np.zeros(n, dtype=np.int32),
        decision_detect=np.array(col[2]),
        approved=approved,
        score=np.full(n, 0.05),
        label=np.array([LAB[x] for x in col[0]]),
        subtype=np.array([SUB[x] for x in col[1]]),
        cashout=np.zeros(n, bool),
        transfer=np.array(col[4]),
        card_present=np.zeros(n, bool),
        liability_shift=np.array(col[5]),
        amount_usd=np.full(n, 100.0),
        credit=np.zeros(n, bool),
        reimburse_p=np.full(n, 0.88),
        collateral_type=np.array(col[6]),
        collateral_ts=np.where(np.array(col[6]) >= 0, T0 + HOUR, -1),
    )
    k1 = np.tile([0.5, 0.99, 0.99, 0.5], (n, 1))
    k2 = np.tile([0.99, 0.1, 0.99, 0.5], (n, 1))
    k2[0, 1] = k2[3, 1] = k2[5, 1] = 0.99  # no dispute: the legit flows and the bust-out
    k2[5, 0] = 0.1  # collateral coin < .30
    k3 = np.tile([0.1, 0.1, 0.5, 0.1], (n, 1))
    k3[7, 0] = 0.7  # friendly: a service reason
    k4 = np.tile([0.5, 0.5, 0.5, 0.5], (n, 1))
    k4[6, 1] = 0.95  # the auth decline is not confirmed
    return f, learn(f, k1, k2, k3, k4, BANK)


def test_bank_labels_and_their_times() -> None:
    from scipy.stats import gamma  # an independent quantile (the state uses scipy.special.gammaincinv)

    f, got = learned()
    labels = [("CHARGEBACK_FRAUD", "CONFIRMED_FRAUD", "CLEARED_LEGIT", "NO_CASE")[x] for x in got.bank_label]
    assert labels == [
        "NO_CASE",
        "CHARGEBACK_FRAUD",
        "CONFIRMED_FRAUD",
        "CONFIRMED_FRAUD",
        "CONFIRMED_FRAUD",
        "CONFIRMED_FRAUD",
        "CLEARED_LEGIT",
        "CHARGEBACK_FRAUD",
    ]
    channels = [
        ("AT_AUTH", "MONITORING", "CUSTOMER_REPORT", "CHARGE_OFF")[x] if x >= 0 else None
        for x in got.detection
    ]
    assert channels == [
        None,
        "CUSTOMER_REPORT",
        "CUSTOMER_REPORT",
        "CHARGE_OFF",
        "CUSTOMER_REPORT",
        "MONITORING",
        "AT_AUTH",
        None,
    ]
    clearing = f.clearing_ts
    # 1: debit fraud disputed after the median 4 d, charged back after gamma(2, 3 d)'s median, decided
    # U[5, 75] → 40 d later
    assert got.dispute_ts[1] == clearing[1] + 4 * DAY
    cb = got.dispute_ts[1] + round(gamma.ppf(0.5, 2.0, scale=3.0) * DAY)
    assert abs(got.chargeback_ts[1] - cb) <= 1
    assert got.label_ts[1] == got.cb_outcome_ts[1] == got.chargeback_ts[1] + 40 * DAY
    assert p6b.DISPUTE_KINDS[got.kind[1]] == "FRAUD_CARD_ABSENT"
    # 2: 3DS-authenticated: chargeback p .05 < coin .1 → written off, confirmed 2 h after the report
    assert got.outcome[2] == 2 and got.chargeback_ts[2] == -1  # WRITTEN_OFF
    assert got.label_ts[2] == got.dispute_ts[2] + 2 * HOUR
    # 3: bust-out charged off U[60, 180] d → 120 d after the flow
    assert got.label_ts[3] == f.ts[3] + 120 * DAY and got.trigger_ts[3, 4] == got.label_ts[3]
    # 4: APP scam claim after the median 2 d, reimbursed (GB .88 > .5): confirmed 2 h later
    assert got.dispute_ts[4] == clearing[4] + 2 * DAY and got.outcome[4] == 4  # CLAIM_REIMBURSED
    assert got.kind[4] == -1 and got.label_ts[4] == got.dispute_ts[4] + 2 * HOUR
    # 5: collateral: truth LEGIT, detected 6 h after the response and confirmed 2 h later
    assert got.collateral.tolist() == [False] * 5 + [True, False, False]
    assert (
        got.detection_ts[5] == f.response_ts[5] + 6 * HOUR
        and got.label_ts[5] == got.detection_ts[5] + 2 * HOUR
    )
    # 6: declined at auth, not confirmed: cleared legit when the investigation ends
    assert got.trigger_ts[6, 0] == f.response_ts[6] and got.label_ts[6] == f.response_ts[6] + 2 * HOUR
    # 7: friendly fraud filed with a service reason (u .7 → (.7 − .5)/.5 = .4: NOT_AS_DESCRIBED), charged back
    # and won by the issuer (u .1 < .55): a chargeback label whatever the reason
    assert p6b.DISPUTE_KINDS[got.kind[7]] == "NOT_AS_DESCRIBED"
    assert got.label_ts[7] == got.cb_outcome_ts[7] and got.detection[7] == -1
    # triggers: none without a bank event, every trigger resolved at or after it fires
    assert (got.trigger_ts[0] == -1).all()
    fired = got.trigger_ts >= 0
    assert (got.resolution_ts[fired] >= got.trigger_ts[fired]).all()


def test_time_order_violations_stop_the_state() -> None:
    from engine.core.errors import EngineError
    from engine.segments.l3.s6b.events import check_order
    from engine.segments.l3.s6b.s5_bank_events import check_bank_times

    f, got = learned()
    t = Times(f.ts, f.ts, f.ts, f.response_ts, f.clearing_ts, np.full(f.ts.size, -1), f.refund_ts)
    check_bank_times(t, got, "6B.S5")
    early = got.dispute_ts.copy()
    early[1] = f.clearing_ts[1] - 1
    with pytest.raises(EngineError) as err:
        check_bank_times(t, type(got)(**{**got.__dict__, "dispute_ts": early}), "6B.S5")
    assert err.value.code == "E_6B_BANK_TIME_ORDER"
    ev = explode(t, np.full(f.ts.size, -1))
    tied = type(ev)(ev.flow, ev.seq, ev.kind, np.where(ev.seq == 1, ev.ts - 250_000, ev.ts))
    with pytest.raises(EngineError) as err:
        check_order(tied, np.arange(f.ts.size), "6B.S5")
    assert err.value.code == "E_6B_EVENT_ORDER"


@settings(max_examples=60, deadline=None)
@given(
    merchants=st.lists(st.integers(1, 6), min_size=2, max_size=60),
    gaps=st.lists(st.integers(0, 120).map(lambda h: h * HOUR), min_size=4, max_size=4),
    cuts=st.sets(st.floats(0.0, 1.0), min_size=1, max_size=6),
)
def test_held_events_give_the_stream_order_across_any_cut(
    merchants: list[int], gaps: list[int], cuts: set[float]
) -> None:
    """Flows in s4 order (merchant, request time, flow_id), cut into row batches anywhere: the events
    released by HeldEvents, batch by batch, are exactly all events sorted by (merchant, ts, flow_id,
    event_seq), even when a merchant's later events (clearings, refunds days on) outlive its batch or tie
    with a later flow's request; and nothing final stays held."""
    n = len(merchants)
    request = [T0 + (i * 7919 % 13) * HOUR for i in range(n)]  # repeats: flows tie on their request time
    flows = sorted(zip(merchants, request, range(1, n + 1), strict=True))
    rows = [
        (m, t + sum(gaps[: k + 1]) * (k > 0), f, k)  # event k of the flow, k = 0 at the request
        for m, t, f in flows
        for k in range(1 + f % 4)
    ]
    frame = pl.DataFrame(rows, schema=["merchant_id", "ts_utc", "flow_id", "event_seq"], orient="row")
    frame = frame.with_columns(pl.col("ts_utc").cast(pl.Datetime("us", "UTC")))
    expected = frame.sort("merchant_id", "ts_utc", "flow_id", "event_seq")
    bounds = sorted({0, n, *(int(c * n) for c in cuts)})
    held, out = HeldEvents(), []
    for lo, hi in itertools.pairwise(bounds):
        first_m, first_t, _ = flows[lo]
        out.append(held.release_before(first_m, first_t))
        if held.held is not None:  # what stays held is what may still sort after a later flow's event
            first_held = held.held.select("merchant_id", pl.col("ts_utc").dt.epoch("us")).row(0)
            assert first_held >= (first_m, first_t)
        ids = {f for _, _, f in flows[lo:hi]}
        held.add(
            frame.filter(pl.col("flow_id").is_in(ids)).sort("merchant_id", "ts_utc", "flow_id", "event_seq")
        )
    out.append(held.release_all())
    got = pl.concat([o for o in out if o is not None])
    assert got.equals(expected)
