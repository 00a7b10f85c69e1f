"""6B.S5 — the bank's view of every flow of this shard and the two consumer tables (design §4.8, §5.1, §5.2
with amendments 6, 7, 9 and 11): the auth-time score (bank_score.py), the decision and 3DS fields
(decisions.py), the message times and the `events` explode (events.py), what the bank learns afterwards and
its label (disputes.py), and the case triggers 6B.S6 groups into cases.

s4_flows is streamed in batches of at most BATCH_FLOWS rows, cut anywhere (a flow's bank view is its own
row's); transactions and triggers keep s4's (merchant_id, ts_utc, flow_id) order, and events, sorted by
(merchant_id, ts_utc, flow_id, event_seq), wait in HeldEvents until no later flow can sort before them.
RNG: `6B.bank` ⟨flow_id, k, 0, 0⟩, k = 0..4, four lanes each: 5 blocks and 20 draws per flow whatever
branch it takes (lane uses in bank_score.py, decisions.py and disputes.py), so draws never depend on the
shard or batch. In-state checks: E_6B_EVENT_ORDER and E_6B_BANK_TIME_ORDER.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from engine.core.contracts import table_schema
from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.blocks import block_uniforms
from engine.kernels.normal import ndtri_array
from engine.segments.l2.s5b.batches import part_rows, row_batches
from engine.segments.l3.s6b import bank_score
from engine.segments.l3.s6b.bank_columns import TS, coded, codes_of, nullable, stamp
from engine.segments.l3.s6b.bank_world import BankWorld, bank_world, collateral_types
from engine.segments.l3.s6b.blocks import REISSUE_BIT, Blocks, apply_blocks
from engine.segments.l3.s6b.decisions import (
    AUTH_DECISIONS,
    CHALLENGE_FAIL,
    DECLINE_FRAUD,
    ECIS,
    THREE_DS_RESULTS,
    Auth,
    AuthInputs,
    decide,
    sca_shares,
)
from engine.segments.l3.s6b.disputes import (
    BANK_LABELS,
    CB_OUTCOMES,
    CHARGEBACK_FRAUD,
    DETECTION_CHANNELS,
    DISPUTE_OUTCOMES,
    TRIGGERS,
    Flows,
    Learned,
    learn,
)
from engine.segments.l3.s6b.events import (
    CHARGEBACK,
    CLEARING,
    EVENT_TYPES,
    REFUND,
    REQUEST,
    RESPONSE,
    RESULT,
    REVERSAL,
    Exploded,
    HeldEvents,
    Times,
    after_refund,
    check_order,
    explode,
    flow_times,
    stream_order,
)
from engine.segments.l3.s6b.policy import (
    CHANNELS,
    DECLINE_REASONS,
    DISPUTE_KINDS,
    REASON_CODE_SCHEMES,
    STEP_UP_RESULTS,
    TRUTH_LABELS,
    TRUTH_SUBTYPES,
    Amounts,
    BankView,
    Channels,
)

BATCH_FLOWS = 1 << 19  # flows per batch: bounds the batch working set (≈ 0.45 GB at 2^19)
BLOCKS = 5  # 6B.bank blocks per flow
RESPONSE_CODES = ("APPROVED", *DECLINE_REASONS)
MESSAGE_FIELDS = (
    "pos_entry_mode",
    "cvm",
    "wallet",
    "is_recurring",
    "eci",
    "three_ds_result",
    "liability_shift",
    "cvv_result",
    "avs_result",
)


@dataclass(frozen=True)
class Setup:
    bank: BankView
    amounts: Amounts
    channels: Channels
    world: BankWorld
    key: tuple[int, int]
    laws: pl.DataFrame
    reasons: tuple[str, ...]  # the reason-code vocabulary (every code bank_view.yaml names, sorted)
    reason_table: np.ndarray  # (scheme family, DISPUTE_KINDS) → position in `reasons`


def make_setup(
    bank: BankView, amounts: Amounts, channels: Channels, world: BankWorld, key: tuple[int, int]
) -> Setup:
    """The run's constants: policies, lookups, the amount reference laws and the reason-code tables."""
    reasons = tuple(sorted({c for by_kind in bank.reason_codes.values() for c in by_kind.values()}))
    table = np.array(
        [[reasons.index(bank.reason_codes[s][k]) for k in DISPUTE_KINDS] for s in REASON_CODE_SCHEMES]  # type: ignore[index]
    )
    laws = bank_score.amount_laws(amounts)
    return Setup(bank, amounts, channels, world, key, laws, reasons, table)


def setup(ctx: StateContext) -> Setup:
    return make_setup(
        ctx.policy("6B/bank_view.yaml"),
        ctx.policy("6B/amounts.yaml"),
        ctx.policy("6B/channels.yaml"),
        bank_world(ctx),
        ctx.family_key("bank"),
    )


def joined(s4: pl.DataFrame, w: BankWorld) -> pl.DataFrame:
    """The batch with what the bank holds about its merchant, party, account, card, device and IP."""
    merchant = w.merchants.gather(s4["merchant_id"])
    site = w.sites.gather(s4["site_id"])
    view = pl.concat(
        [
            s4,
            merchant,
            site,
            w.parties.gather(s4["party_id"]),
            w.accounts.gather(s4["account_id"]),
            w.instruments.gather(s4["instrument_id"]),
            w.devices.gather(s4["device_id"]),
            w.ips.gather(s4["ip_id"]),
        ],
        how="horizontal",
    )
    # the demand cell's legal country (5B's, or the inserted flow's), as design §5.1 defines it
    view = view.with_columns(
        pl.coalesce(*(pl.col(c).cast(pl.String) for c in ("legal_country_iso", "site_country", "home")))
        .cast(w.countries)
        .alias("merchant_country_iso")
    )
    # a probe on a made-up card number names the merchant country's largest issuer (bank_world.probe_issuers)
    at = codes_of(view["merchant_country_iso"], w.countries.categories.to_list())
    countries = pl.Series(w.countries.categories, dtype=w.countries)
    return view.with_columns(
        pl.coalesce("issuer_id", pl.Series(w.probe_issuer[at])).alias("issuer_id"),
        pl.coalesce("issuer_country_iso", countries.gather(w.probe_issuer_country[at])).alias(
            "issuer_country_iso"
        ),
    )


def scores(view: pl.DataFrame, s: Setup, eps: np.ndarray) -> np.ndarray:
    laws = (
        view.select("sector", pl.col("channel").cast(pl.String))
        .with_columns(
            pl.when(pl.col("channel").is_in(["POS", "ECOM"]))
            .then(pl.col("sector"))
            .otherwise(pl.lit(bank_score.ANY_SECTOR))
            .alias("sector")
        )
        .join(s.laws, on=["sector", "channel"], how="left", maintain_order="left")
    )
    q = bank_score.amount_quantile(
        view["amount_minor"].to_numpy(),
        view["currency_exponent"].to_numpy(),
        bank_score.price_scales(s.channels, view["currency"]),
        laws["ln_median"].fill_null(np.log(50.0)).to_numpy(),
        laws["sigma"].fill_null(1.0).to_numpy(),
    )
    recent = bank_score.recent_events(view, s.world.history)
    return bank_score.score(bank_score.feature_matrix(view, q, recent), s.bank.score, eps)


def auth_inputs(view: pl.DataFrame, s: Setup) -> AuthInputs:
    countries = s.world.countries.categories.to_list()
    issuer = codes_of(view["issuer_country_iso"], countries)
    share, challenge = sca_shares(
        s.bank, countries, issuer, codes_of(view["merchant_country_iso"], countries)
    )
    return AuthInputs(
        channel=codes_of(view["channel"], CHANNELS),
        no_card=view["party_id"].is_null().to_numpy(),
        nonfraud=codes_of(view["nonfraud_decline"], DECLINE_REASONS),
        decline_bias=view["decline_bias"].to_numpy().astype(np.float64),
        stand_in=view["stand_in"].to_numpy(),
        recurring=view["is_recurring"].to_numpy(),
        subtype=codes_of(view["truth_subtype"], TRUTH_SUBTYPES),
        three_ds_share=share,
        challenge_share=challenge,
        mastercard=codes_of(view["card_scheme"], ["MASTERCARD"]) == 0,
    )


def learn_inputs(view: pl.DataFrame, s: Setup, auth: Auth, times: Times, score: np.ndarray) -> Flows:
    exponent = view["currency_exponent"].to_numpy().astype(np.float64)
    usd = (
        view["amount_minor"].to_numpy()
        / 10.0**exponent
        / bank_score.price_scales(s.channels, view["currency"])
    )
    channel = codes_of(view["channel"], CHANNELS)
    collateral = collateral_types(
        view.with_columns(
            pl.when(pl.col("truth_label") == "LEGIT").then(pl.col("account_id")).alias("account_id")
        ),
        s.world.anchors,
        s.bank.collateral.window_s,
    )
    countries = s.world.countries.categories.to_list()
    app = s.bank.disputes.app_reimbursed
    reimburse = np.array([app.of(c) for c in countries] + [app.default])
    return Flows(
        ts=times.request,
        response_ts=times.response,
        clearing_ts=times.clearing,
        refund_ts=times.refund,
        utc_offset_s=view["utc_offset_s"].to_numpy(),
        decision_detect=np.select(
            [auth.decision == DECLINE_FRAUD, auth.decision == CHALLENGE_FAIL], [0, 1], -1
        ),
        approved=auth.approved,
        score=score,
        label=codes_of(view["truth_label"], TRUTH_LABELS),
        subtype=codes_of(view["truth_subtype"], TRUTH_SUBTYPES),
        cashout=codes_of(view["campaign_phase"], ["CASHOUT"]) == 0,
        transfer=channel == CHANNELS.index("TRANSFER"),
        card_present=np.isin(channel, [CHANNELS.index("POS"), CHANNELS.index("ATM")]),
        liability_shift=auth.liability_shift,
        amount_usd=usd,
        credit=view["is_credit"].fill_null(False).to_numpy(),
        reimburse_p=reimburse[codes_of(view["issuer_country_iso"], countries)],
        collateral_type=codes_of(collateral["collateral_type"], TRUTH_SUBTYPES),
        collateral_ts=collateral["anchor_ts"].dt.epoch("us").fill_null(-1).to_numpy(),
    )


def check_bank_times(t: Times, got: Learned, state: str) -> None:
    """E_6B_BANK_TIME_ORDER (§4.8): detection ≥ request; dispute ≥ clearing; chargeback ≥ dispute; outcome ≥
    chargeback; a trigger resolves at or after it fires; a label is final at or after the first trigger it
    rests on (a chargeback label at or after its chargeback)."""
    fired = got.trigger_ts >= 0
    first = np.where(fired, got.trigger_ts, np.iinfo(np.int64).max).min(axis=1)
    labelled = got.label_ts >= 0
    bad = {
        "detection before the request": (got.detection_ts >= 0) & (got.detection_ts < t.request),
        "dispute before clearing": (got.dispute_ts >= 0) & (got.dispute_ts < t.clearing),
        "chargeback before its dispute": (got.chargeback_ts >= 0) & (got.chargeback_ts < got.dispute_ts),
        "outcome before its chargeback": (got.cb_outcome_ts >= 0) & (got.cb_outcome_ts < got.chargeback_ts),
        "trigger resolved before it fired": (fired & (got.resolution_ts < got.trigger_ts)).any(axis=1),
        "label without a trigger": labelled != fired.any(axis=1),
        "label before its first trigger": labelled & (got.label_ts < first),
        "chargeback label before the chargeback": (got.bank_label == CHARGEBACK_FRAUD)
        & (got.label_ts < got.chargeback_ts),
    }
    for what, rows in bad.items():
        if rows.any():
            i = int(np.flatnonzero(rows)[0])
            raise EngineError(
                "E_6B_BANK_TIME_ORDER",
                f"{int(rows.sum())} flows with a {what}, e.g. row {i} of its batch",
                where="6B.S5 transactions",
                fix="this is an engine defect: report it with the seed and config",
                state=state,
            )


def transactions(
    view: pl.DataFrame,
    s: Setup,
    score: np.ndarray,
    auth: Auth,
    t: Times,
    got: Learned,
    card_blocked_us: np.ndarray,
) -> pl.DataFrame:
    """The batch's transactions rows, contract columns in order (identity columns excluded)."""
    amount = view["amount_minor"].to_numpy()
    cleared_amount = amount + view["clearing_adjust_minor"].to_numpy()
    refund_amount = np.where(
        t.refund >= 0, cleared_amount * view["refund_fraction_bp"].to_numpy().astype(np.int64) // 10000, 0
    )
    # Visa's and Amex's own codes; every other scheme files Mastercard's (probes without a card: Visa's)
    family = codes_of(view["card_scheme"], REASON_CODE_SCHEMES)
    family = np.where(view["card_scheme"].is_null().to_numpy(), 0, np.where(family < 0, 1, family))
    reason = np.where(got.kind >= 0, s.reason_table[family, np.maximum(got.kind, 0)], -1)
    first_trigger = np.where(got.trigger_ts >= 0, got.trigger_ts, np.iinfo(np.int64).max).min(axis=1)
    ts_date = view["ts_utc"].dt.date()
    cols: dict[str, pl.Series | pl.Expr] = {
        "mcc": view["mcc"],
        "merchant_class": view["merchant_class"],
        "is_card_present": view["channel"].is_in(["POS", "ATM"]),
        "is_virtual": view["edge_id"].is_not_null(),
        "merchant_country_iso": view["merchant_country_iso"],
        "issuer_id": view["issuer_id"],
        "issuer_country_iso": view["issuer_country_iso"],
        "party_country_iso": view["party_country_iso"],
        "party_segment": view["party_segment"],
        "party_tenure_days": (ts_date - view["onboarding_date"]).dt.total_days().clip(0).cast(pl.UInt32),
        "kyc_risk_tier": view["kyc_risk_tier"],
        "instrument_type": view["instrument_type"],
        "card_scheme": view["card_scheme"],
        "card_bin": view["card_bin"],
        "is_tokenised": view["is_tokenised"],
        "eci": coded(auth.eci, ECIS),
        "three_ds_result": coded(auth.three_ds, THREE_DS_RESULTS),
        "liability_shift": pl.Series(auth.liability_shift),
        "device_type": view["device_type"],
        "device_os": view["device_os"],
        "device_n_parties": view["device_n_parties"],
        "ip_type": view["ip_type"],
        "ip_asn_class": view["ip_asn_class"],
        "ip_country_iso": view["ip_country_iso"],
        "bank_score": pl.Series(score, dtype=pl.Float32),
        "auth_decision": coded(auth.decision, AUTH_DECISIONS),
        "decline_reason": coded(auth.reason, DECLINE_REASONS),
        "auth_response_ts_utc": stamp(t.response),
        "is_cleared": pl.Series(t.clearing >= 0),
        "clearing_ts_utc": stamp(t.clearing),
        "cleared_amount_minor": nullable(cleared_amount.astype(np.int64), t.clearing >= 0),
        "reversal_ts_utc": stamp(t.reversal),
        "refund_ts_utc": stamp(t.refund),
        "refund_amount_minor": pl.Series(refund_amount.astype(np.int64)),
        "detection_channel": coded(got.detection, DETECTION_CHANNELS),
        "detection_ts_utc": stamp(got.detection_ts),
        "dispute_ts_utc": stamp(got.dispute_ts),
        "reason_code": coded(reason, s.reasons),
        "dispute_outcome": coded(got.outcome, DISPUTE_OUTCOMES),
        "chargeback_ts_utc": stamp(got.chargeback_ts),
        "chargeback_outcome": coded(got.cb_outcome, CB_OUTCOMES),
        "chargeback_outcome_ts_utc": stamp(got.cb_outcome_ts),
        "card_blocked_ts_utc": stamp(card_blocked_us),
        "case_opened_ts_utc": stamp(np.where(first_trigger < np.iinfo(np.int64).max, first_trigger, -1)),
        "bank_label": coded(got.bank_label, BANK_LABELS),
        "is_fraud_bank": pl.Series(got.bank_label <= BANK_LABELS.index("CONFIRMED_FRAUD")),
        "bank_label_ts_utc": stamp(got.label_ts),
        "is_fraud_truth": view["truth_label"] != "LEGIT",
    }
    names = list(table_schema("6B.yaml#/tables/transactions").columns)[4:]
    frame = view.with_columns(**{k: v for k, v in cols.items() if k in names})
    return frame.select(names)


EVENT_ROLES = ("LEGIT_CONTEXT", "FRAUD_PRIMARY", "FRAUD_SUPPORTING")


def events(tx: pl.DataFrame, ev: Exploded, auth: Auth, t: Times, s: Setup, zone: np.ndarray) -> pl.DataFrame:
    """The batch's events rows (ev already in (merchant_id, ts_utc, flow_id, event_seq) order): flow columns
    gathered by flow, message fields only on AUTH_REQUEST/AUTH_RESPONSE, the reason code on CHARGEBACK."""
    f, k = ev.flow, ev.kind.astype(np.int64)
    every = pl.Series(f.astype(np.uint32))
    message = nullable(f.astype(np.uint32), (k == REQUEST) | (k == RESPONSE))
    on_chargeback = nullable(f.astype(np.uint32), k == CHARGEBACK)
    amount = tx["amount_minor"].to_numpy()
    cleared = tx["cleared_amount_minor"].fill_null(0).to_numpy()
    refund = tx["refund_amount_minor"].to_numpy()
    signed = np.select(
        [k == CLEARING, k == REVERSAL, k == REFUND, k == CHARGEBACK],
        [cleared[f], -amount[f], -refund[f], -cleared[f]],
        amount[f],
    )
    response = np.where(auth.approved, 0, auth.reason.astype(np.int64) + 1)
    fraud = tx["is_fraud_truth"].to_numpy()
    refund_abuse = (codes_of(tx["truth_subtype"], ["REFUND_ABUSE"]) == 0) & (t.refund >= 0)
    primary = np.where(refund_abuse[f], k == REFUND, k == REQUEST)
    role = np.where(fraud[f], np.where(primary, 1, 2), 0)
    cols: dict[str, pl.Series] = {
        "flow_id": tx["flow_id"].gather(every),
        "event_seq": pl.Series(ev.seq, dtype=pl.UInt8),
        "event_type": coded(k, EVENT_TYPES),
        "ts_utc": pl.Series(ev.ts).cast(TS),
        "ts_local": pl.Series(s.world.clock.local_us(zone[f], ev.ts)).cast(pl.Datetime("us")),
        "amount_minor": pl.Series(signed, dtype=pl.Int64),
        "currency": tx["currency"].gather(every),
        "response_code": coded(np.where(k == RESPONSE, response[f], -1), RESPONSE_CODES),
        "step_up_result": coded(np.where(k == RESULT, auth.step_up[f], -1), STEP_UP_RESULTS),
        "merchant_id": tx["merchant_id"].gather(every),
        "party_id": tx["party_id"].gather(every),
        "instrument_id": tx["instrument_id"].gather(every),
        **{name: tx[name].gather(message) for name in MESSAGE_FIELDS},
        "reason_code": tx["reason_code"].gather(on_chargeback),
        "truth_label": tx["truth_label"].gather(every),
        "event_role": coded(role, EVENT_ROLES),
    }
    return pl.DataFrame(cols)


def triggers(tx: pl.DataFrame, got: Learned) -> pl.DataFrame:
    """One row per (flow, trigger), in flow order then trigger order."""
    rows, kinds = np.nonzero(got.trigger_ts >= 0)
    out = tx.select("flow_id", "account_id", "party_id", "instrument_id", "bank_label")[rows].with_columns(
        trigger_type=coded(kinds.astype(np.int64), TRIGGERS),
        trigger_ts=pl.Series(got.trigger_ts[rows, kinds]).cast(TS),
        resolution_ts=pl.Series(got.resolution_ts[rows, kinds]).cast(TS),
    )
    names = list(table_schema("6B.yaml#/tables/s5_case_triggers").columns)[4:]
    return out.select(names)


@dataclass(frozen=True)
class Decided:
    """A batch up to the authorisation decision: its 6B.bank lanes (blocks 0–4), the bank's view, the
    score."""

    lanes: list[np.ndarray]
    view: pl.DataFrame
    score: np.ndarray
    auth: Auth


def decided(s4: pl.DataFrame, s: Setup) -> Decided:
    lanes = [block_uniforms(s.key, s4["flow_id"].to_numpy(), k, lanes=4) for k in range(BLOCKS)]
    view = joined(s4, s.world)
    score = scores(view, s, ndtri_array(np.ascontiguousarray(lanes[0][:, 0])))
    return Decided(lanes, view, score, decide(auth_inputs(view, s), score, lanes[0], lanes[1], s.bank))


def learned(d: Decided, view: pl.DataFrame, auth: Auth, s: Setup, state: str) -> tuple[Times, Learned]:
    """The message times and what the bank learns after the decision `auth` (a chargeback after a refund
    moves past it), checked for time order."""
    t = flow_times(view, auth.challenged, auth.approved)
    got = learn(
        learn_inputs(view, s, auth, t, d.score), d.lanes[1], d.lanes[2], d.lanes[3], d.lanes[4], s.bank
    )
    got = replace(got, chargeback_ts=after_refund(got.chargeback_ts, t.refund))
    check_bank_times(t, got, state)
    return t, got


def process(
    s4: pl.DataFrame, s: Setup, blocks: Blocks, state: str
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, np.ndarray]:
    """Transactions, events and triggers of one batch of s4_flows under the run's card blocks, and the scores
    (for the draw record)."""
    d = decided(s4, s)
    legit = (d.view["truth_label"] == "LEGIT").to_numpy()
    request = d.view["ts_utc"].dt.epoch("us").to_numpy()
    applied = apply_blocks(d.view["instrument_id"], request, legit, d.auth, blocks)
    has_card = d.view["instrument_id"].is_not_null().to_numpy()
    view = d.view.with_columns(instrument_id=nullable(applied.instrument_id, has_card))
    t, got = learned(d, view, applied.auth, s, state)
    tx = transactions(view, s, d.score, applied.auth, t, got, applied.card_blocked_us)
    ev = explode(t, got.chargeback_ts)
    flow_id = s4["flow_id"].to_numpy()
    check_order(ev, flow_id, state)
    ev = stream_order(ev, s4["merchant_id"].to_numpy(), flow_id)
    zone = s.world.clock.zone_codes(view["tzid_local"])
    return tx, events(tx, ev, applied.auth, t, s, zone), triggers(tx, got), d.score


def run(ctx: StateContext) -> None:
    assert ctx.scenario is not None and ctx.shard is not None
    s = setup(ctx)
    blocks = Blocks.of(ctx.read("card_reissues", scenario=ctx.scenario))
    parts = ctx.part_files("s4_flows", scenario=ctx.scenario, shard=ctx.shard)
    columns = list(table_schema("6B.yaml#/tables/s4_flows").columns)[4:]
    meter = ctx.progress_meter(part_rows(parts), "flows")
    tally: Counter[str] = Counter()
    held = HeldEvents()
    with (
        ctx.stream("transactions") as tx_out,
        ctx.stream("events") as ev_out,
        ctx.stream("s5_case_triggers") as trig_out,
    ):
        for batch in row_batches(parts, columns, BATCH_FLOWS):
            first = batch.select("merchant_id", pl.col("ts_utc").dt.epoch("us")).row(0)
            final = held.release_before(*first)
            if final is not None:
                ev_out.write(final)
            tx, ev, trig, score = process(batch, s, blocks, ctx.state)
            tx_out.write(tx)
            held.add(ev)
            trig_out.write(trig)
            ctx.record_draws(
                "bank", (batch["flow_id"].to_numpy(), 0, 0, 0), draws=4 * BLOCKS, blocks=BLOCKS, value=score
            )
            tally.update(flows=tx.height, events=ev.height, case_triggers=trig.height)
            tally.update(blocked_declines=int((tx["decline_reason"] == "LOST_STOLEN_CARD").sum()))
            tally.update(flows_on_reissued_cards=int((tx["instrument_id"] >= REISSUE_BIT).sum()))
            for name, col in (("decision", "auth_decision"), ("bank_label", "bank_label")):
                for value, n in tx[col].cast(pl.String).value_counts().iter_rows():
                    tally[f"{name}.{value}"] += n
            meter.advance(batch.height)
        final = held.release_all()
        if final is not None:
            ev_out.write(final)
    meter.close()
    ctx.facts.update(dict(sorted(tally.items())))
