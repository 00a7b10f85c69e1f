"""6B.S5's authorisation decision (design §4.8 step 2, amendment 7): who the issuer declines, challenges or
approves, and the 3-D Secure fields of the authorisation message (amendment 9).

In order, first match: a probe on a non-existent card number declines INVALID_CARD_DATA, as does a probe
whose decline-bias coin falls (u < decline_bias); a non-fraud decline of the flow's plan stands; a score
above the decline threshold declines SUSPECTED_FRAUD (DECLINE_FRAUD); else an ECOM card flow is
authenticated by 3DS with its issuer country's share (× one_leg_out_factor when the merchant lies outside
the issuer's SCA group) and challenged with its challenge share, and an ECOM or TRANSFER flow scoring above
the challenge threshold is challenged too; a challenge ends PASS / FAIL / ABANDON by the truth subtype's
step-up mix (the fraudster or the genuine cardholder answers it) and only PASS approves. Stand-in decisions
(the scheme answers for an issuer that timed out) and merchant-initiated recurring payments are neither
scored into a decline nor challenged.
Lanes of `6B.bank` (flow_id, k, 0, 0): k = 0 w1 the decline-bias coin, w2 the 3DS coin, w3 the challenge
coin; k = 1 w0 the step-up outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.segments.l3.s6b.policy import (
    DECLINE_REASONS,
    TRUTH_SUBTYPES,
    BankView,
)

AUTH_DECISIONS = (
    "APPROVE",
    "DECLINE",
    "DECLINE_FRAUD",
    "CHALLENGE_PASS",
    "CHALLENGE_FAIL",
    "CHALLENGE_ABANDON",
)
THREE_DS_RESULTS = (
    "FRICTIONLESS",
    "CHALLENGE_PASS",
    "CHALLENGE_FAIL",
    "CHALLENGE_ABANDON",
    "NOT_AUTHENTICATED",
)
ECIS = ("05", "06", "07", "02", "01", "00")  # contract order: Visa/Amex 05/06/07, Mastercard 02/01/00
APPROVE, DECLINE, DECLINE_FRAUD, CHALLENGE_PASS, CHALLENGE_FAIL, CHALLENGE_ABANDON = range(6)
ECOM, TRANSFER = 1, 3  # channel codes (policy CHANNELS order)
PASS = 0
INVALID_CARD_DATA = DECLINE_REASONS.index("INVALID_CARD_DATA")
SUSPECTED_FRAUD = DECLINE_REASONS.index("SUSPECTED_FRAUD")
AUTHENTICATION_FAILED = DECLINE_REASONS.index("AUTHENTICATION_FAILED")


@dataclass(frozen=True)
class AuthInputs:
    """One batch's flows as the decision needs them; codes index the policy vocabularies (−1: null)."""

    channel: np.ndarray  # CHANNELS code
    no_card: np.ndarray  # a probe on a non-existent card number (no party)
    nonfraud: np.ndarray  # the plan's DECLINE_REASONS code, −1 when the plan approves
    decline_bias: np.ndarray
    stand_in: np.ndarray
    recurring: np.ndarray
    subtype: np.ndarray  # TRUTH_SUBTYPES code
    three_ds_share: np.ndarray  # of the issuer's country, one-leg-out factor applied
    challenge_share: np.ndarray
    mastercard: np.ndarray  # the scheme writes Mastercard ECIs


@dataclass(frozen=True)
class Auth:
    decision: np.ndarray  # AUTH_DECISIONS code
    reason: np.ndarray  # DECLINE_REASONS code, −1 when approved
    challenged: np.ndarray  # a step-up challenge happened
    step_up: np.ndarray  # STEP_UP_RESULTS code, −1 without a challenge
    three_ds: np.ndarray  # THREE_DS_RESULTS code, −1 off ECOM
    eci: np.ndarray  # ECIS code, −1 off ECOM
    liability_shift: np.ndarray

    @property
    def approved(self) -> np.ndarray:
        return (self.decision == APPROVE) | (self.decision == CHALLENGE_PASS)


def step_up_cdf(policy: BankView) -> np.ndarray:
    """(len(TRUTH_SUBTYPES), 2): cumulative PASS and PASS+FAIL shares per subtype (default if unlisted)."""
    rows = []
    for subtype in TRUTH_SUBTYPES:
        mix = policy.step_up.outcomes.get(subtype, policy.step_up.default)  # type: ignore[call-overload]
        rows.append([mix["PASS"], mix["PASS"] + mix["FAIL"]])
    return np.array(rows, dtype=np.float64)


def decide(x: AuthInputs, score: np.ndarray, k0: np.ndarray, k1: np.ndarray, policy: BankView) -> Auth:
    """The decision of every flow from its score and its lanes k0 = block 0, k1 = block 1 (shape (n, 4))."""
    n = score.shape[0]
    thr = policy.thresholds
    decision = np.full(n, APPROVE, dtype=np.int8)
    reason = np.full(n, -1, dtype=np.int8)
    invalid = x.no_card | (k0[:, 1] < x.decline_bias)
    plan = ~invalid & (x.nonfraud >= 0)
    scored = ~invalid & ~plan & ~x.stand_in
    fraud = scored & (score > thr.decline)
    decision[invalid | plan] = DECLINE
    reason[invalid] = INVALID_CARD_DATA
    reason[plan] = x.nonfraud[plan]
    decision[fraud] = DECLINE_FRAUD
    reason[fraud] = SUSPECTED_FRAUD

    open_ = scored & ~fraud & ~x.recurring
    ecom = x.channel == ECOM
    three_ds = open_ & ecom & (k0[:, 2] < x.three_ds_share)
    high = (ecom | (x.channel == TRANSFER)) & (score > thr.challenge) & policy.sca.high_score_challenge
    challenged = (three_ds & (k0[:, 3] < x.challenge_share)) | (open_ & high)
    cdf = step_up_cdf(policy)[x.subtype]
    u = k1[:, 0]
    outcome = (u >= cdf[:, 0]).astype(np.int8) + (u >= cdf[:, 1]).astype(np.int8)
    step_up = np.where(challenged, outcome, -1).astype(np.int8)
    decision[challenged] = CHALLENGE_PASS + outcome[challenged]
    reason[challenged & (outcome != PASS)] = AUTHENTICATION_FAILED

    authenticated = three_ds & ~challenged | challenged & (outcome == PASS) & ecom
    result = np.where(challenged, 1 + outcome, np.where(three_ds, 0, len(THREE_DS_RESULTS) - 1))
    eci = np.where(authenticated, 0, 2) + np.where(x.mastercard, 3, 0)
    return Auth(
        decision=decision,
        reason=reason,
        challenged=challenged,
        step_up=step_up,
        three_ds=np.where(ecom, result, -1).astype(np.int8),
        eci=np.where(ecom, eci, -1).astype(np.int8),
        liability_shift=authenticated,
    )


def sca_shares(
    policy: BankView, countries: list[str], issuer: np.ndarray, merchant: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per flow (three_ds_share, challenge_share) of its issuer's country: a listed country, else its group,
    else the default; one leg out (the merchant outside the issuer's group) scales the 3DS share. `issuer`
    and `merchant` are positions in `countries` (−1: unknown, which takes the default)."""
    sca = policy.sca
    groups = list(sca.groups)
    group_of = {iso: g for g, members in sca.groups.items() for iso in members}
    rules = []
    for iso in countries:
        group = group_of.get(iso)
        rules.append(sca.by_country.get(iso) or (sca.by_group.get(group) if group else None) or sca.default)
    share = np.array([r.three_ds_share for r in rules] + [sca.default.three_ds_share])
    challenge = np.array([r.challenge_share for r in rules] + [sca.default.challenge_share])
    group = np.array([groups.index(group_of[c]) if c in group_of else -1 for c in countries] + [-1])
    gi, gm = group[issuer], group[merchant]
    one_leg_out = (gi >= 0) & (gm != gi)
    return share[issuer] * np.where(one_leg_out, sca.one_leg_out_factor, 1.0), challenge[issuer]
