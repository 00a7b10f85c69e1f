"""6B.S5 after the authorisation: what the bank learns about a flow, and when (design §4.8 steps 4–5 with
amendments 6 and 7; numbers from bank_view.yaml).

- Detection: at auth (DECLINE_FRAUD, CHALLENGE_FAIL); else an approved flow is caught by monitoring with
  p = base[subtype]·(score/0.5)^score_exponent capped, a batch_share of them at the next batch_hour local, the
  rest after a lognormal delay; a fraud-coded dispute the bank had not caught is a CUSTOMER_REPORT.
- Collateral (amendment 6): a LEGIT flow of an account that also had an ACCOUNT_TAKEOVER / CARD_TESTING flow
  within window_s is, with p[type], treated by the bank as that fraud (detected by monitoring, disputed with
  that type's p): label noise, truth stays LEGIT.
- Disputes of cleared flows with p[subtype] (card-testing cash-out: card_testing_cashout_p); ≈
  small_unreported of fraud under small_usd is never reported; a refund made before the dispute pre-empts it.
  Card fraud files a fraud reason (card absent / present / counterfeit), friendly fraud half the time too, the
  rest a service reason from service_kinds; TRANSFERs file scam claims (reimbursed by the issuer country's
  rate for APP scams).
  Delays by kind: debit/credit fraud (by the account type), friendly, service, scam claim.
- Chargebacks of card disputes with p[subtype] (3DS-authenticated fraud: authenticated_chargeback_p; small
  fraud: small_chargeback_p), after gamma(shape, scale) days (exact quantile), outcome by truth label, decided
  U[decided_d] days later.
- Confirmation of a detection with p[label] after a lognormal delay; a bust-out flow the bank never caught is
  charged off U[charge_off.delay_d] days after it (CHARGE_OFF, confirmed fraud).
- Bank label, first match: CHARGEBACK_FRAUD (a chargeback won or partly won by the issuer, any reason);
  CONFIRMED_FRAUD (confirmed, claim reimbursed, or charged off); CLEARED_LEGIT (any other trigger); NO_CASE.
  It is final at its own evidence's time (the earliest confirmation; the last resolution for CLEARED_LEGIT),
  and never before a chargeback of the flow is decided.
Lanes of `6B.bank` (flow_id, k, 0, 0): k = 1 w1 detection coin, w2 batch coin, w3 detection delay; k = 2 w0
collateral coin, w1 dispute coin, w2 unreported coin, w3 dispute delay; k = 3 w0 reason kind, w1 chargeback
coin, w2 chargeback delay, w3 chargeback outcome; k = 4 w0 decision delay, w1 confirmation coin, w2
confirmation delay, w3 the charge-off delay (bust-out) or the reimbursement coin (scam claims).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaincinv

from engine.kernels.normal import ndtri_array
from engine.segments.l3.s6b.policy import (
    CB_OUTCOMES,
    DISPUTE_KINDS,
    TRUTH_LABELS,
    TRUTH_SUBTYPES,
    BankView,
    Disputes,
    Gamma,
    LogNormal,
)

US = 1_000_000
HOUR_US = 3600 * US
DAY_US = 24 * HOUR_US
DETECTION_CHANNELS = ("AT_AUTH", "MONITORING", "CUSTOMER_REPORT", "CHARGE_OFF")
AT_AUTH, MONITORING, CUSTOMER_REPORT, CHARGE_OFF = range(4)
DISPUTE_OUTCOMES = (
    "CHARGEBACK_RAISED",
    "RESOLVED_WITH_MERCHANT",
    "WRITTEN_OFF",
    "REJECTED",
    "CLAIM_REIMBURSED",
    "CLAIM_DECLINED",
)
RAISED, RESOLVED, WRITTEN_OFF, REJECTED, REIMBURSED, CLAIM_DECLINED = range(6)
TRIGGERS = ("AUTH_DECLINE_FRAUD", "CHALLENGE_FAILED", "DETECTION", "DISPUTE", "CHARGE_OFF")
T_AUTH_DECLINE, T_CHALLENGE, T_DETECTION, T_DISPUTE, T_CHARGE_OFF = range(5)
BANK_LABELS = ("CHARGEBACK_FRAUD", "CONFIRMED_FRAUD", "CLEARED_LEGIT", "NO_CASE")
CHARGEBACK_FRAUD, CONFIRMED_FRAUD, CLEARED_LEGIT, NO_CASE = range(4)
CARD_ABSENT, CARD_PRESENT, COUNTERFEIT = range(3)
LEGIT, FRAUD = 0, 1
SUB = {name: i for i, name in enumerate(TRUTH_SUBTYPES)}
NONE = -1


@dataclass(frozen=True)
class Flows:
    """One batch after the decision; times are UTC µs (−1: none), codes index the policy vocabularies."""

    ts: np.ndarray
    response_ts: np.ndarray
    clearing_ts: np.ndarray
    refund_ts: np.ndarray
    utc_offset_s: np.ndarray
    decision_detect: np.ndarray  # detected at auth: 0 AUTH_DECLINE_FRAUD, 1 CHALLENGE_FAILED, −1 no
    approved: np.ndarray
    score: np.ndarray
    label: np.ndarray  # TRUTH_LABELS code
    subtype: np.ndarray  # TRUTH_SUBTYPES code
    cashout: np.ndarray  # card-testing cash-out phase
    transfer: np.ndarray
    card_present: np.ndarray
    liability_shift: np.ndarray
    amount_usd: np.ndarray
    credit: np.ndarray  # the account is a credit card
    reimburse_p: np.ndarray  # APP claim reimbursement rate of the issuer's country
    collateral_type: np.ndarray  # subtype code of a campaign flow within the window on the account, −1 none
    collateral_ts: np.ndarray  # that campaign flow's time (−1 none)


@dataclass(frozen=True)
class Learned:
    detection: np.ndarray  # DETECTION_CHANNELS code or −1
    detection_ts: np.ndarray
    dispute_ts: np.ndarray
    kind: np.ndarray  # DISPUTE_KINDS code or −1 (scam claims have none)
    outcome: np.ndarray  # DISPUTE_OUTCOMES code or −1
    chargeback_ts: np.ndarray
    cb_outcome: np.ndarray  # CB_OUTCOMES code or −1
    cb_outcome_ts: np.ndarray
    bank_label: np.ndarray
    label_ts: np.ndarray
    trigger_ts: np.ndarray  # (n, len(TRIGGERS)), −1 where the flow has no such trigger
    resolution_ts: np.ndarray
    collateral: np.ndarray


def lognormal(u: np.ndarray, law: LogNormal, unit_us: int) -> np.ndarray:
    """median·exp(σΦ⁻¹(u)) clipped, in µs (≥ 1)."""
    x = np.clip(law.median * np.exp(law.sigma * ndtri_array(np.ascontiguousarray(u))), *law.clip)
    return np.maximum(np.rint(x * unit_us), 1).astype(np.int64)


def gamma_days(u: np.ndarray, law: Gamma) -> np.ndarray:
    """The u-quantile of gamma(shape, scale) days, clipped, in µs (one uniform, monotone in u)."""
    x = np.clip(gammaincinv(law.shape, u) * law.scale, *law.clip)
    return np.rint(x * DAY_US).astype(np.int64)


def uniform_days(u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.maximum(np.rint((lo + (hi - lo) * u) * DAY_US), 1).astype(np.int64)


def next_local_hour(t: np.ndarray, offset_s: np.ndarray, hour: float) -> np.ndarray:
    """The first local `hour` o'clock strictly after t (UTC µs), at the flow's UTC offset."""
    local = t + offset_s.astype(np.int64) * US
    at = local // DAY_US * DAY_US + round(hour * HOUR_US)
    at = np.where(at <= local, at + DAY_US, at)
    return at - offset_s.astype(np.int64) * US


def by_subtype(table: dict[str, float]) -> np.ndarray:
    return np.array([table[s] for s in TRUTH_SUBTYPES], dtype=np.float64)


def dispute_kind(
    f: Flows,
    eff: np.ndarray,
    friendly: np.ndarray,
    fraud_reason: np.ndarray,
    u_kind: np.ndarray,
    dp: Disputes,
    rows: np.ndarray,
) -> np.ndarray:
    """DISPUTE_KINDS code of the candidate rows: a fraud reason by where the card was (counterfeit, present,
    absent), else a service kind from service_kinds; none for a transfer's scam claim. A friendly dispute's
    service kind re-uses the kind uniform rescaled past the fraud-reason share."""
    fraud_kind = np.where(
        eff[rows] == SUB["COUNTERFEIT"],
        COUNTERFEIT,
        np.where(f.card_present[rows], CARD_PRESENT, CARD_ABSENT),
    )
    share = dp.friendly_fraud_reason_share
    u = np.where(friendly[rows], (u_kind[rows] - share) / max(1.0 - share, 1e-12), u_kind[rows])
    kinds = list(dp.service_kinds)
    cdf = np.cumsum([dp.service_kinds[k] for k in kinds])
    pick = np.minimum(np.searchsorted(cdf, np.clip(u, 0.0, 1.0), side="right"), len(kinds) - 1)
    service = np.array([DISPUTE_KINDS.index(k) for k in kinds])[pick]
    return np.where(f.transfer[rows], NONE, np.where(fraud_reason[rows], fraud_kind, service))


def dispute_delay(
    f: Flows,
    eff: np.ndarray,
    friendly: np.ndarray,
    fraud_like: np.ndarray,
    u: np.ndarray,
    dp: Disputes,
    rows: np.ndarray,
) -> np.ndarray:
    """µs from clearing to the dispute of the candidate rows, by kind: scam claim, friendly, credit or debit
    card fraud (the account type), else a service dispute."""
    transfer = f.transfer[rows]
    groups = {
        "SCAM_CLAIM": transfer & (eff[rows] == SUB["APP_SCAM"]),
        "FRIENDLY": ~transfer & friendly[rows],
        "CREDIT_FRAUD": ~transfer & fraud_like[rows] & f.credit[rows],
        "DEBIT_FRAUD": ~transfer & fraud_like[rows] & ~f.credit[rows],
    }
    delay = np.zeros(rows.size, dtype=np.int64)
    rest = np.ones(rows.size, dtype=bool)
    for name, sel in groups.items():
        delay[sel] = lognormal(u[sel], dp.delay_d[name], DAY_US)  # type: ignore[index]
        rest &= ~sel
    delay[rest] = lognormal(u[rest], dp.delay_d["SERVICE"], DAY_US)
    return delay


def learn(f: Flows, k1: np.ndarray, k2: np.ndarray, k3: np.ndarray, k4: np.ndarray, p: BankView) -> Learned:
    n = f.ts.shape[0]
    # --- collateral: the bank takes a genuine flow near an ATO / card-testing flow for that fraud
    coll_p = np.zeros(n)
    for name, prob in p.collateral.p.items():
        coll_p[f.collateral_type == SUB[name]] = prob
    collateral = (f.label == LEGIT) & (f.collateral_type >= 0) & (k2[:, 0] < coll_p)
    eff = np.where(collateral, f.collateral_type, f.subtype)
    eff_label = np.where(collateral, FRAUD, f.label)

    # --- detection at auth, then by monitoring
    at_auth = f.decision_detect >= 0
    det = p.detection
    p_mon = np.minimum(by_subtype(det.base)[eff] * (f.score / 0.5) ** det.score_exponent, det.cap)
    monitored = f.approved & ~at_auth & ((k1[:, 1] < p_mon) | collateral)
    rows = np.flatnonzero(monitored)
    mon_ts = np.where(
        k1[rows, 2] < det.batch_share,
        next_local_hour(f.response_ts[rows], f.utc_offset_s[rows], det.batch_hour),
        f.response_ts[rows] + lognormal(k1[rows, 3], det.delay_h, HOUR_US),
    )
    detection = np.where(at_auth, AT_AUTH, np.where(monitored, MONITORING, NONE))
    detection_ts = np.where(at_auth, f.response_ts, NONE)
    # the bank cannot react to a takeover before it happens: collateral detection follows the campaign flow
    detection_ts[rows] = np.where(collateral[rows], np.maximum(mon_ts, f.collateral_ts[rows] + 1), mon_ts)

    # --- disputes and scam claims of cleared flows (kinds and delays only for the few candidates)
    dp = p.disputes
    p_disp = by_subtype(dp.p)[eff]
    p_disp = np.where(f.cashout & (eff == SUB["CARD_TESTING"]), dp.card_testing_cashout_p, p_disp)
    small = (eff_label == FRAUD) & (f.amount_usd < dp.small_usd)
    unreported = small & (k2[:, 2] < dp.small_unreported)
    fraud_like = (eff_label == FRAUD) & (eff != SUB["FRIENDLY_FRAUD"])
    friendly = eff == SUB["FRIENDLY_FRAUD"]
    friendly_fraud_reason = friendly & (k3[:, 0] < dp.friendly_fraud_reason_share)
    fraud_reason = ~f.transfer & (fraud_like | friendly_fraud_reason)
    cand = np.flatnonzero((f.clearing_ts >= 0) & (k2[:, 1] < p_disp) & ~unreported)
    kind = np.full(n, NONE, dtype=np.int64)
    kind[cand] = dispute_kind(f, eff, friendly, fraud_reason, k3[:, 0], dp, cand)
    dispute_ts = np.full(n, NONE, dtype=np.int64)
    dispute_ts[cand] = f.clearing_ts[cand] + dispute_delay(
        f, eff, friendly, fraud_like, k2[cand, 3], dp, cand
    )
    pre_empted = (f.refund_ts >= 0) & (f.refund_ts <= dispute_ts)
    disputed = (dispute_ts >= 0) & ~pre_empted
    dispute_ts = np.where(disputed, dispute_ts, NONE)
    kind = np.where(disputed, kind, NONE)

    # --- chargebacks (card disputes), claims (transfers)
    cb = p.chargebacks
    p_cb = by_subtype(cb.p)[eff]
    p_cb = np.where(fraud_reason & f.liability_shift, np.minimum(p_cb, dp.authenticated_chargeback_p), p_cb)
    p_cb = np.where(fraud_reason & small, np.minimum(p_cb, dp.small_chargeback_p), p_cb)
    charged = disputed & ~f.transfer & (k3[:, 1] < p_cb)
    chargeback_ts = np.full(n, NONE, dtype=np.int64)
    chargeback_ts[charged] = dispute_ts[charged] + gamma_days(k3[charged, 2], cb.delay_d)
    mix = np.array([[cb.outcomes[lab][o] for o in CB_OUTCOMES] for lab in TRUTH_LABELS]).cumsum(axis=1)
    won = (k3[:, 3][:, None] >= mix[f.label][:, :2]).sum(axis=1)
    cb_outcome = np.where(charged, won, NONE)
    decided = uniform_days(k4[:, 0], cb.decided_d.lo, cb.decided_d.hi)
    cb_outcome_ts = np.where(charged, chargeback_ts + decided, NONE)

    confirm_delay = np.zeros(n, dtype=np.int64)
    rows = np.flatnonzero(disputed | (detection >= 0))
    confirm_delay[rows] = lognormal(k4[rows, 2], p.confirmation.delay_h, HOUR_US)
    claim = disputed & f.transfer
    reimbursed = claim & (eff == SUB["APP_SCAM"]) & (k4[:, 3] < f.reimburse_p)
    outcome = np.select(
        [~disputed, charged, claim & reimbursed, claim, fraud_reason & (f.label == FRAUD), fraud_reason],
        [NONE, RAISED, REIMBURSED, CLAIM_DECLINED, WRITTEN_OFF, REJECTED],
        RESOLVED,
    )
    dispute_res = np.where(charged, cb_outcome_ts, dispute_ts + confirm_delay)

    # --- a fraud-coded dispute the bank had not caught reveals the fraud
    reported = disputed & (fraud_reason | claim & (eff == SUB["APP_SCAM"])) & (detection < 0)
    detection = np.where(reported, CUSTOMER_REPORT, detection)
    detection_ts = np.where(reported, dispute_ts, detection_ts)

    # --- charge-off of bust-out flows the bank never caught before
    charge_off = f.approved & (eff == SUB["BUST_OUT"]) & (detection < 0)
    lo, hi = p.charge_off.delay_d.lo, p.charge_off.delay_d.hi
    charge_off_ts = np.where(charge_off, f.ts + uniform_days(k4[:, 3], lo, hi), NONE)
    detection = np.where(charge_off, CHARGE_OFF, detection)
    detection_ts = np.where(charge_off, charge_off_ts, detection_ts)

    # --- confirmation of a detection (not of a charge-off, which is final)
    detected = (detection >= 0) & ~charge_off
    conf_p = np.array([p.confirmation.p[lab] for lab in TRUTH_LABELS])[eff_label]
    confirmed = detected & (k4[:, 1] < conf_p)
    conf_ts = np.where(detected, detection_ts + confirm_delay, NONE)

    # --- triggers and their resolutions
    trig = np.full((n, len(TRIGGERS)), NONE, dtype=np.int64)
    res = np.full_like(trig, NONE)
    for t_code in (T_AUTH_DECLINE, T_CHALLENGE):
        rows = f.decision_detect == t_code
        trig[rows, t_code], res[rows, t_code] = f.response_ts[rows], conf_ts[rows]
    rows = detection == MONITORING
    trig[rows, T_DETECTION], res[rows, T_DETECTION] = detection_ts[rows], conf_ts[rows]
    trig[disputed, T_DISPUTE], res[disputed, T_DISPUTE] = dispute_ts[disputed], dispute_res[disputed]
    trig[charge_off, T_CHARGE_OFF], res[charge_off, T_CHARGE_OFF] = (
        charge_off_ts[charge_off],
        charge_off_ts[charge_off],
    )

    # --- bank label, first match, and when it became final
    # design §4.8 step 5: any chargeback the issuer wins (or partly wins) labels the flow fraud, whatever its
    # reason code: the classic chargeback label, noisy the way real ones are
    cb_fraud = charged & (cb_outcome != CB_OUTCOMES.index("MERCHANT_WON"))
    big = np.iinfo(np.int64).max
    confirm_at = np.minimum.reduce(
        [
            np.where(confirmed, conf_ts, big),
            np.where(reimbursed, dispute_res, big),
            np.where(charge_off, charge_off_ts, big),
        ]
    )
    any_trigger = (trig >= 0).any(axis=1)
    label = np.select(
        [cb_fraud, confirm_at < big, any_trigger], [CHARGEBACK_FRAUD, CONFIRMED_FRAUD, CLEARED_LEGIT], NO_CASE
    )
    label_ts = np.select(
        [cb_fraud, confirm_at < big, any_trigger], [cb_outcome_ts, confirm_at, res.max(axis=1)], NONE
    )
    # a label is final only once a pending chargeback is decided
    label_ts = np.where(charged, np.maximum(label_ts, cb_outcome_ts), label_ts)
    return Learned(
        detection=detection,
        detection_ts=detection_ts,
        dispute_ts=dispute_ts,
        kind=kind,
        outcome=outcome,
        chargeback_ts=chargeback_ts,
        cb_outcome=cb_outcome,
        cb_outcome_ts=cb_outcome_ts,
        bank_label=label,
        label_ts=label_ts,
        trigger_ts=trig,
        resolution_ts=res,
        collateral=collateral,
    )
