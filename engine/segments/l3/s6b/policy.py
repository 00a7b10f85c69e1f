"""Pydantic models of 6B's policy packs; their JSON Schemas under contracts/ are generated from these.

One section per pack (channels, attachment, sessions, flows, amounts, campaigns, truth, bank_view, cases,
validation); POLICIES at the bottom maps each shipped file config/policies/6B/<name>.yaml to its model.
The vocabularies below are the closed sets the 6B states and contracts/6B.yaml share (design layer2_3.md §4,
§5 and the amendments of 2026-11-29). Every cross-field rule the design gives 6B.S0 that needs no data
(shares sum to 1, unique truth ranks, tactics in the vocabulary, the target inside its band) is a model rule
here, so a broken pack fails at plan time naming its field.
"""

from __future__ import annotations

import itertools
from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from engine.core.policy_model import (
    Coef,
    Currency,
    FieldError,
    Iso2,
    MccCode,
    Positive,
    Prob,
    Strict,
    ordered,
    pair,
    validation_model,
)
from engine.segments.l1.s1a.policy import SECTORS, SectorName
from engine.segments.l3.s6a.policy import (
    INSTRUMENT_TYPES,
    OPERATING_SYSTEMS,
    RAILS,
    REGIONS,
    SEGMENTS,
)

TOLERANCE = 1e-9  # a mix must sum to 1 within this (design §3.2 uses the same for 6A)

CHANNELS = ("POS", "ECOM", "ATM", "TRANSFER")  # channel codes 0..3 in this order (design §4.1)
POS_ECOM = ("POS", "ECOM")  # the channels with amounts by sector, refunds and friendly fraud
# catalogue order is claim order (§4.7 step 2: the first type wins) and type_code = position + 1
# (campaign_id = type_code << 56 | instance)
CAMPAIGN_TYPES = (
    "CARD_TESTING",
    "CNP_STOLEN",
    "ACCOUNT_TAKEOVER",
    "APP_SCAM",
    "BUST_OUT",
    "LOST_STOLEN",
    "COUNTERFEIT",
    "MERCHANT_COLLUSION",
    "REFUND_ABUSE",
    "PROMO_ABUSE",
)
# tactic → tactic_mask bit (design §5.1: 1 amount, 2 IP, 4 device, 8 site, 16 burst, 32 clearing suppression,
# 64 new flow, 128 refund injection)
TACTICS = (
    "AMOUNT_SHIFT",
    "IP_SWAP_ANON",
    "DEVICE_SWAP_SHARED",
    "SITE_SHIFT",
    "BURST_TIMING",
    "CLEARING_SUPPRESSION",
    "NEW_FLOW",
    "REFUND_INJECTION",
)
TACTIC_BITS = {t: 1 << i for i, t in enumerate(TACTICS)}
TRUTH_LABELS = ("LEGIT", "FRAUD", "ABUSE")
TRUTH_SUBTYPES = (
    "NONE",
    "CARD_TESTING",
    "CNP_STOLEN",
    "ACCOUNT_TAKEOVER",
    "APP_SCAM",
    "MULE_CASHOUT",
    "BUST_OUT",
    "LOST_STOLEN",
    "COUNTERFEIT",
    "MERCHANT_COLLUSION",
    "REFUND_ABUSE",
    "PROMO_ABUSE",
    "MULE_ACTIVITY",
    "FRIENDLY_FRAUD",
)
# amendment 6: COLLATERAL is no truth rule any more (its effect is bank-view label noise, bank_view.yaml)
TRUTH_RULES = ("CAMPAIGN", "POSTURE", "FRIENDLY", "DEFAULT")
DECLINE_REASONS = (
    "INSUFFICIENT_FUNDS",
    "DO_NOT_HONOUR",
    "EXPIRED_CARD",
    "INCORRECT_PIN",
    "PIN_TRIES_EXCEEDED",
    "LIMIT_EXCEEDED",
    "INVALID_CARD_DATA",
    "LOST_STOLEN_CARD",
    "SUSPECTED_FRAUD",
    "AUTHENTICATION_FAILED",
)
# the reasons a non-fraud decline of the baseline plan may carry (the others come from the bank view)
NONFRAUD_REASONS = DECLINE_REASONS[:7]
POS_ENTRY_MODES = ("CHIP", "CONTACTLESS", "MAGSTRIPE", "MANUAL", "ECOM", "CREDENTIAL_ON_FILE")
CVMS = ("PIN", "SIGNATURE", "NONE", "CDCVM")
WALLETS = ("NONE", "APPLE_PAY", "GOOGLE_PAY", "SAMSUNG_PAY", "CLICK_TO_PAY")
CVV_RESULTS = ("MATCH", "NO_MATCH", "NOT_PROCESSED", "NOT_PRESENT")
AVS_RESULTS = ("MATCH", "PARTIAL", "NO_MATCH", "UNAVAILABLE", "NOT_SUPPORTED")
STEP_UP_RESULTS = ("PASS", "FAIL", "ABANDON")
# amendment 10's non-monetary events (table account_events; the bank's blocks and reissues are card_reissues)
ACCOUNT_EVENT_TYPES = ("NEW_DEVICE_LOGIN", "CONTACT_DETAIL_CHANGE", "NEW_PAYEE_ADDED", "TOKEN_PROVISIONED")
DISPUTE_KINDS = (
    "FRAUD_CARD_ABSENT",
    "FRAUD_CARD_PRESENT",
    "FRAUD_COUNTERFEIT",
    "NOT_RECEIVED",
    "NOT_AS_DESCRIBED",
    "CREDIT_NOT_PROCESSED",
    "CANCELLED_RECURRING",
    "DUPLICATE",
)
REASON_CODE_SCHEMES = ("VISA", "MASTERCARD", "AMEX")
CB_OUTCOMES = ("ISSUER_WON", "MERCHANT_WON", "PARTIAL")

Channel = Literal[CHANNELS]  # type: ignore[valid-type]
Sector = SectorName  # 1A's sector vocabulary (contracts/common.yaml#/$defs/sector)
Tactic = Literal[TACTICS]  # type: ignore[valid-type]
TruthLabel = Literal[TRUTH_LABELS]  # type: ignore[valid-type]
Subtype = Literal[TRUTH_SUBTYPES]  # type: ignore[valid-type]
NonfraudReason = Literal[NONFRAUD_REASONS]  # type: ignore[valid-type]
Region = Literal[REGIONS]  # type: ignore[valid-type]
Segment = Literal[SEGMENTS]  # type: ignore[valid-type]
InstrumentType = Literal[INSTRUMENT_TYPES]  # type: ignore[valid-type]
Rail = Literal[RAILS]  # type: ignore[valid-type]
Os = Literal[OPERATING_SYSTEMS]  # type: ignore[valid-type]
Wallet = Literal[WALLETS]  # type: ignore[valid-type]
StepUpResult = Literal[STEP_UP_RESULTS]  # type: ignore[valid-type]
AccountEvent = Literal[ACCOUNT_EVENT_TYPES]  # type: ignore[valid-type]
DisputeKind = Literal[DISPUTE_KINDS]  # type: ignore[valid-type]
CbOutcome = Literal[CB_OUTCOMES]  # type: ignore[valid-type]
Weight = Annotated[float, Field(ge=0.0, le=1e6)]
Factor = Annotated[float, Field(gt=0.0, le=100.0)]
Sigma = Annotated[float, Field(gt=0.0, le=3.0)]
Hour = Annotated[float, Field(ge=0.0, le=24.0)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]


def complete(mapping: dict[str, object], keys: tuple[str, ...], *path: str | int) -> None:
    """Every key of the closed set `keys` is given (the Literal key type already refuses unknown ones)."""
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise FieldError(f"give a value for {', '.join(missing)} too", *path)


def sums_to_one(mix: dict[str, float], *path: str | int) -> None:
    total = sum(mix.values())
    if abs(total - 1.0) > TOLERANCE:
        raise FieldError(f"shares sum to {total:.12g}, not 1", *path)


Levels = tuple[tuple[str, ...] | None, ...]


def _closed(mapping: dict[str, object], levels: Levels, path: tuple[str | int, ...]) -> None:
    keys, *inner = levels
    if keys is not None:
        complete(mapping, keys, *path)
    if inner:
        for key, value in mapping.items():
            _closed(value, tuple(inner), (*path, key))  # type: ignore[arg-type]


def _mixes(mapping: dict[str, object], depth: int, path: tuple[str | int, ...]) -> None:
    if depth == 0:
        sums_to_one(mapping, *path)  # type: ignore[arg-type]
        return
    for key, value in mapping.items():
        _mixes(value, depth - 1, (*path, key))  # type: ignore[arg-type]


class Keyed(Strict):
    """A model whose mapping fields are checked by declaration instead of one validator each: CLOSED maps a
    field to the keys every nesting level must give (None: any keys), MIXES a field to the depth of the
    mappings that must sum to 1 (0: the field itself)."""

    CLOSED: ClassVar[dict[str, Levels]] = {}
    MIXES: ClassVar[dict[str, int]] = {}

    @model_validator(mode="after")
    def _keyed(self) -> Keyed:
        for name, levels in self.CLOSED.items():
            _closed(getattr(self, name), levels, (name,))
        for name, depth in self.MIXES.items():
            _mixes(getattr(self, name), depth, (name,))
        return self


# --- shared distributions --------------------------------------------------------------------------------
class LogNormal(Strict):
    """exp(ln(median) + sigma·Φ⁻¹(u)) clipped to `clip` (design §0.4: inverse-CDF draws keep it monotone in
    u); the unit is the one its field name carries (_s, _h, _d)."""

    median: Positive
    sigma: Sigma
    clip: pair(Positive)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _median_inside(self) -> LogNormal:
        ordered(self.clip, "clip")
        if not self.clip[0] <= self.median <= self.clip[1]:
            raise FieldError(f"median {self.median} lies outside clip {list(self.clip)}", "median")
        return self


class Gamma(Strict):
    shape: Annotated[float, Field(gt=0.0, le=100.0)]
    scale: Positive
    clip: pair(Positive)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _clip(self) -> Gamma:
        ordered(self.clip, "clip")
        return self


class Range(Strict):
    """U[lo, hi] in the unit its field name carries."""

    lo: Annotated[float, Field(ge=0.0)]
    hi: Annotated[float, Field(ge=0.0)]

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        ordered((self.lo, self.hi), "lo")
        return self


class IntRange(Strict):
    lo: Count
    hi: Count

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        ordered((self.lo, self.hi), "lo")
        return self


# --- channels.yaml ---------------------------------------------------------------------------------------
class Channels(Strict):
    """Channel = ATM if CP and MCC ∈ atm_mccs; POS if CP otherwise; TRANSFER if CNP and MCC ∈ transfer_mccs;
    ECOM otherwise. Prices are written in USD-like base units and multiplied by the currency's price scale."""

    atm_mccs: list[MccCode] = Field(min_length=1)
    transfer_mccs: list[MccCode] = Field(min_length=1)
    # currency → units per USD (a missing currency defaults to 1.0 with a warning at 6B.S0)
    currency_price_scale: dict[Currency, Annotated[float, Field(gt=0.0, le=1e6)]]
    # currency → rounding step of a price in minor units (default 1): cash-like steps where cents are unused
    rounding_step_minor: dict[Currency, Annotated[int, Field(ge=1, le=10**9)]]
    # currency → ATM note step in major units; default: the 1-2-5 value nearest 10 × price scale
    atm_note_step_major: dict[Currency, Annotated[int, Field(ge=1, le=10**7)]]

    @model_validator(mode="after")
    def _disjoint(self) -> Channels:
        for i, mcc in enumerate(self.transfer_mccs):
            if mcc in self.atm_mccs:
                raise FieldError(f"MCC {mcc} is also an ATM MCC", "transfer_mccs", i)
        for name in ("atm_mccs", "transfer_mccs"):
            codes = getattr(self, name)
            if len(set(codes)) != len(codes):
                raise FieldError("an MCC is listed twice", name)
        return self


# --- attachment.yaml -------------------------------------------------------------------------------------
class Affinity(Strict):
    """Pool weight = activity × (floor + (1 − floor)·score^exponent) for the party profile score `score`."""

    score: Literal["digital_affinity", "cash_affinity", "income_score", "cross_border_propensity"]
    floor: Prob
    exponent: Annotated[float, Field(ge=0.0, le=4.0)]


class RegularSlots(Strict):
    """R = max(min_slots, ⌈p_regular·weekly / visits_per_week⌉) slots per (merchant, country, channel) cell,
    so a regular customer comes visits_per_week times a week on average whatever the merchant's size; slot
    r = ⌊R·u^skew⌋ (skew 1: uniform; above 1 the first slots are the most regular, the first at
    ≈ R^(1 − 1/skew) times the mean)."""

    min_slots: Annotated[int, Field(ge=1, le=1000)]
    visits_per_week: Annotated[float, Field(gt=0.0, le=100.0)]
    skew: Annotated[float, Field(ge=1.0, le=4.0)]


class Travel(Strict):
    """A travelling party's card-present flows are drawn abroad for the trip (amendment 8)."""

    p_per_28d: Prob
    duration_days: IntRange
    same_region_weight: Factor
    channels: list[Literal["POS", "ATM"]] = Field(min_length=1)


class Attachment(Keyed):
    CLOSED: ClassVar[dict[str, Levels]] = {
        name: (CHANNELS,)
        for name in ("p_domestic", "p_regular", "p_continue", "channel_affinity", "instrument_weights")
    }

    p_domestic: dict[Channel, Prob]
    foreign_same_region_weight: Factor
    p_regular: dict[Channel, Prob]
    regular_slots: RegularSlots
    p_continue: dict[Channel, Prob]
    channel_affinity: dict[Channel, Affinity]
    # amendment 8: 6B re-shapes 6A's activity weights to this Pareto tail (w^(α_6A/α)) so that R12 holds
    activity_pareto_alpha: Annotated[float, Field(gt=1.0, le=10.0)]
    p_guest_device: Prob
    p_legit_vpn: Prob
    primary_account_weight: Factor
    # per channel, the weight of each instrument type the account holds; a type not listed is not used
    instrument_weights: dict[Channel, dict[InstrumentType, Weight]]
    travel: Travel

    @model_validator(mode="after")
    def _instruments(self) -> Attachment:
        allowed = {
            "POS": {"DEBIT_PHYSICAL", "CREDIT_PHYSICAL", "DEVICE_TOKEN"},
            "ECOM": {"DEBIT_PHYSICAL", "DEBIT_VIRTUAL", "CREDIT_PHYSICAL", "CREDIT_VIRTUAL", "NETWORK_TOKEN"},
            "ATM": {"DEBIT_PHYSICAL", "CREDIT_PHYSICAL"},
            "TRANSFER": {"BANK_ACCOUNT"},
        }
        for channel, weights in self.instrument_weights.items():
            for kind in weights:
                if kind not in allowed[channel]:
                    raise FieldError(f"{kind} cannot pay on {channel}", "instrument_weights", channel, kind)
            if not any(w > 0 for w in weights.values()):
                raise FieldError("give at least one positive weight", "instrument_weights", channel)
        return self


# --- sessions.yaml ---------------------------------------------------------------------------------------
class Sessions(Strict):
    gap_seconds: Annotated[int, Field(ge=1, le=86400)]
    max_session_hours: Annotated[int, Field(ge=1, le=168)]

    @model_validator(mode="after")
    def _gap_inside(self) -> Sessions:
        if self.gap_seconds > 3600 * self.max_session_hours:
            raise FieldError("the inactivity gap exceeds the session cap", "gap_seconds")
        return self


# --- flows.yaml ------------------------------------------------------------------------------------------
class Declines(Keyed):
    CLOSED: ClassVar[dict[str, Levels]] = {"rate": (CHANNELS,), "reasons": (CHANNELS,)}
    MIXES: ClassVar[dict[str, int]] = {"reasons": 1}

    rate: dict[Channel, Prob]
    reasons: dict[Channel, dict[NonfraudReason, Prob]]
    # segment → reason → multiplier of that reason's weight before renormalising
    segment_tilt: dict[Segment, dict[NonfraudReason, Factor]]

    @model_validator(mode="after")
    def _pin(self) -> Declines:
        for channel, mix in self.reasons.items():
            if channel not in ("POS", "ATM") and mix.get("INCORRECT_PIN", 0.0) > 0:
                raise FieldError("a PIN is only entered card-present", "reasons", channel, "INCORRECT_PIN")
        return self


class Retry(Strict):
    """A legit customer retries after a non-fraud decline (amendment 8)."""

    p: Prob
    reasons: list[NonfraudReason] = Field(min_length=1)
    delay_s: LogNormal


class Latency(Keyed):
    """Issuer-side auth latency (amendment 7), clipped at the scheme timeout; a stand-in decision answers at
    the timeout."""

    auth_s: LogNormal
    timeout_s: dict[Channel, Positive]
    stand_in_share: Prob
    step_up_challenge_s: LogNormal
    step_up_user_s: LogNormal

    CLOSED: ClassVar[dict[str, Levels]] = {"timeout_s": (CHANNELS,)}

    @model_validator(mode="after")
    def _timeouts(self) -> Latency:
        for channel, timeout in self.timeout_s.items():
            if timeout < self.auth_s.median:
                raise FieldError(f"timeout {timeout} s lies below the median latency", "timeout_s", channel)
        return self


class PosClearing(Strict):
    """Next local cut-off (cutoff_hour + U[0, jitter_h]) plus a lognormal; a late share on a tail of days."""

    cutoff_hour: Hour
    cutoff_jitter_h: Annotated[float, Field(ge=0.0, le=12.0)]
    after_cutoff_h: LogNormal
    late_share: Prob
    late_days: Range


class EcomClearing(Strict):
    same_as_pos_share: Prob
    delayed_capture_d: Gamma


class TransferClearing(Strict):
    instant_rails: list[Rail] = Field(min_length=1)
    instant_s: LogNormal
    batch_hour: Hour
    batch_jitter_h: Annotated[float, Field(ge=0.0, le=12.0)]


class Clearing(Strict):
    pos: PosClearing
    ecom: EcomClearing
    atm_h: LogNormal
    transfer: TransferClearing


class Refunds(Keyed):
    """Refund p per (sector, channel); a share are cancellations within hours, the rest returns."""

    p: dict[Sector, dict[Literal["POS", "ECOM"], Prob]]
    partial_share: Prob
    partial_fraction: Range
    cancellation_share: Prob
    cancellation_delay_s: Range
    return_delay_d: LogNormal

    CLOSED: ClassVar[dict[str, Levels]] = {"p": (SECTORS, POS_ECOM)}

    @model_validator(mode="after")
    def _partial(self) -> Refunds:
        if not 0.0 < self.partial_fraction.lo <= self.partial_fraction.hi < 1.0:
            raise FieldError("a partial refund keeps a fraction strictly inside (0, 1)", "partial_fraction")
        return self


class Reversal(Strict):
    p: Prob
    delay_s: LogNormal


class Tips(Strict):
    mccs: list[MccCode] = Field(min_length=1)
    countries: list[Iso2] = Field(min_length=1)
    p_tip: Prob
    fraction: Range


class EntryModes(Keyed):
    """POS entry mode: magstripe and manual fallbacks first, then contactless by the region of the terminal,
    else chip; device tokens are always contactless. ECOM: credential-on-file share, else ECOM."""

    pos_contactless_share: dict[Region, Prob]
    pos_magstripe_share: Prob
    pos_manual_share: Prob
    fraud_magstripe_factor: Factor
    ecom_credential_on_file_share: Prob

    CLOSED: ClassVar[dict[str, Levels]] = {"pos_contactless_share": (REGIONS,)}

    @model_validator(mode="after")
    def _fallbacks(self) -> EntryModes:
        if self.pos_magstripe_share + self.pos_manual_share > 1.0:
            raise FieldError("fallback shares exceed 1", "pos_manual_share")
        return self


class Cvm(Keyed):
    """Contactless at or under the CVM limit (merchant currency, major units) → NONE; wallets → CDCVM; chip
    and contactless above the limit → the region's chip CVM mix; ATM → PIN."""

    contactless_limit_major: dict[Currency, Annotated[float, Field(ge=0.0, le=1e9)]]
    # for a currency not listed: this many USD × price scale
    default_limit_usd: Annotated[float, Field(ge=0.0, le=1e6)]
    # currencies without a no-CVM limit (every contactless amount may go without CVM)
    no_limit_currencies: list[Currency]
    chip_cvm: dict[Region, dict[Literal["PIN", "SIGNATURE", "NONE"], Prob]]

    CLOSED: ClassVar[dict[str, Levels]] = {"chip_cvm": (REGIONS,)}
    MIXES: ClassVar[dict[str, int]] = {"chip_cvm": 1}

    @model_validator(mode="after")
    def _limits(self) -> Cvm:
        for i, code in enumerate(self.no_limit_currencies):
            if code in self.contactless_limit_major:
                raise FieldError(f"{code} also has a limit", "no_limit_currencies", i)
        return self


class CardChecks(Keyed):
    """CVV and AVS results of legit ECOM flows (credential-on-file flows send no CVV: NOT_PRESENT)."""

    cvv: dict[Literal["MATCH", "NO_MATCH", "NOT_PROCESSED"], Prob]
    avs_countries: list[Iso2]
    avs: dict[Literal["MATCH", "PARTIAL", "NO_MATCH", "UNAVAILABLE"], Prob]

    MIXES: ClassVar[dict[str, int]] = {"cvv": 0, "avs": 0}


class Recurring(Keyed):
    """P(ECOM flow is a recurring / merchant-initiated payment) by sector; fraud flows × fraud_factor."""

    ecom_p: dict[Sector, Prob]
    fraud_factor: Annotated[float, Field(ge=0.0, le=1.0)]

    CLOSED: ClassVar[dict[str, Levels]] = {"ecom_p": (SECTORS,)}


class Wallets(Keyed):
    """The wallet of a DEVICE_TOKEN flow by the device OS; NETWORK_TOKEN ECOM flows via Click to Pay."""

    device_token: dict[Os, dict[Wallet, Prob]]
    network_token_click_to_pay: Prob

    MIXES: ClassVar[dict[str, int]] = {"device_token": 1}

    @model_validator(mode="after")
    def _wallet(self) -> Wallets:
        for os_name, mix in self.device_token.items():
            if mix.get("NONE", 0.0) > 0:
                raise FieldError(
                    "a device token always pays through a wallet", "device_token", os_name, "NONE"
                )
        return self


class AccountEventRates(Keyed):
    """Legit non-monetary events per party per 28 days (amendment 10: legit parties have them too)."""

    per_party_28d: dict[AccountEvent, Annotated[float, Field(ge=0.0, le=30.0)]]

    CLOSED: ClassVar[dict[str, Levels]] = {"per_party_28d": (ACCOUNT_EVENT_TYPES,)}


class Flows(Strict):
    declines: Declines
    # amendment 4: legit $0 card verifications (account checks, card-on-file set-up) among ECOM flows
    zero_auth_ecom_share: Prob
    retry: Retry
    latency: Latency
    clearing: Clearing
    refunds: Refunds
    reversal: Reversal
    tips: Tips
    entry_modes: EntryModes
    cvm: Cvm
    card_checks: CardChecks
    recurring: Recurring
    wallets: Wallets
    account_events: AccountEventRates

    @model_validator(mode="after")
    def _retry_reasons(self) -> Flows:
        for i, reason in enumerate(self.retry.reasons):
            if not any(reason in mix for mix in self.declines.reasons.values()):
                raise FieldError(
                    f"{reason} is no non-fraud decline reason of any channel", "retry", "reasons", i
                )
        return self


# --- amounts.yaml ----------------------------------------------------------------------------------------
class PriceModel(Strict):
    """A point mass over price points (lane 1 picks one, points ascending) else a lognormal tail, in base
    (USD-like) major units."""

    median: Positive
    sigma: Annotated[float, Field(ge=0.3, le=2.0)]
    price_points: list[Positive] = Field(min_length=1)

    @model_validator(mode="after")
    def _ascending(self) -> PriceModel:
        pts = self.price_points
        if any(b <= a for a, b in itertools.pairwise(pts)):
            raise FieldError("price points must ascend strictly", "price_points")
        return self


class Point(Strict):
    """A whole amount in base major units and its probability (a list, not a mapping: mapping keys are text
    once a policy is sealed)."""

    major: Annotated[int, Field(ge=1, le=100000)]
    p: Prob


def point_mix(points: list[Point], *path: str | int) -> None:
    """Strictly ascending amounts whose probabilities sum to 1."""
    for i in range(1, len(points)):
        if points[i].major <= points[i - 1].major:
            raise FieldError("amounts must ascend strictly", *path, i, "major")
    sums_to_one({str(pt.major): pt.p for pt in points}, *path)


class AtmAmounts(Strict):
    points: list[Point] = Field(min_length=1)
    point_mass: Prob
    tail: LogNormal  # else: a lognormal rounded to the note step

    @model_validator(mode="after")
    def _mix(self) -> AtmAmounts:
        point_mix(self.points, "points")
        return self


class TransferAmounts(Strict):
    median: Positive
    sigma: Annotated[float, Field(ge=0.3, le=3.0)]
    round_share: Prob
    round_to: list[Point] = Field(min_length=1)

    @model_validator(mode="after")
    def _mix(self) -> TransferAmounts:
        point_mix(self.round_to, "round_to")
        return self


class Amounts(Keyed):
    point_mass: dict[Literal["POS", "ECOM"], Prob]
    sectors: dict[Sector, dict[Literal["POS", "ECOM"], PriceModel]]
    income_factor: dict[Segment, Annotated[float, Field(ge=0.1, le=10.0)]]
    atm: AtmAmounts
    transfer: TransferAmounts
    max_major: Annotated[float, Field(gt=0.0, le=1e6)]  # a cap in base units

    CLOSED: ClassVar[dict[str, Levels]] = {
        "point_mass": (POS_ECOM,),
        "sectors": (SECTORS, POS_ECOM),
        "income_factor": (SEGMENTS,),
    }


# --- campaigns.yaml --------------------------------------------------------------------------------------
class Compromise(Strict):
    """Point of compromise (amendment 3): breached merchants capture cards used there; captured cards feed
    card testing, CNP_STOLEN and COUNTERFEIT after a lognormal delay."""

    breach_rate_per_merchant_28d: Prob
    window_days: IntRange
    p_capture: Prob
    spend_delay_d: LogNormal
    # channels whose merchants can be breached (skimming: POS; web-skimming / database breaches: ECOM)
    channels: list[Literal["POS", "ECOM"]] = Field(min_length=1)


class Skew(Strict):
    """The levers that put fraud where it falls in reality (amendment 1); the outcome bands (CNP and
    cross-border value shares, the night rate ratio) are validation.yaml's 6B.R19 checks. Each type's
    cross_border_share is the other lever."""

    # the truth subtypes 6B.R19 measures as card fraud: the EBA/ECB card-fraud categories (lost/stolen,
    # counterfeit, card-not-present, takeover of the card account) on POS/ECOM/ATM, not the APP scam's
    # transfers and mule cash-out or first-party bust-out, which card-fraud statistics do not count
    card_fraud_subtypes: list[Subtype] = Field(min_length=1)
    night_hours: IntRange  # cardholder-local hours [lo, hi] inclusive
    night_weight: Factor  # inserted flows follow the legit hourly profile × this in night hours
    cashout_mccs: list[MccCode] = Field(min_length=1)
    cashout_sectors: list[Sector] = Field(min_length=1)
    cashout_weight: Factor

    @model_validator(mode="after")
    def _hours(self) -> Skew:
        for i, subtype in enumerate(self.card_fraud_subtypes):
            if subtype not in CAMPAIGN_TYPES:
                raise FieldError(f"{subtype} is no campaign fraud type", "card_fraud_subtypes", i)
        if self.night_hours.hi > 23:
            raise FieldError("a local hour lies in 0..23", "night_hours", "hi")
        return self


class CampaignBase(Keyed):
    """What every type has: its share of the budget, label, sizes and per-flow tactic probabilities."""

    enabled: bool
    share: Prob
    label: Literal["FRAUD", "ABUSE"]  # the truth subtype is the type's name (APP_SCAM cash-out: MULE_CASHOUT)
    flows_per_instance: IntRange
    duration_h: Range  # the instance's window: starts are stratified over [H0, horizon − duration]
    tactics: dict[Tactic, Prob]
    amount_tilt: Literal["UP", "DOWN", "NONE"]
    # CVV result of the type's ECOM flows (stolen data carries the CVV, generated numbers do not)
    p_cvv_no_match: Prob
    # inserted flows at a merchant outside the victim's (or the card's) country
    cross_border_share: Prob
    precursors: dict[AccountEvent, Prob] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _tactics(self) -> CampaignBase:
        used = [t for t, p in self.tactics.items() if p > 0]
        if len(used) < 3:
            raise FieldError(f"a type uses at least 3 tactics, this one {len(used)}", "tactics")
        if self.flows_per_instance.lo < 1:
            raise FieldError("an instance has at least one flow", "flows_per_instance", "lo")
        return self


class CardTesting(CampaignBase):
    """Probes of $0 / U[0.01, 1] / U[1, 5] (amendment 4), burst or distributed, then some cards cashed out."""

    probe_amounts: dict[Literal["ZERO", "MICRO", "SMALL"], Prob]
    micro_range: Range
    small_range: Range
    mode_share: dict[Literal["BURST", "DISTRIBUTED"], Prob]
    burst_attempts: IntRange
    burst_minutes: Range
    invalid_card_share: Prob  # burst probes on non-existent numbers (declined INVALID_CARD_DATA)
    distributed_merchants: IntRange
    distributed_attempts_per_merchant: IntRange
    decline_share: Prob
    cashout_card_share: Range
    cashout_delay_d: Range

    MIXES: ClassVar[dict[str, int]] = {"probe_amounts": 0, "mode_share": 0}


class CnpStolen(CampaignBase):
    cards_per_instance: IntRange
    purchases_per_card: IntRange
    spend_window_h: Range


class AccountTakeover(CampaignBase):
    ecom_purchases: IntRange
    transfers: IntRange


class AppScam(CampaignBase):
    victim_segment_factor: dict[Segment, Factor]
    transfers: IntRange
    cashout_delay_s: Range
    onward_transfer_share: Prob


class BustOut(CampaignBase):
    p_select: Prob
    cash_advance_share: Prob


class LostStolen(CampaignBase):
    taps: IntRange
    taps_window_h: Range
    p_atm_attempt: Prob
    pin_attempts: IntRange


class Counterfeit(CampaignBase):
    p_magstripe: Prob
    atm_share: Prob


class MerchantCollusion(CampaignBase):
    p_select: Prob
    after_hours_share: Prob


class RefundAbuse(CampaignBase):
    p_select: Prob


class PromoAbuse(CampaignBase):
    parties: IntRange
    first_order_max_usd: Positive


class CampaignTypes(Strict):
    """One field per type, in catalogue (claim) order."""

    CARD_TESTING: CardTesting
    CNP_STOLEN: CnpStolen
    ACCOUNT_TAKEOVER: AccountTakeover
    APP_SCAM: AppScam
    BUST_OUT: BustOut
    LOST_STOLEN: LostStolen
    COUNTERFEIT: Counterfeit
    MERCHANT_COLLUSION: MerchantCollusion
    REFUND_ABUSE: RefundAbuse
    PROMO_ABUSE: PromoAbuse

    def enabled(self) -> dict[str, CampaignBase]:
        return {t: getattr(self, t) for t in CAMPAIGN_TYPES if getattr(self, t).enabled}


class Campaigns(Keyed):
    # FRAUD+ABUSE share of flows the plan aims at; a preset may raise it (policy_overrides), and the factor
    # over reality is reported as enrichment_factor
    fraud_rate_target: Annotated[float, Field(gt=0.0, le=0.05)]
    fraud_rate_band: pair(Annotated[float, Field(gt=0.0, le=0.1)])  # type: ignore[valid-type]
    # the real rate the enrichment factor is measured against (EEA card fraud by count)
    reference_fraud_rate: Annotated[float, Field(gt=0.0, le=0.05)]
    min_instances: Annotated[int, Field(ge=1, le=1000)]
    max_instances: Annotated[int, Field(ge=1, le=100000)]
    tilt_up: pair(Annotated[float, Field(ge=1.0, le=10.0)])  # type: ignore[valid-type]
    tilt_down: pair(Annotated[float, Field(ge=1.0, le=10.0)])  # type: ignore[valid-type]
    burst_gap_mean_s: pair(Positive)  # type: ignore[valid-type]
    time_compression: pair(Annotated[float, Field(gt=0.0, le=1.0)])  # type: ignore[valid-type]
    compromise: Compromise
    skew: Skew
    # amendment 10: how long before the first fraud flow each precursor event happens (hours, U[lo, hi])
    precursor_lead_h: dict[AccountEvent, Range]
    types: CampaignTypes

    CLOSED: ClassVar[dict[str, Levels]] = {"precursor_lead_h": (ACCOUNT_EVENT_TYPES,)}

    @model_validator(mode="after")
    def _budget(self) -> Campaigns:
        ordered(self.fraud_rate_band, "fraud_rate_band")
        lo, hi = self.fraud_rate_band
        if not lo <= self.fraud_rate_target <= hi:
            raise FieldError(
                f"fraud_rate_target {self.fraud_rate_target} lies outside fraud_rate_band [{lo}, {hi}]"
                " (a preset that raises the rate raises the band with it)",
                "fraud_rate_target",
            )
        if self.reference_fraud_rate > self.fraud_rate_target:
            raise FieldError(
                "the engine enriches fraud: the reference rate exceeds the target", "reference_fraud_rate"
            )
        if self.min_instances > self.max_instances:
            raise FieldError("min_instances exceeds max_instances", "min_instances")
        for name in ("tilt_up", "tilt_down", "burst_gap_mean_s", "time_compression"):
            ordered(getattr(self, name), name)
        enabled = self.types.enabled()
        if not enabled:
            raise FieldError("enable at least one campaign type", "types")
        sums_to_one({t: c.share for t, c in enabled.items()}, "types")
        return self

    @property
    def enrichment_factor(self) -> float:
        """How many times reality's fraud rate the world carries (written to 6B's summary.json)."""
        return self.fraud_rate_target / self.reference_fraud_rate

    @property
    def type_codes(self) -> dict[str, int]:
        return {t: i + 1 for i, t in enumerate(CAMPAIGN_TYPES)}


# --- truth.yaml ------------------------------------------------------------------------------------------
class Rule(Strict):
    rank: Annotated[int, Field(ge=1, le=16)]
    rule: Literal[TRUTH_RULES]  # type: ignore[valid-type]
    # CAMPAIGN takes the type's label and subtype (campaigns.yaml), so it names none here
    label: TruthLabel | None = None
    subtype: Subtype | None = None


class MuleWindows(Strict):
    """Mule flows are ABUSE only inside activation windows (amendment 6): after funds from an in-world
    campaign arrive, and in standalone activations (funds from outside the world)."""

    after_campaign_days: Annotated[float, Field(gt=0.0, le=90.0)]
    standalone_per_28d: Annotated[float, Field(ge=0.0, le=28.0)]
    standalone_days: IntRange


class Friendly(Strict):
    p: Prob
    channel_factor: dict[Literal["POS", "ECOM"], Annotated[float, Field(ge=0.0, le=100.0)]]
    role_factor: dict[Literal["FRIENDLY_FRAUD_PRONE"], Factor]


class Truth(Strict):
    rules: list[Rule] = Field(min_length=1)
    mule_windows: MuleWindows
    friendly: Friendly

    @model_validator(mode="after")
    def _ranked(self) -> Truth:
        seen: dict[int, int] = {}
        for i, rule in enumerate(self.rules):
            if rule.rank in seen:
                raise FieldError(f"rank {rule.rank} repeats rules.{seen[rule.rank]}", "rules", i, "rank")
            seen[rule.rank] = i
            if (rule.rule == "CAMPAIGN") != (rule.label is None):
                what = (
                    "CAMPAIGN takes its label from the catalogue"
                    if rule.label
                    else f"{rule.rule} needs a label"
                )
                raise FieldError(what, "rules", i, "label")
            if (rule.label is None) != (rule.subtype is None):
                raise FieldError("give label and subtype together", "rules", i, "subtype")
            if rule.label == "LEGIT" and rule.subtype != "NONE":
                raise FieldError("a LEGIT rule has subtype NONE", "rules", i, "subtype")
        names = [r.rule for r in self.rules]
        if sorted(names) != sorted(TRUTH_RULES):
            raise FieldError(f"give each rule once: {', '.join(TRUTH_RULES)}", "rules")
        last = max(self.rules, key=lambda r: r.rank)
        if last.rule != "DEFAULT" or last.label != "LEGIT":
            raise FieldError("the last-ranked rule is DEFAULT and labels LEGIT", "rules")
        return self

    def ranked(self) -> list[Rule]:
        return sorted(self.rules, key=lambda r: r.rank)


# --- bank_view.yaml --------------------------------------------------------------------------------------
class Score(Strict):
    """score = logistic(intercept + Σ weight·feature + noise_sigma·ε) over AUTH-observable features only."""

    intercept: Coef
    weights: dict[
        Literal[
            "amount_quantile",
            "anonymiser_ip",
            "unknown_device",
            "device_n_parties",
            "cross_border",
            "night_hour",
            "session_seq_ge3",
            "kyc_tier",
            "magstripe",
            "new_device_login_24h",
            "contact_change_24h",
            "new_payee",
        ],
        Coef,
    ]
    noise_sigma: Annotated[float, Field(ge=0.0, le=5.0)]


class Thresholds(Strict):
    decline: Prob
    challenge: Prob
    monitor: Prob

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not self.monitor <= self.challenge <= self.decline:
            raise FieldError("need monitor ≤ challenge ≤ decline", "challenge")
        return self


class Sca(Strict):
    three_ds_share: Prob  # ECOM flows authenticated by 3DS (frictionless or challenged)
    challenge_share: Prob  # of the 3DS flows, challenged


class ScaPolicy(Strict):
    """3DS by issuer country (amendment 7): a listed country wins over its group, then the default. For an
    issuer in a group whose merchant is outside it (one leg out) the 3DS share is × one_leg_out_factor."""

    default: Sca
    groups: dict[Annotated[str, Field(pattern=r"^[A-Z][A-Z_]*$")], list[Iso2]]
    by_group: dict[str, Sca]
    by_country: dict[Iso2, Sca]
    one_leg_out_factor: Prob
    high_score_challenge: bool  # ECOM/TRANSFER above the challenge threshold are challenged too

    @model_validator(mode="after")
    def _groups(self) -> ScaPolicy:
        member: dict[str, str] = {}
        for group, countries in self.groups.items():
            for i, iso in enumerate(countries):
                if iso in member:
                    raise FieldError(f"{iso} is also in group {member[iso]}", "groups", group, i)
                member[iso] = group
        for group in self.by_group:
            if group not in self.groups:
                raise FieldError(f"unknown group {group!r}", "by_group", group)
        return self


class StepUp(Keyed):
    """PASS/FAIL/ABANDON by truth subtype; a subtype not listed uses `default`."""

    outcomes: dict[Subtype, dict[StepUpResult, Prob]]
    default: dict[StepUpResult, Prob]

    CLOSED: ClassVar[dict[str, Levels]] = {"outcomes": (None, STEP_UP_RESULTS), "default": (STEP_UP_RESULTS,)}
    MIXES: ClassVar[dict[str, int]] = {"outcomes": 1, "default": 0}

    @model_validator(mode="after")
    def _legit(self) -> StepUp:
        if "NONE" not in self.outcomes:
            raise FieldError("give the LEGIT (NONE) outcomes", "outcomes")
        return self


class Detection(Keyed):
    base: dict[Subtype, Prob]  # × (score/0.5)^score_exponent, clipped to cap
    score_exponent: Annotated[float, Field(ge=0.0, le=5.0)]
    cap: Prob
    batch_share: Prob  # detections at the next batch_hour local
    batch_hour: Hour
    delay_h: LogNormal

    CLOSED: ClassVar[dict[str, Levels]] = {"base": (TRUTH_SUBTYPES,)}


class Collateral(Strict):
    """Amendment 6: genuine flows near an ATO or card-testing flow stay truth-LEGIT, but the bank may treat
    them as fraud (blocked, disputed): label noise."""

    window_s: Annotated[int, Field(ge=1, le=30 * 86400)]
    p: dict[Literal["ACCOUNT_TAKEOVER", "CARD_TESTING"], Prob]


class ByCountry(Strict):
    """A probability by the issuer's country (amendment 11: the bank view is per issuer), else default."""

    default: Prob
    by_country: dict[Iso2, Prob]

    def of(self, iso: str) -> float:
        return self.by_country.get(iso, self.default)


class Disputes(Keyed):
    p: dict[Subtype, Prob]
    card_testing_cashout_p: Prob  # the cash-out phase of card testing (its probes use p[CARD_TESTING])
    # 3DS-authenticated fraud: liability shifts to the issuer, so a dispute becomes a chargeback with this p
    authenticated_chargeback_p: Prob
    small_usd: Positive
    small_chargeback_p: Prob
    small_unreported: Prob  # share of small fraud the cardholder never reports
    delay_d: dict[Literal["DEBIT_FRAUD", "CREDIT_FRAUD", "FRIENDLY", "SERVICE", "SCAM_CLAIM"], LogNormal]
    time_limit_d: Annotated[int, Field(ge=1, le=540)]
    # amendment 7: about half of friendly disputes arrive with a fraud reason code
    friendly_fraud_reason_share: Prob
    service_kinds: dict[DisputeKind, Prob]  # the non-fraud reason mix
    app_reimbursed: ByCountry  # an APP scam claim is reimbursed

    CLOSED: ClassVar[dict[str, Levels]] = {"p": (TRUTH_SUBTYPES,)}
    MIXES: ClassVar[dict[str, int]] = {"service_kinds": 0}

    @model_validator(mode="after")
    def _time_limit(self) -> Disputes:
        for kind, spec in self.delay_d.items():
            if spec.clip[1] > self.time_limit_d:
                raise FieldError(
                    f"clip exceeds the {self.time_limit_d} d time limit", "delay_d", kind, "clip"
                )
        return self


class Chargebacks(Keyed):
    p: dict[Subtype, Prob]  # given a card dispute
    delay_d: Gamma
    outcomes: dict[TruthLabel, dict[CbOutcome, Prob]]
    decided_d: Range

    CLOSED: ClassVar[dict[str, Levels]] = {"p": (TRUTH_SUBTYPES,), "outcomes": (TRUTH_LABELS,)}
    MIXES: ClassVar[dict[str, int]] = {"outcomes": 1}


class Confirmation(Keyed):
    p: dict[TruthLabel, Prob]
    delay_h: LogNormal

    CLOSED: ClassVar[dict[str, Levels]] = {"p": (TRUTH_LABELS,)}


class ChargeOff(Strict):
    """Amendment 7: bust-out is labelled when the bank charges the debt off, U[lo, hi] days later."""

    delay_d: IntRange


class BlockReissue(Strict):
    """Amendment 5: once the bank detects fraud on a card it blocks the card (p_block, block_delay_s after the
    first such detection; later attempts on it are declined LOST_STOLEN_CARD) and issues a replacement
    reissue_d after the block, to which the holder's genuine spending moves. A detection counts when it shows
    the card in a fraudster's hands (a flow of `compromise_subtypes` declined as fraud at auth, not a failed
    challenge, or caught by monitoring) or when the holder reports fraud (a fraud-coded dispute, friendly ones
    included: the bank must treat a card its holder calls compromised as compromised)."""

    p_block: Prob
    block_delay_s: Range
    reissue_d: Range
    compromise_subtypes: list[Subtype]  # type: ignore[valid-type]


class BankView(Keyed):
    score: Score
    thresholds: Thresholds
    sca: ScaPolicy
    step_up: StepUp
    detection: Detection
    collateral: Collateral
    disputes: Disputes
    chargebacks: Chargebacks
    confirmation: Confirmation
    charge_off: ChargeOff
    block_reissue: BlockReissue
    # dispute kind → reason code per scheme family (other schemes use MASTERCARD's codes)
    reason_codes: dict[
        Literal[REASON_CODE_SCHEMES], dict[DisputeKind, Annotated[str, Field(pattern=r"^[0-9A-Z.]{2,6}$")]]
    ]  # type: ignore[valid-type]

    CLOSED: ClassVar[dict[str, Levels]] = {"reason_codes": (REASON_CODE_SCHEMES, DISPUTE_KINDS)}


# --- cases.yaml ------------------------------------------------------------------------------------------
class Cases(Strict):
    case_key: Literal["ACCOUNT"]
    join_window_h: Annotated[int, Field(ge=1, le=24 * 90)]
    max_flows_per_case: Annotated[int, Field(ge=1, le=65535)]
    close_delay_d: Gamma


# the metrics 6B.S7 computes (design §4.11 with the amendments; old R19–R21 are R20–R22 here)
METRICS = (
    "flow_label_coverage",
    "time_order_violations",
    "clearing_once_share",
    "fraud_abuse_share_in_band",
    "min_fraud_or_abuse_flows",
    "truth_integrity_violations",
    "types_below_min_instances",
    "instances_outside_stratum",
    "tactics_unused",
    "best_single_feature_auc",
    "max_amount_auc_by_channel",
    "fraud_amount_inside_legit_share",
    "model_auc",
    "fraud_rate_over_target",
    "cross_border_share_pos",
    "cross_border_share_ecom",
    "party_flows_p99_over_p50",
    "top1pct_party_flow_share",
    "repeat_pair_flow_share",
    "auth_latency_median_s",
    "auth_latency_p99_s",
    "zero_latency_flows",
    "decline_rate_pos",
    "decline_rate_ecom",
    "decline_rate_atm",
    "decline_rate_transfer",
    "distinct_amounts",
    "top10_amount_share_non_atm",
    "pos_amount_p99_over_p50",
    "detection_rate_fraud",
    "detection_rate_abuse",
    "bank_fraud_rate_legit",
    "pos_clearing_delay_median_h",
    "ecom_refund_rate",
    "reversal_rate",
    "bank_precision",
    "chargeback_share_card_flows",
    "detection_delay_median_h",
    "dispute_delay_median_d",
    "cnp_card_fraud_value_share",
    "cross_border_card_fraud_value_share",
    "cross_border_card_value_share",
    "night_fraud_rate_ratio",
    "singleton_session_share",
    "ecom_multi_flow_session_share",
    "mean_flows_per_case",
    "max_case_duration_value_share",
    "rng_accounting",
)

POLICIES = {
    "channels": Channels,
    "attachment": Attachment,
    "sessions": Sessions,
    "flows": Flows,
    "amounts": Amounts,
    "campaigns": Campaigns,
    "truth": Truth,
    "bank_view": BankView,
    "cases": Cases,
    "validation": validation_model("6B", METRICS),
}
