"""6B.S7's streamed scan of one (scenario, shard) of the consumer tables (design layer2_3.md §4.10):
full-column structural counts, a small cube of label/channel aggregates the realism checks and
label_stats.json are read from, per-party and per-session counts, amount frequencies, and the separability
sample (every FRAUD/ABUSE flow plus the flows with splitmix64(flow_id) mod 64 = 0)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from engine.core.ids import splitmix64
from engine.segments.l2.s5b.batches import unit_cuts

SAMPLE_MOD = 64
APPROVED = ("APPROVE", "CHALLENGE_PASS")
DECLINED = ("DECLINE", "DECLINE_FRAUD", "CHALLENGE_FAIL", "CHALLENGE_ABANDON")
CARD_CHANNELS = ("POS", "ECOM", "ATM")
SUPPRESSED_BIT = 32
CUBE_KEYS = [
    "channel",
    "truth_label",
    "truth_subtype",
    "truth_source",
    "campaign_type",
    "is_cross_border",
    "auth_decision",
    "night",
    "origin",
]
# the AUTH columns the baseline model may use (design §4.10 with amendment 9's message fields)
NUMERIC_FEATURES = ["log_amount_usd", "local_hour", "party_tenure_days", "session_seq", "device_n_parties"]
CATEGORICAL_FEATURES = [
    "weekday",
    "channel",
    "merchant_class",
    "party_segment",
    "is_cross_border",
    "ip_type",
    "ip_asn_class",
    "device_type",
    "device_os",
    "device_known",
    "instrument_type",
    "is_tokenised",
    "card_scheme",
    "kyc_risk_tier",
    "pos_entry_mode",
    "cvm",
    "wallet",
    "is_recurring",
    "eci",
    "three_ds_result",
    "cvv_result",
    "avs_result",
]
SAMPLE_EXTRA = [
    "flow_id",
    "truth_label",
    "truth_subtype",
    "campaign_type",
    "ts_utc",
    "auth_decision",
    "auth_response_ts_utc",
    "clearing_ts_utc",
    "detection_ts_utc",
    "detection_channel",
    "dispute_ts_utc",
    "chargeback_ts_utc",
    "bank_label_ts_utc",
    "is_fraud_bank",
    "amount_minor",
]
RAW_FEATURES = [
    "amount_minor",
    "currency",
    "currency_exponent",
    "ts_local",
    "party_tenure_days",
    "session_seq",
    "device_n_parties",
    *[c for c in CATEGORICAL_FEATURES if c != "weekday"],
]


def usd(scale: dict[str, float]) -> pl.Expr:
    """A flow's amount in USD-equivalent major units: minor / 10^exponent / the currency's price scale."""
    factor = pl.col("currency").cast(pl.String).replace_strict(scale, default=1.0, return_dtype=pl.Float64)
    return (
        pl.col("amount_minor").cast(pl.Float64)
        / (10.0 ** pl.col("currency_exponent").cast(pl.Float64))
        / factor
    )


def with_derived(lf: pl.LazyFrame, scale: dict[str, float]) -> pl.LazyFrame:
    return lf.with_columns(
        usd(scale).alias("amount_usd"),
        (pl.col("ts_local").dt.hour() < 6).alias("night"),
        pl.col("tactic_mask").cast(pl.Int64).alias("_mask"),
    )


def cube(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Counts and sums per combination of the low-cardinality label and channel keys."""
    strings = [
        pl.col(k).cast(pl.String) if k not in ("is_cross_border", "night") else pl.col(k) for k in CUBE_KEYS
    ]
    return lf.group_by(strings).agg(
        pl.len().alias("n"),
        # whole US cents: an integer sum does not depend on the order threads add it in
        (pl.col("amount_usd") * 100.0).round().cast(pl.Int64).sum().alias("usd"),
        pl.col("detection_ts_utc").is_not_null().sum().alias("detected"),
        pl.col("is_fraud_bank").sum().alias("bank_fraud"),
        pl.col("dispute_ts_utc").is_not_null().sum().alias("disputed"),
        pl.col("chargeback_ts_utc").is_not_null().sum().alias("chargebacks"),
        pl.col("refund_ts_utc").is_not_null().sum().alias("refunds"),
        pl.col("reversal_ts_utc").is_not_null().sum().alias("reversals"),
        pl.col("is_cleared").sum().alias("cleared"),
    )


def violations(lf: pl.LazyFrame) -> dict[str, int]:
    """Structural counts over every row (each must be 0)."""
    ts = pl.col("ts_utc")
    approved = pl.col("auth_decision").cast(pl.String).is_in(APPROVED)
    suppressed = (pl.col("_mask") & SUPPRESSED_BIT) > 0
    reversed_ = pl.col("reversal_ts_utc").is_not_null()
    settled_or_auth = pl.coalesce(pl.col("clearing_ts_utc"), pl.col("auth_response_ts_utc"))
    truth = pl.col("truth_label").cast(pl.String)
    source = pl.col("truth_source").cast(pl.String)
    checks = {
        "latency_not_positive": pl.col("auth_response_ts_utc") <= ts,
        "detection_before_auth": pl.col("detection_ts_utc") < ts,
        "dispute_before_settlement": pl.col("dispute_ts_utc") < settled_or_auth,
        "chargeback_before_dispute": (pl.col("chargeback_ts_utc") < pl.col("dispute_ts_utc"))
        | (pl.col("chargeback_ts_utc").is_not_null() & pl.col("dispute_ts_utc").is_null()),
        "outcome_before_chargeback": pl.col("chargeback_outcome_ts_utc") < pl.col("chargeback_ts_utc"),
        "label_before_evidence": (pl.col("bank_label_ts_utc") < ts)
        | (pl.col("bank_label_ts_utc") < pl.col("chargeback_outcome_ts_utc"))
        | ((pl.col("bank_label").cast(pl.String) != "NO_CASE") & pl.col("bank_label_ts_utc").is_null()),
        "clearing_before_auth": pl.col("clearing_ts_utc") <= pl.col("auth_response_ts_utc"),
        "cleared_not_approved": pl.col("is_cleared") & ~approved,
        "approved_not_cleared": approved & ~reversed_ & ~suppressed & ~pl.col("is_cleared"),
        "cleared_without_ts": pl.col("is_cleared") != pl.col("clearing_ts_utc").is_not_null(),
        "campaign_flow_legit": pl.col("campaign_id").is_not_null() & (truth == "LEGIT"),
        "label_without_rule": (truth != "LEGIT") & (source == "NONE"),
        "legit_with_rule": (truth == "LEGIT") & (source != "NONE"),
        "campaign_source_without_id": (source == "CAMPAIGN") != pl.col("campaign_id").is_not_null(),
        "fraud_flag_mismatch": pl.col("is_fraud_truth") != (truth != "LEGIT"),
        "bank_flag_mismatch": pl.col("is_fraud_bank")
        != pl.col("bank_label").cast(pl.String).is_in(["CHARGEBACK_FRAUD", "CONFIRMED_FRAUD"]),
    }
    row = lf.select(expr.fill_null(False).sum().alias(name) for name, expr in checks.items()).collect()
    return {k: int(v) for k, v in row.row(0, named=True).items()}


def block_violations(lf: pl.LazyFrame, reissues: pl.DataFrame) -> dict[str, int]:
    """Amendment 5 over every row (each must be 0): a flow on a blocked card at or after its block is declined
    LOST_STOLEN_CARD, that reason appears nowhere else, a replacement card carries only its holder's genuine
    flows from its arrival on, and card_blocked_ts_utc is the flow's card's block time (null: never
    blocked)."""
    old = reissues.lazy().select("instrument_id", pl.col("card_blocked_ts_utc").alias("_blocked"))
    new = reissues.lazy().select(
        pl.col("new_instrument_id").alias("instrument_id"),
        pl.col("reissue_ts_utc").alias("_arrives"),
        pl.col("party_id").alias("_holder"),
    )
    rows = lf.join(old, on="instrument_id", how="left").join(new, on="instrument_id", how="left")
    after = (pl.col("ts_utc") >= pl.col("_blocked")).fill_null(False)
    lost = (pl.col("decline_reason").cast(pl.String) == "LOST_STOLEN_CARD").fill_null(False)
    checks = {
        "blocked_card_not_declined": after & ~lost,
        "block_decline_without_block": lost & ~after,
        "reissued_card_misused": pl.col("_arrives").is_not_null()
        & (
            (pl.col("ts_utc") < pl.col("_arrives"))
            | (pl.col("truth_label").cast(pl.String) != "LEGIT")
            | (pl.col("party_id") != pl.col("_holder"))
        ),
        "card_blocked_ts_mismatch": ~pl.col("card_blocked_ts_utc").eq_missing(pl.col("_blocked")),
    }
    row = rows.select(expr.fill_null(False).sum().alias(name) for name, expr in checks.items()).collect()
    return {k: int(v) for k, v in row.row(0, named=True).items()}


@dataclass
class ShardScan:
    """Everything S7 keeps of one (scenario, shard)."""

    rows: int = 0
    cube: list[pl.DataFrame] = field(default_factory=list)
    violations: dict[str, int] = field(default_factory=dict)
    tactic_bits: int = 0
    party_counts: list[pl.DataFrame] = field(default_factory=list)
    pair_rows: int = 0
    repeat_pair_rows: int = 0
    sessions: int = 0
    singleton_sessions: int = 0
    ecom_sessions: int = 0
    ecom_multi_sessions: int = 0
    amounts: list[pl.DataFrame] = field(default_factory=list)
    sample: list[pl.DataFrame] = field(default_factory=list)
    campaign_flows: list[pl.DataFrame] = field(default_factory=list)
    flow_ids_nonarrival: list[np.ndarray] = field(default_factory=list)
    origin_counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int) -> None:
        self.violations[key] = self.violations.get(key, 0) + n


def scan_transactions(
    frames: Iterable[pl.DataFrame],
    shard: int,
    shards: int,
    scale: dict[str, float],
    reissues: pl.DataFrame,
    out: ShardScan,
) -> None:
    """Fold one shard's transactions, batch by batch in stream order, every column decoded once
    (`reissues`: the scenario's card_reissues). Sessions and (party, merchant) pairs never leave their
    merchant's shard, so their partial counts merge at the shard's end."""
    partial = ShardPartials()
    for frame in frames:
        fold_batch(with_derived(frame.lazy(), scale).collect(), shard, shards, reissues, out, partial)
    partial.close(out)


@dataclass
class ShardPartials:
    """Per-batch counts of one shard that only the whole shard completes."""

    flow_ids: list[np.ndarray] = field(default_factory=list)
    parties: list[pl.DataFrame] = field(default_factory=list)
    pairs: list[pl.DataFrame] = field(default_factory=list)
    sessions: list[pl.DataFrame] = field(default_factory=list)
    amounts: list[pl.DataFrame] = field(default_factory=list)
    campaigns: list[pl.DataFrame] = field(default_factory=list)

    def close(self, out: ShardScan) -> None:
        ids = np.concatenate(self.flow_ids) if self.flow_ids else np.zeros(0, np.uint64)
        out.add("duplicate_flow_id", int(ids.size - pl.Series(ids).n_unique()))
        if not self.flow_ids:
            return  # an empty shard: nothing to merge
        out.party_counts.append(merged_counts(self.parties, ["party_id"]))
        pairs = merged_counts(self.pairs, ["party_id", "merchant_id"])
        out.pair_rows += int(pairs["n"].sum())
        out.repeat_pair_rows += int(pairs.filter(pl.col("n") >= 2)["n"].sum())
        sessions = merged_counts(self.sessions, ["session_id"])
        ecom = sessions["ecom"] == sessions["n"]  # every flow of the session is ECOM
        out.sessions += sessions.height
        out.singleton_sessions += int((sessions["n"] == 1).sum())
        out.ecom_sessions += int(ecom.sum())
        out.ecom_multi_sessions += int((ecom & (sessions["n"] >= 2)).sum())
        out.amounts.append(merged_counts(self.amounts, AMOUNT_KEYS))
        out.campaign_flows.append(merged_counts(self.campaigns, ["campaign_id"]))


AMOUNT_KEYS = ["channel", "amount_minor", "legit", "amount_usd"]
SAMPLE_COLUMNS = [*dict.fromkeys([*SAMPLE_EXTRA, *RAW_FEATURES, "channel"]), "amount_usd"]


def fold_batch(
    df: pl.DataFrame,
    shard: int,
    shards: int,
    reissues: pl.DataFrame,
    out: ShardScan,
    partial: ShardPartials,
) -> None:
    """One batch (with_derived's columns added) into the shard's counts, partial frames and sample."""
    lf = df.lazy()
    for k, v in (violations(lf) | block_violations(lf, reissues)).items():
        out.add(k, v)
    merchant_shard = splitmix64(df["merchant_id"].to_numpy()) % np.uint64(shards)
    out.add("merchant_in_wrong_shard", int((merchant_shard != np.uint64(shard)).sum()))
    flow_ids = df["flow_id"].to_numpy()
    out.rows += df.height
    out.tactic_bits |= int(df["_mask"].bitwise_or() or 0)
    partial.flow_ids.append(flow_ids)
    with_party = lf.filter(pl.col("party_id").is_not_null())
    is_ecom = pl.col("channel").cast(pl.String) == "ECOM"
    legit = pl.col("truth_label").cast(pl.String) == "LEGIT"
    arrival = pl.col("arrival_id")
    queries = [
        cube(lf),
        with_party.group_by("party_id").agg(pl.len().alias("n")),
        with_party.group_by("party_id", "merchant_id").agg(pl.len().alias("n")),
        lf.group_by("session_id").agg(pl.len().alias("n"), is_ecom.sum().alias("ecom")),
        lf.group_by(
            pl.col("channel").cast(pl.String), "amount_minor", legit.alias("legit"), "amount_usd"
        ).agg(pl.len().alias("n")),
        lf.group_by(pl.col("origin").cast(pl.String)).agg(pl.len().alias("n")),
        lf.filter(arrival.is_null()).select("flow_id"),
        lf.select((arrival.is_not_null() & (arrival != pl.col("flow_id"))).sum().alias("n")),
        lf.filter(pl.col("campaign_id").is_not_null()).group_by("campaign_id").agg(pl.len().alias("n")),
    ]
    cubes, parties, pairs, sessions, amounts, origins, nonarrival, mismatch, campaigns = pl.collect_all(
        queries
    )
    out.cube.append(cubes)
    partial.parties.append(parties)
    partial.pairs.append(pairs)
    partial.sessions.append(sessions)
    partial.amounts.append(amounts)
    partial.campaigns.append(campaigns)
    for origin, n in origins.iter_rows():
        out.origin_counts[origin] = out.origin_counts.get(origin, 0) + int(n)
    out.flow_ids_nonarrival.append(nonarrival["flow_id"].to_numpy())
    out.add("arrival_id_not_flow_id", int(mismatch["n"][0]))
    keep = (splitmix64(flow_ids) % np.uint64(SAMPLE_MOD) == 0) | (~df.select(legit).to_series()).to_numpy()
    if keep.any():
        out.sample.append(df.filter(pl.Series(keep)).select(SAMPLE_COLUMNS))


EVENT_COLUMNS = ["merchant_id", "flow_id", "event_seq", "event_type", "ts_utc"]
EVENT_CHUNK_ROWS = 1 << 21


def scan_events(frames: Iterable[pl.DataFrame], out: ShardScan) -> dict[str, int]:
    """Event order and the event counts the transactions must match, in chunks of whole merchants: the
    stream is sorted by merchant first, so a flow's events lie within its merchant's rows, wherever a part
    or a read ends; no chunk holds more than EVENT_CHUNK_ROWS events unless one merchant alone has more."""
    totals: dict[str, int] = {}
    chunks = unit_cuts((f.select(EVENT_COLUMNS) for f in frames), ["merchant_id"], EVENT_CHUNK_ROWS)
    for chunk in chunks:
        check_events(chunk, out, totals)
    return totals


ONCE_PER_FLOW = ("AUTH_REQUEST", "AUTH_RESPONSE", "CLEARING")


def check_events(rows: pl.DataFrame, out: ShardScan, totals: dict[str, int]) -> None:
    """The checks on whole merchants' events: times strictly increase and event_seq is dense within a flow,
    no flow repeats its request, response or clearing; event counts by type add to `totals`."""
    if rows.height == 0:
        return
    ev = rows.select(EVENT_COLUMNS[1:]).sort("flow_id", "event_seq")
    flow = ev["flow_id"].to_numpy()
    same = flow[1:] == flow[:-1]
    ts = ev["ts_utc"].cast(pl.Int64).to_numpy()
    seq = ev["event_seq"].cast(pl.Int64).to_numpy()
    out.add("event_time_not_increasing", int((same & (ts[1:] <= ts[:-1])).sum()))
    out.add("event_seq_not_dense", int((same & (seq[1:] != seq[:-1] + 1)).sum()))
    starts = np.flatnonzero(np.concatenate([[True], ~same]))
    repeated = 0
    for kind in ONCE_PER_FLOW:  # per flow (a run of equal flow_id), how often the kind occurs
        per_flow = np.add.reduceat((ev["event_type"] == kind).to_numpy().astype(np.int64), starts)
        repeated += int((per_flow > 1).sum())
    out.add("event_repeated_per_flow", repeated)
    for kind, n in ev["event_type"].value_counts().iter_rows():
        totals[kind] = totals.get(kind, 0) + int(n)


def merged_counts(frames: list[pl.DataFrame], keys: list[str]) -> pl.DataFrame:
    """Partial count frames summed by key."""
    if not frames:
        return pl.DataFrame()
    both = pl.concat(frames)
    value_cols = [c for c in both.columns if c not in keys]
    return both.group_by(keys).agg(pl.col(c).sum() for c in value_cols)


def features_of(sample: pl.DataFrame) -> dict[str, Any]:
    """The sample's AUTH features as columns the separability module encodes."""
    return {
        "log_amount_usd": np.log1p(sample["amount_usd"].to_numpy()),
        "local_hour": sample["ts_local"].dt.hour().cast(pl.Float64).to_numpy(),
        "party_tenure_days": sample["party_tenure_days"].cast(pl.Float64).fill_null(-1.0).to_numpy(),
        "session_seq": sample["session_seq"].cast(pl.Float64).to_numpy(),
        "device_n_parties": sample["device_n_parties"].cast(pl.Float64).fill_null(0.0).to_numpy(),
        "weekday": sample["ts_local"].dt.weekday(),
    }
