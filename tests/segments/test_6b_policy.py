"""6B's policy packs and dataset contracts (design layer2_3.md §4, §5 and the amendments of 2026-11-29).

The models are validated directly (6B is not registered in engine/states.py yet, so the core's
validate_policy cannot name it); errors are read through engine.core.config.explain, the function that turns a
pydantic error into the field path E_POLICY_INVALID prints, so each broken example names its field as a user
would see it.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

from engine.core import yaml12
from engine.core.config import deep_merge, explain
from engine.core.contracts import resolve, table_schema
from engine.core.policy import dump_policy
from engine.segments.l3.s6a import policy as p6a
from engine.segments.l3.s6b import policy as p6b

REPO = Path(__file__).resolve().parents[2]
PACKS = sorted(p6b.POLICIES)
CONTRACT = yaml12.load((REPO / "contracts" / "6B.yaml").read_text())
TABLES = sorted(CONTRACT["tables"])


def shipped(name: str) -> dict[str, Any]:
    return yaml12.load((REPO / "config" / "policies" / "6B" / f"{name}.yaml").read_text())


def broken(name: str, doc: dict[str, Any]) -> tuple[str, str]:
    """(field path, message) of the first error the pack's model raises for `doc`."""
    model = p6b.POLICIES[name]
    with pytest.raises(ValidationError) as info:
        model.model_validate(doc)
    where, what, _ = explain(info.value.errors()[0], model)
    return where, what


def model(name: str) -> Any:
    return p6b.POLICIES[name].model_validate(shipped(name))


# --- every shipped pack validates, both ways, and reads back from its sealed bytes --------------------------
def test_the_packs_are_the_design_list() -> None:
    names = sorted(p.stem for p in (REPO / "config" / "policies" / "6B").glob("*.yaml"))
    assert names == PACKS
    design = sorted(
        [
            "channels",
            "attachment",
            "sessions",
            "flows",
            "amounts",
            "campaigns",
            "truth",
            "bank_view",
            "cases",
            "validation",
        ]
    )
    assert design == PACKS


@pytest.mark.parametrize("name", PACKS)
def test_shipped_pack_validates_and_reads_back(name: str) -> None:
    cls = p6b.POLICIES[name]
    doc = shipped(name)
    validated = cls.model_validate(doc)
    assert isinstance(validated, BaseModel)
    # the JSON Schema generated from the model accepts it too (S0 validates both ways)
    assert not list(jsonschema.Draft202012Validator(cls.model_json_schema()).iter_errors(doc))
    # a sealed policy is the model's JSON dump; it must validate again unchanged (no int mapping keys etc.)
    sealed = yaml12.load(dump_policy(validated.model_dump(mode="json")).decode())
    assert cls.model_validate(sealed) == validated


@pytest.mark.parametrize("name", PACKS)
def test_unknown_key_is_refused(name: str) -> None:
    where, what = broken(name, {**shipped(name), "fraud_rate_targte": 1})
    assert where == "fraud_rate_targte"
    assert "unknown field" in what


# --- amendments 1 and 2: known values -----------------------------------------------------------------------
def test_fraud_rate_and_enrichment_of_amendment_1() -> None:
    c = model("campaigns")
    assert c.fraud_rate_target == 0.001
    assert c.fraud_rate_band == (0.0005, 0.003)
    # EEA ≈ 0.015 % by count, so the engine is enriched ≈ 7×
    assert c.reference_fraud_rate == 0.00015
    assert c.enrichment_factor == pytest.approx(0.001 / 0.00015)
    assert 6.0 < c.enrichment_factor < 8.0
    # the skew's outcome bands are 6B.R19 (REQUIRED for channel and cross-border, amendment 1)
    assert band("6B.R19a") == (0.75, 0.90)
    assert band("6B.R19b") == (0.40, math.inf)
    assert band("6B.R19c") == (-math.inf, 0.15)
    assert band("6B.R19d") == (2.0, 3.0)
    # and its levers: night hours 00:00–05:59 weighted inside the 2–3× band, resaleable cash-out goods
    assert (c.skew.night_hours.lo, c.skew.night_hours.hi) == (0, 5)
    assert band("6B.R19d")[0] <= c.skew.night_weight <= band("6B.R19d")[1]
    assert {4829, 6051, 4511}.issubset(c.skew.cashout_mccs)
    assert {"home_electronics", "digital_goods"} == set(c.skew.cashout_sectors)
    assert c.types.COUNTERFEIT.cross_border_share == 0.6  # mostly abroad (amendment 2; see campaigns.yaml)
    assert c.types.CNP_STOLEN.cross_border_share > 0.5
    # card-fraud statistics count third-party card fraud only
    assert not {"APP_SCAM", "MULE_CASHOUT", "BUST_OUT"} & set(c.skew.card_fraud_subtypes)


# amendment 2's shares, but CNP_STOLEN .27 and COUNTERFEIT .06 (not .30 and .03): see campaigns.yaml (6B.R19a)
# the shipped shares: amendment 2's, with the departures docs/datasets/6B.md gives (card-present types carry
# more, since block and reissue cuts their executed value; takeovers, card testing and abuse less)
AMENDMENT_2_SHARES = {
    "CARD_TESTING": 0.14,
    "CNP_STOLEN": 0.27,
    "ACCOUNT_TAKEOVER": 0.10,
    "APP_SCAM": 0.10,
    "BUST_OUT": 0.08,
    "LOST_STOLEN": 0.09,
    "COUNTERFEIT": 0.08,
    "MERCHANT_COLLUSION": 0.02,
    "REFUND_ABUSE": 0.06,
    "PROMO_ABUSE": 0.06,
}


def test_campaign_shares_of_amendment_2() -> None:
    raw = shipped("campaigns")["types"]
    assert {t: spec["share"] for t, spec in raw.items()} == AMENDMENT_2_SHARES
    assert math.fsum(spec["share"] for spec in raw.values()) == pytest.approx(1.0, abs=1e-12)
    assert all(spec["enabled"] for spec in raw.values())
    # the catalogue order is the claim order and fixes the type codes of campaign_id = code << 56 | instance
    assert list(raw) == list(p6b.CAMPAIGN_TYPES)
    assert model("campaigns").type_codes == {t: i for i, t in enumerate(AMENDMENT_2_SHARES, start=1)}
    labels = {t: spec["label"] for t, spec in raw.items()}
    assert {t for t, lab in labels.items() if lab == "ABUSE"} == {"REFUND_ABUSE", "PROMO_ABUSE"}


def test_mechanics_of_amendments_3_to_5() -> None:
    c = model("campaigns")
    assert c.compromise.breach_rate_per_merchant_28d == pytest.approx(1 / 2000)
    assert (c.compromise.window_days.lo, c.compromise.window_days.hi) == (7, 60)
    assert c.compromise.p_capture == 0.6
    assert c.compromise.spend_delay_d.median == 21
    assert c.compromise.spend_delay_d.clip == (2, 180)
    ct = c.types.CARD_TESTING
    assert ct.probe_amounts == {"ZERO": 0.4, "MICRO": 0.4, "SMALL": 0.2}
    assert (ct.micro_range.lo, ct.micro_range.hi, ct.small_range.lo, ct.small_range.hi) == (0.01, 1, 1, 5)
    assert (ct.burst_attempts.lo, ct.burst_attempts.hi) == (200, 5000)
    assert (ct.burst_minutes.lo, ct.burst_minutes.hi) == (10, 120)
    assert (ct.distributed_merchants.lo, ct.distributed_merchants.hi) == (100, 400)
    assert ct.decline_share == 0.85
    ls = c.types.LOST_STOLEN
    assert (ls.taps.lo, ls.taps.hi, ls.taps_window_h.hi) == (3, 10, 6)
    assert shipped("flows")["zero_auth_ecom_share"] == 0.02


def test_truth_and_bank_view_of_amendments_6_and_7() -> None:
    truth = model("truth")
    assert [r.rule for r in truth.ranked()] == ["CAMPAIGN", "POSTURE", "FRIENDLY", "DEFAULT"]
    assert "COLLATERAL" not in p6b.TRUTH_RULES
    assert truth.friendly.p == 0.0015
    assert truth.friendly.channel_factor["POS"] == pytest.approx(0.1)
    flows = model("flows")
    assert flows.latency.auth_s.median == 0.25
    assert flows.latency.auth_s.sigma == 0.6
    assert flows.latency.timeout_s["POS"] == 10 and flows.latency.timeout_s["ATM"] == 25
    assert flows.latency.stand_in_share == 0.001
    assert flows.declines.rate["ECOM"] == 0.10 and flows.declines.rate["POS"] == 0.03
    bank = model("bank_view")
    assert bank.sca.by_group["EEA_UK"] == p6b.Sca(three_ds_share=0.85, challenge_share=0.25)
    assert bank.sca.by_country["FR"].challenge_share == 0.45
    assert bank.sca.by_country["IN"].three_ds_share == 1.0
    assert bank.sca.by_country["US"].three_ds_share == 0.03
    assert bank.step_up.outcomes["NONE"] == {"PASS": 0.88, "FAIL": 0.04, "ABANDON": 0.08}
    assert bank.step_up.outcomes["ACCOUNT_TAKEOVER"]["PASS"] == 0.5
    medians = {k: v.median for k, v in bank.disputes.delay_d.items()}
    assert (medians["DEBIT_FRAUD"], medians["CREDIT_FRAUD"], medians["FRIENDLY"]) == (4, 18, 35)
    assert bank.disputes.time_limit_d == 120
    assert bank.chargebacks.outcomes["FRAUD"] == {"ISSUER_WON": 0.88, "MERCHANT_WON": 0.10, "PARTIAL": 0.02}
    assert bank.confirmation.delay_h.median == 2
    assert (bank.charge_off.delay_d.lo, bank.charge_off.delay_d.hi) == (
        60,
        180,
    )  # bust-out labelled at charge-off
    assert (bank.disputes.small_usd, bank.disputes.small_chargeback_p, bank.disputes.small_unreported) == (
        15,
        0.3,
        0.07,
    )
    assert bank.disputes.authenticated_chargeback_p == 0.05
    assert bank.disputes.friendly_fraud_reason_share == 0.5
    # APP claims: the UK's mandatory reimbursement, elsewhere the victim mostly bears the loss
    assert (bank.disputes.app_reimbursed.of("GB"), bank.disputes.app_reimbursed.of("FR")) == (0.88, 0.15)
    assert bank.reason_codes["VISA"]["FRAUD_CARD_ABSENT"] == "10.4"
    assert bank.reason_codes["MASTERCARD"]["FRAUD_CARD_ABSENT"] == "4837"
    # EEA + UK: the 27 EU members, Iceland, Liechtenstein, Norway and the United Kingdom
    assert len(bank.sca.groups["EEA_UK"]) == 31


def test_precursors_of_amendment_10() -> None:
    c = model("campaigns")
    want = {
        "NEW_DEVICE_LOGIN": 0.9,
        "CONTACT_DETAIL_CHANGE": 0.6,
        "NEW_PAYEE_ADDED": 0.9,
        "TOKEN_PROVISIONED": 0.3,
    }
    assert c.types.ACCOUNT_TAKEOVER.precursors == want
    assert c.types.APP_SCAM.precursors == want
    lead = c.precursor_lead_h["CONTACT_DETAIL_CHANGE"]
    assert (lead.lo, lead.hi) == (0, 24)
    assert all(rate > 0 for rate in model("flows").account_events.per_party_28d.values())  # legit parties too


def test_behaviour_of_amendment_8() -> None:
    a = model("attachment")
    assert (a.p_guest_device, a.p_legit_vpn, a.activity_pareto_alpha) == (0.08, 0.06, 1.85)
    assert a.travel.p_per_28d == 0.03
    assert (a.travel.duration_days.lo, a.travel.duration_days.hi) == (3, 14)
    refunds = model("flows").refunds.p
    assert refunds["apparel"]["ECOM"] == 0.20
    assert refunds["home_electronics"]["ECOM"] == 0.08
    assert refunds["digital_goods"]["ECOM"] == 0.01
    assert refunds["grocery"]["ECOM"] <= 0.005
    amounts = model("amounts").sectors
    assert amounts["apparel"]["ECOM"].median == 60
    assert amounts["digital_goods"]["ECOM"].median == 12


# --- shares sum to 1 (summed here from the raw YAML, not by the model) --------------------------------------
def _mixes() -> list[tuple[str, dict[str, float]]]:
    flows, bank, camp = shipped("flows"), shipped("bank_view"), shipped("campaigns")
    out = [(f"declines.reasons.{c}", m) for c, m in flows["declines"]["reasons"].items()]
    out += [
        ("card_checks.cvv", flows["card_checks"]["cvv"]),
        ("card_checks.avs", flows["card_checks"]["avs"]),
    ]
    out += [(f"chip_cvm.{r}", m) for r, m in flows["cvm"]["chip_cvm"].items()]
    out += [(f"wallets.{o}", m) for o, m in flows["wallets"]["device_token"].items()]
    out += [(f"step_up.{s}", m) for s, m in bank["step_up"]["outcomes"].items()]
    out += [(f"chargebacks.{lab}", m) for lab, m in bank["chargebacks"]["outcomes"].items()]
    out += [("disputes.service_kinds", bank["disputes"]["service_kinds"])]
    ct = camp["types"]["CARD_TESTING"]
    out += [("probe_amounts", ct["probe_amounts"]), ("mode_share", ct["mode_share"])]
    amounts = shipped("amounts")
    out += [("atm.points", {str(pt["major"]): pt["p"] for pt in amounts["atm"]["points"]})]
    out += [("transfer.round_to", {str(pt["major"]): pt["p"] for pt in amounts["transfer"]["round_to"]})]
    return out


@pytest.mark.parametrize(("where", "mix"), _mixes(), ids=lambda x: x if isinstance(x, str) else "")
def test_shipped_mixes_sum_to_one(where: str, mix: dict[str, float]) -> None:
    assert math.fsum(mix.values()) == pytest.approx(1.0, abs=1e-12), where
    assert all(0.0 <= v <= 1.0 for v in mix.values()), where


# --- every validator rejects a broken example, naming its field ---------------------------------------------
DELETE = object()


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    *head, last = path.split(".")
    node = out
    for key in head:
        node = node[int(key) if isinstance(node, list) else key]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is DELETE:
        del node[last]
    else:
        node[last] = value
    return out


BROKEN: list[tuple[str, str, Any, str, str]] = [
    (
        "campaigns",
        "types",
        {t: {**shipped("campaigns")["types"][t], "enabled": False} for t in AMENDMENT_2_SHARES},
        "types",
        "enable at least one",
    ),
    (
        "truth",
        "rules.1",
        {"rank": 2, "rule": "FRIENDLY", "label": "ABUSE", "subtype": "FRIENDLY_FRAUD"},
        "rules",
        "give each rule once",
    ),
    ("bank_view", "step_up.outcomes.CNP_STOLEN.ABANDON", DELETE, "step_up.outcomes.CNP_STOLEN", "ABANDON"),
    (
        "flows",
        "entry_modes.pos_manual_share",
        0.999,
        "entry_modes.pos_manual_share",
        "fallback shares exceed 1",
    ),
    # (pack, field to set, value, expected error path, expected text)
    ("channels", "transfer_mccs", [4829, 6011], "transfer_mccs.1", "also an ATM MCC"),
    ("channels", "atm_mccs", [6011, 6011], "atm_mccs", "listed twice"),
    ("attachment", "p_domestic.ATM", DELETE, "p_domestic", "ATM"),
    (
        "attachment",
        "instrument_weights.TRANSFER",
        {"DEBIT_PHYSICAL": 1.0},
        "instrument_weights.TRANSFER.DEBIT_PHYSICAL",
        "cannot pay on TRANSFER",
    ),
    (
        "attachment",
        "instrument_weights.ATM",
        {"DEBIT_PHYSICAL": 0.0},
        "instrument_weights.ATM",
        "positive weight",
    ),
    ("sessions", "gap_seconds", 50000, "gap_seconds", "session cap"),
    ("flows", "declines.reasons.ECOM.LIMIT_EXCEEDED", 0.2, "declines.reasons.ECOM", "sum to 1.12"),
    (
        "flows",
        "declines.reasons.TRANSFER",
        {"INCORRECT_PIN": 0.5, "INSUFFICIENT_FUNDS": 0.5},
        "declines.reasons.TRANSFER.INCORRECT_PIN",
        "card-present",
    ),
    ("flows", "retry.reasons", ["PIN_TRIES_EXCEEDED"], "retry.reasons.0", "no non-fraud decline reason"),
    ("flows", "latency.timeout_s.ATM", 0.1, "latency.timeout_s.ATM", "below the median"),
    ("flows", "latency.auth_s.median", 30, "latency.auth_s.median", "outside clip"),
    ("flows", "latency.auth_s.clip", [25, 0.02], "latency.auth_s.clip", "reversed"),
    (
        "flows",
        "refunds.partial_fraction",
        {"lo": 0.1, "hi": 1.0},
        "refunds.partial_fraction",
        "strictly inside",
    ),
    ("flows", "refunds.p.apparel", {"ECOM": 0.2}, "refunds.p.apparel", "POS"),
    (
        "flows",
        "wallets.device_token.ANDROID",
        {"GOOGLE_PAY": 0.5, "NONE": 0.5},
        "wallets.device_token.ANDROID.NONE",
        "always pays through a wallet",
    ),
    (
        "flows",
        "cvm.chip_cvm.EUROPE",
        {"PIN": 0.5, "SIGNATURE": 0.1, "NONE": 0.1},
        "cvm.chip_cvm.EUROPE",
        "sum to 0.7",
    ),
    ("flows", "cvm.no_limit_currencies", ["USD", "EUR"], "cvm.no_limit_currencies.1", "also has a limit"),
    (
        "flows",
        "entry_modes.pos_contactless_share.AFRICA",
        DELETE,
        "entry_modes.pos_contactless_share",
        "AFRICA",
    ),
    (
        "flows",
        "account_events.per_party_28d.NEW_PAYEE_ADDED",
        DELETE,
        "account_events.per_party_28d",
        "NEW_PAYEE_ADDED",
    ),
    (
        "amounts",
        "sectors.grocery.POS.price_points",
        [4.99, 1.99],
        "sectors.grocery.POS.price_points",
        "ascend",
    ),
    ("amounts", "sectors.travel", DELETE, "sectors", "travel"),
    ("amounts", "atm.points.0.p", 0.5, "atm.points", "sum to"),
    ("amounts", "transfer.round_to.1.major", 5, "transfer.round_to.1.major", "ascend"),
    ("amounts", "income_factor.RETAIL_VALUE", DELETE, "income_factor", "RETAIL_VALUE"),
    ("campaigns", "types.CNP_STOLEN.share", 0.32, "types", "sum to 1.05"),
    ("campaigns", "types.PROMO_ABUSE.enabled", False, "types", "sum to 0.94"),
    ("campaigns", "fraud_rate_target", 0.004, "fraud_rate_target", "outside fraud_rate_band"),
    ("campaigns", "fraud_rate_band", [0.003, 0.0005], "fraud_rate_band", "reversed"),
    ("campaigns", "reference_fraud_rate", 0.002, "reference_fraud_rate", "exceeds the target"),
    ("campaigns", "max_instances", 1, "min_instances", "exceeds max_instances"),
    ("campaigns", "tilt_up", [2.5, 1.3], "tilt_up", "reversed"),
    (
        "campaigns",
        "types.BUST_OUT.tactics",
        {"AMOUNT_SHIFT": 0.9, "NEW_FLOW": 0.5, "BURST_TIMING": 0.0},
        "types.BUST_OUT.tactics",
        "at least 3 tactics",
    ),
    (
        "campaigns",
        "types.CARD_TESTING.tactics.SKIMMING",
        0.5,
        "types.CARD_TESTING.tactics.SKIMMING",
        "AMOUNT_SHIFT",
    ),
    (
        "campaigns",
        "types.CARD_TESTING.probe_amounts.ZERO",
        0.5,
        "types.CARD_TESTING.probe_amounts",
        "sum to 1.1",
    ),
    ("campaigns", "types.LOST_STOLEN.taps", {"lo": 10, "hi": 3}, "types.LOST_STOLEN.taps.lo", "reversed"),
    (
        "campaigns",
        "types.APP_SCAM.flows_per_instance",
        {"lo": 0, "hi": 3},
        "types.APP_SCAM.flows_per_instance.lo",
        "at least one flow",
    ),
    (
        "campaigns",
        "skew.card_fraud_subtypes",
        ["CNP_STOLEN", "FRIENDLY_FRAUD"],
        "skew.card_fraud_subtypes.1",
        "no campaign fraud type",
    ),
    ("campaigns", "skew.night_hours", {"lo": 0, "hi": 24}, "skew.night_hours.hi", "0..23"),
    (
        "campaigns",
        "precursor_lead_h.CONTACT_DETAIL_CHANGE",
        DELETE,
        "precursor_lead_h",
        "CONTACT_DETAIL_CHANGE",
    ),
    ("bank_view", "charge_off.delay_d", {"lo": 180, "hi": 60}, "charge_off.delay_d.lo", "reversed"),
    ("truth", "rules.1.rank", 1, "rules.1.rank", "repeats rules.0"),
    ("truth", "rules.0.label", "FRAUD", "rules.0.label", "from the catalogue"),
    ("truth", "rules.1.label", DELETE, "rules.1.label", "POSTURE needs a label"),
    ("truth", "rules.3.subtype", "CARD_TESTING", "rules.3.subtype", "subtype NONE"),
    ("truth", "rules.2.subtype", DELETE, "rules.2.subtype", "together"),
    ("truth", "rules.3.rank", 0, "rules.3.rank", "greater than or equal to 1"),
    ("truth", "rules.0.rank", 9, "rules", "last-ranked rule is DEFAULT"),
    ("bank_view", "thresholds.challenge", 0.95, "thresholds.challenge", "monitor ≤ challenge ≤ decline"),
    ("bank_view", "sca.groups.NORDIC", ["SE"], "sca.groups.NORDIC.0", "also in group EEA_UK"),
    (
        "bank_view",
        "sca.by_group.ASEAN",
        {"three_ds_share": 0.5, "challenge_share": 0.5},
        "sca.by_group.ASEAN",
        "unknown group",
    ),
    ("bank_view", "step_up.outcomes.CNP_STOLEN.PASS", 0.5, "step_up.outcomes.CNP_STOLEN", "sum to 1.35"),
    ("bank_view", "step_up.outcomes.NONE", DELETE, "step_up.outcomes", "LEGIT (NONE)"),
    ("bank_view", "detection.base.FRIENDLY_FRAUD", DELETE, "detection.base", "FRIENDLY_FRAUD"),
    (
        "bank_view",
        "disputes.delay_d.FRIENDLY.clip",
        [2, 150],
        "disputes.delay_d.FRIENDLY.clip",
        "120 d time limit",
    ),
    ("bank_view", "chargebacks.outcomes.LEGIT.PARTIAL", 0.5, "chargebacks.outcomes.LEGIT", "sum to 1.45"),
    ("bank_view", "confirmation.p.ABUSE", DELETE, "confirmation.p", "ABUSE"),
    ("bank_view", "reason_codes.VISA.DUPLICATE", DELETE, "reason_codes.VISA", "DUPLICATE"),
    ("bank_view", "reason_codes.AMEX.DUPLICATE", "P 08", "reason_codes.AMEX.DUPLICATE", "pattern"),
    ("bank_view", "disputes.service_kinds.DUPLICATE", 0.5, "disputes.service_kinds", "sum to 1.42"),
    # hidden truth can never enter the auth score: its feature names are a closed, observable set
    ("bank_view", "score.weights.truth_label", 1.0, "score.weights.truth_label", "amount_quantile"),
    ("attachment", "travel.channels", [], "travel.channels", "at least 1"),
    (
        "flows",
        "refunds.cancellation_delay_s",
        {"lo": 21600, "hi": 600},
        "refunds.cancellation_delay_s.lo",
        "reversed",
    ),
    ("cases", "close_delay_d.clip", [60, 0.04], "close_delay_d.clip", "reversed"),
    ("cases", "case_key", "PARTY", "case_key", "ACCOUNT"),
    ("validation", "checks.0.metric", "fraud_rate", "checks.0.metric", "flow_label_coverage"),
    ("validation", "checks.0.id", "6A.R01", "checks.0.id", "pattern"),
    ("validation", "checks.1.id", "6B.R01", "checks.1.id", "repeats checks.0"),
]


@pytest.mark.parametrize(
    ("name", "path", "value", "where", "text"), BROKEN, ids=[f"{b[0]}:{b[1]}" for b in BROKEN]
)
def test_broken_example_names_its_field(name: str, path: str, value: Any, where: str, text: str) -> None:
    got_where, got_what = broken(name, _set(shipped(name), path, value))
    assert got_where == where
    assert text in got_what


# --- the shipped laws meet their own realism bands ----------------------------------------------------------
def band(check_id: str) -> tuple[float, float]:
    check = next(c for c in model("validation").checks if c.id == check_id)
    return (-math.inf if check.lo is None else check.lo, math.inf if check.hi is None else check.hi)


def test_auth_latency_law_meets_r13() -> None:
    """Median 0.25 s and p99 = 0.25·e^(2.3263·0.6) ≈ 1.01 s (z_0.99 = 2.3263); the 0.1 % stand-ins at the
    timeout sit above the 99th percentile and cannot move it."""
    lat = model("flows").latency
    lo, hi = band("6B.R13a")
    assert lo <= lat.auth_s.median <= hi
    p99 = lat.auth_s.median * math.exp(2.3263478740 * lat.auth_s.sigma)
    assert p99 == pytest.approx(1.0096, abs=1e-4)
    assert p99 <= band("6B.R13b")[1]
    assert lat.stand_in_share < 0.01


@pytest.mark.parametrize(
    ("channel", "check_id"),
    [("POS", "6B.R14a"), ("ECOM", "6B.R14b"), ("ATM", "6B.R14c"), ("TRANSFER", "6B.R14d")],
)
def test_non_fraud_decline_rates_lie_inside_r14(channel: str, check_id: str) -> None:
    lo, hi = band(check_id)
    assert lo <= model("flows").declines.rate[channel] <= hi


# --- presets raise the rate through policy_overrides (engine/core/config.py deep_merge) ---------------------
def test_a_preset_raises_the_rate_with_its_band_and_the_factor_follows() -> None:
    override = {"fraud_rate_target": 0.004, "fraud_rate_band": [0.002, 0.012], "min_instances": 1}
    raised = p6b.Campaigns.model_validate(deep_merge(shipped("campaigns"), override))
    assert raised.fraud_rate_target == 0.004
    assert raised.enrichment_factor == pytest.approx(0.004 / 0.00015)
    assert raised.types == model("campaigns").types  # the catalogue is untouched
    # nested fields merge too: tiny (≈ 10^5 arrivals, 200 merchants) can shrink amendment 4's probe shapes
    tiny = {**override, "types": {"CARD_TESTING": {"burst_attempts": {"lo": 20, "hi": 200}}}}
    shrunk = p6b.Campaigns.model_validate(deep_merge(shipped("campaigns"), tiny)).types.CARD_TESTING
    assert (shrunk.burst_attempts.lo, shrunk.burst_attempts.hi, shrunk.decline_share) == (20, 200, 0.85)
    where, what = broken("campaigns", deep_merge(shipped("campaigns"), {"fraud_rate_target": 0.004}))
    assert where == "fraud_rate_target"
    assert "raises the band with it" in what


# --- validation pack: the design's checks with amendment 1's R19 --------------------------------------------
def test_validation_covers_r01_to_r22_with_r19_required() -> None:
    checks = model("validation").checks
    numbers = sorted({int(c.id[4:6]) for c in checks})
    assert numbers == list(range(1, 23))
    r19 = [c for c in checks if c.id.startswith("6B.R19")]
    assert {c.metric for c in r19 if c.severity == "REQUIRED"} == {
        "cnp_card_fraud_value_share",
        "cross_border_card_fraud_value_share",
        "cross_border_card_value_share",
    }
    by_id = {c.id: c for c in checks}
    assert (by_id["6B.R14b"].lo, by_id["6B.R14b"].hi) == (0.07, 0.20)
    assert (by_id["6B.R13a"].lo, by_id["6B.R13a"].hi, by_id["6B.R13b"].hi) == (0.1, 1.0, 10.0)
    assert (by_id["6B.R12a"].lo, by_id["6B.R12a"].hi) == (0.05, 0.15)
    assert by_id["6B.R22"].metric == "rng_accounting" and by_id["6B.R22"].severity == "REQUIRED"
    assert set(p6b.METRICS) == {c.metric for c in checks}  # every metric S7 must compute is checked


# --- contracts/6B.yaml --------------------------------------------------------------------------------------
def enum(table: str, column: str) -> list[str]:
    return table_schema(f"6B.yaml#/tables/{table}").columns[column]["enum"]


@pytest.mark.parametrize("table", TABLES)
def test_contract_table_resolves_with_identity_first(table: str) -> None:
    schema = table_schema(f"6B.yaml#/tables/{table}")
    cols = list(schema.columns)
    assert cols[:2] == ["seed", "manifest_fingerprint"]
    assert cols[2] == "scenario_id"  # every 6B dataset is per scenario (design §0.2)
    assert set(schema.primary_key) <= set(cols)
    assert schema.polars_schema()  # every dtype is known


def test_contract_lists_the_design_tables() -> None:
    design = {
        "s1_attachments",
        "s2_flow_plan",
        "campaigns",
        "campaign_targets",
        "inserted_flows",
        "s4_flows",
        "s5_case_triggers",
        "cases",
        "case_timeline",
        "transactions",
        "events",
    }
    assert design <= set(TABLES)
    # added by the amendments: points of compromise (3), non-monetary events (10), block and reissue (5: S5a's
    # candidates and S5b's blocked cards); added by the engine: S7's scan of each shard (6B.S7a)
    amended = {"breaches", "account_events", "s5_block_candidates", "card_reissues"}
    scans = {"s7_scan_sample", "s7_scan_cube", "s7_scan_keys", "s7_scan_amounts", "s7_scan_measures"}
    assert set(TABLES) - design == amended | scans


def test_contract_vocabularies_are_the_policy_vocabularies() -> None:
    assert enum("transactions", "channel") == list(p6b.CHANNELS)
    assert enum("transactions", "truth_subtype") == list(p6b.TRUTH_SUBTYPES)
    assert enum("transactions", "truth_label") == list(p6b.TRUTH_LABELS)
    assert enum("transactions", "truth_source") == ["NONE", *p6b.TRUTH_RULES[:-1]]
    assert enum("transactions", "campaign_type") == list(p6b.CAMPAIGN_TYPES)
    assert enum("campaigns", "campaign_type") == list(p6b.CAMPAIGN_TYPES)
    assert enum("transactions", "decline_reason") == list(p6b.DECLINE_REASONS)
    assert enum("events", "response_code") == ["APPROVED", *p6b.DECLINE_REASONS]
    assert enum("transactions", "pos_entry_mode") == list(p6b.POS_ENTRY_MODES)
    assert enum("transactions", "cvm") == list(p6b.CVMS)
    assert enum("transactions", "wallet") == list(p6b.WALLETS)
    assert enum("events", "wallet") == list(p6b.WALLETS)
    assert enum("transactions", "cvv_result") == list(p6b.CVV_RESULTS)
    assert enum("transactions", "avs_result") == list(p6b.AVS_RESULTS)
    assert enum("events", "step_up_result") == list(p6b.STEP_UP_RESULTS)
    assert enum("account_events", "event_type") == list(p6b.ACCOUNT_EVENT_TYPES)
    assert enum("transactions", "instrument_type") == list(p6a.INSTRUMENT_TYPES)
    assert enum("transactions", "card_scheme") == list(p6a.SCHEMES)
    assert enum("transactions", "party_segment") == list(p6a.SEGMENTS)
    assert enum("transactions", "device_os") == list(p6a.OPERATING_SYSTEMS)
    # the contract's vocabularies match 6A's own columns
    assert enum("transactions", "kyc_risk_tier") == resolve("6A.yaml#/$defs/risk_tier")["enum"]
    six_a = "6A.yaml#/tables/"
    assert enum("transactions", "ip_type") == table_schema(six_a + "ips").columns["ip_type"]["enum"]
    assert enum("transactions", "ip_asn_class") == table_schema(six_a + "ips").columns["asn_class"]["enum"]
    assert (
        enum("transactions", "device_type") == table_schema(six_a + "devices").columns["device_type"]["enum"]
    )


def test_tactic_bits_are_the_design_mask() -> None:
    """design §5.1: 1 amount, 2 IP, 4 device, 8 site, 16 burst, 32 clearing suppression, 64 new flow,
    128 refund injection; the mask column holds any combination."""
    assert p6b.TACTIC_BITS == {
        "AMOUNT_SHIFT": 1,
        "IP_SWAP_ANON": 2,
        "DEVICE_SWAP_SHARED": 4,
        "SITE_SHIFT": 8,
        "BURST_TIMING": 16,
        "CLEARING_SUPPRESSION": 32,
        "NEW_FLOW": 64,
        "REFUND_INJECTION": 128,
    }
    assert table_schema("6B.yaml#/tables/transactions").columns["tactic_mask"]["maximum"] == 255


# design §5.1 / §5.2 column lists, typed from the design (the amendments add to them)
DESIGN_TRANSACTIONS = [
    "flow_id",
    "arrival_id",
    "session_id",
    "session_seq",
    "merchant_id",
    "mcc",
    "merchant_class",
    "channel",
    "is_card_present",
    "is_virtual",
    "merchant_country_iso",
    "site_id",
    "terminal_id",
    "edge_id",
    "ts_utc",
    "ts_local",
    "tzid_local",
    "utc_offset_s",
    "amount_minor",
    "currency",
    "currency_exponent",
    "party_id",
    "account_id",
    "instrument_id",
    "party_country_iso",
    "party_segment",
    "party_tenure_days",
    "kyc_risk_tier",
    "is_cross_border",
    "instrument_type",
    "card_scheme",
    "card_bin",
    "is_tokenised",
    "device_id",
    "device_type",
    "device_os",
    "device_known",
    "device_n_parties",
    "ip_id",
    "ip_type",
    "ip_asn_class",
    "ip_country_iso",
    "payee_account_id",
    "bank_score",
    "auth_decision",
    "decline_reason",
    "auth_response_ts_utc",
    "is_cleared",
    "clearing_ts_utc",
    "cleared_amount_minor",
    "reversal_ts_utc",
    "refund_ts_utc",
    "refund_amount_minor",
    "detection_channel",
    "detection_ts_utc",
    "dispute_ts_utc",
    "dispute_outcome",
    "chargeback_ts_utc",
    "chargeback_outcome",
    "chargeback_outcome_ts_utc",
    "case_opened_ts_utc",
    "bank_label",
    "is_fraud_bank",
    "bank_label_ts_utc",
    "truth_label",
    "truth_subtype",
    "truth_source",
    "is_fraud_truth",
    "origin",
    "campaign_id",
    "campaign_type",
    "tactic_mask",
]
DESIGN_EVENTS = [
    "flow_id",
    "event_seq",
    "event_type",
    "ts_utc",
    "ts_local",
    "amount_minor",
    "currency",
    "response_code",
    "step_up_result",
    "merchant_id",
    "party_id",
    "instrument_id",
    "truth_label",
    "event_role",
]


@pytest.mark.parametrize(
    ("table", "design"), [("transactions", DESIGN_TRANSACTIONS), ("events", DESIGN_EVENTS)]
)
def test_consumer_tables_keep_every_design_column(table: str, design: list[str]) -> None:
    cols = list(table_schema(f"6B.yaml#/tables/{table}").columns)
    assert [c for c in cols if c in design] == design  # all present, in the design's order


def test_transactions_carry_the_amendment_9_and_11_fields() -> None:
    cols = table_schema("6B.yaml#/tables/transactions").columns
    for col in (
        "pos_entry_mode",
        "cvm",
        "eci",
        "three_ds_result",
        "liability_shift",
        "cvv_result",
        "avs_result",
        "is_recurring",
        "wallet",
        "decline_reason",
        "reason_code",
        "issuer_id",
        "issuer_country_iso",
    ):
        assert col in cols, col
    assert cols["amount_minor"]["minimum"] == 0  # $0 verifications (amendment 4)
    assert cols["reason_code"]["nullable"] is True
    # every dispute reason code the bank view can emit fits the column
    codes = {c for scheme in model("bank_view").reason_codes.values() for c in scheme.values()}
    assert all(re.fullmatch(cols["reason_code"]["pattern"], c) for c in codes)


def test_only_flows_after_attachment_may_lack_a_party() -> None:
    """Amendment 4: probes on non-existent card numbers have no party, account or instrument; every baseline
    flow is attached (S1) and the bank still knows the BIN's issuer."""
    attach = table_schema("6B.yaml#/tables/s1_attachments").columns
    assert not any(attach[c].get("nullable") for c in ("party_id", "account_id", "instrument_id"))
    tx = table_schema("6B.yaml#/tables/transactions").columns
    for col in (
        "party_id",
        "account_id",
        "instrument_id",
        "party_segment",
        "kyc_risk_tier",
        "instrument_type",
    ):
        assert tx[col].get("nullable") is True, col
    assert not tx["issuer_id"].get("nullable")
    assert not tx["merchant_id"].get("nullable")


def test_events_stay_keyed_by_flow_and_account_events_hold_the_rest() -> None:
    events = table_schema("6B.yaml#/tables/events")
    assert events.primary_key == ("flow_id", "event_seq")
    assert "nullable" not in events.columns["flow_id"]  # a non-monetary event never hides in `events`
    acc = table_schema("6B.yaml#/tables/account_events")
    assert acc.primary_key == ("account_event_id",)
    assert "flow_id" not in acc.columns and "merchant_id" not in acc.columns
    assert "shard" not in acc.columns  # not sharded by merchant: they belong to a party
