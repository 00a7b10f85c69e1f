"""6B.S7's streamed scan of one (scenario, shard) of the consumer tables (design layer2_3.md §4.10):
full-column structural counts, a small cube of label/channel aggregates the realism checks and
label_stats.json are read from, per-party and per-session counts, amount frequencies, and the separability
sample (every FRAUD/ABUSE flow plus the flows with splitmix64(flow_id) mod 64 = 0)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.core.ids import splitmix64

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


def cube(lf: pl.LazyFrame) -> pl.DataFrame:
    """Counts and sums per combination of the low-cardinality label and channel keys."""
    strings = [
        pl.col(k).cast(pl.String) if k not in ("is_cross_border", "night") else pl.col(k) for k in CUBE_KEYS
    ]
    return (
        lf.group_by(strings)
        .agg(
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
        .collect()
    )


def violations(lf: pl.LazyFrame, n_merchant_shard_bad: pl.Expr) -> dict[str, int]:
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
        "merchant_in_wrong_shard": n_merchant_shard_bad,
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
    parts: list[Path],
    shard: int,
    shards: int,
    scale: dict[str, float],
    reissues: pl.DataFrame,
    out: ShardScan,
) -> None:
    """Fold one shard's transactions (its parts together: sessions and (party, merchant) pairs never leave
    their merchant's shard); `reissues` is the scenario's card_reissues."""
    lf = with_derived(pl.scan_parquet(parts), scale)
    merchants = pl.col("merchant_id").map_batches(
        lambda s: pl.Series((splitmix64(s.to_numpy()) % np.uint64(shards)).astype(np.int64) != shard),
        return_dtype=pl.Boolean,
    )
    for k, v in (violations(lf, merchants) | block_violations(lf, reissues)).items():
        out.add(k, v)
    out.cube.append(cube(lf))
    counts = lf.select(
        pl.len().alias("rows"),
        pl.col("_mask").bitwise_or().alias("bits"),
        pl.col("flow_id").n_unique().alias("distinct_flows"),
    ).collect()
    out.rows += int(counts["rows"][0])
    out.add("duplicate_flow_id", int(counts["rows"][0]) - int(counts["distinct_flows"][0]))
    out.tactic_bits |= int(counts["bits"][0] or 0)
    out.party_counts.append(
        lf.filter(pl.col("party_id").is_not_null()).group_by("party_id").agg(pl.len().alias("n")).collect()
    )
    pairs = (
        lf.filter(pl.col("party_id").is_not_null())
        .group_by("party_id", "merchant_id")
        .agg(pl.len().alias("n"))
        .select(pl.col("n").sum().alias("rows"), pl.col("n").filter(pl.col("n") >= 2).sum().alias("repeat"))
        .collect()
    )
    out.pair_rows += int(pairs["rows"][0] or 0)
    out.repeat_pair_rows += int(pairs["repeat"][0] or 0)
    sessions = (
        lf.group_by("session_id")
        .agg(pl.len().alias("n"), (pl.col("channel").cast(pl.String) == "ECOM").all().alias("ecom"))
        .select(
            pl.len().alias("sessions"),
            (pl.col("n") == 1).sum().alias("single"),
            pl.col("ecom").sum().alias("ecom"),
            (pl.col("ecom") & (pl.col("n") >= 2)).sum().alias("ecom_multi"),
        )
        .collect()
    )
    out.sessions += int(sessions["sessions"][0])
    out.singleton_sessions += int(sessions["single"][0])
    out.ecom_sessions += int(sessions["ecom"][0])
    out.ecom_multi_sessions += int(sessions["ecom_multi"][0])
    out.amounts.append(
        lf.group_by(
            pl.col("channel").cast(pl.String),
            "amount_minor",
            (pl.col("truth_label").cast(pl.String) == "LEGIT").alias("legit"),
            "amount_usd",
        )
        .agg(pl.len().alias("n"))
        .collect()
    )
    origins = lf.group_by(pl.col("origin").cast(pl.String)).agg(pl.len().alias("n")).collect()
    for origin, n in origins.iter_rows():
        out.origin_counts[origin] = out.origin_counts.get(origin, 0) + int(n)
    out.flow_ids_nonarrival.append(
        lf.filter(pl.col("arrival_id").is_null()).select("flow_id").collect()["flow_id"].to_numpy()
    )
    out.add(
        "arrival_id_not_flow_id",
        int(
            lf.select(
                (pl.col("arrival_id").is_not_null() & (pl.col("arrival_id") != pl.col("flow_id"))).sum()
            )
            .collect()
            .item()
        ),
    )
    out.campaign_flows.append(
        lf.filter(pl.col("campaign_id").is_not_null())
        .group_by("campaign_id")
        .agg(pl.len().alias("n"))
        .collect()
    )
    for path in parts:  # the sample, part by part
        ids = pl.read_parquet(path, columns=["flow_id", "truth_label"])
        keep = (splitmix64(ids["flow_id"].to_numpy()) % np.uint64(SAMPLE_MOD) == 0) | (
            ids["truth_label"].cast(pl.String) != "LEGIT"
        ).to_numpy()
        if keep.any():
            cols = list(dict.fromkeys([*SAMPLE_EXTRA, *RAW_FEATURES, "channel"]))
            df = pl.read_parquet(path, columns=cols).filter(pl.Series(keep))
            out.sample.append(df.with_columns(usd(scale).alias("amount_usd")))


def scan_events(parts: list[Path], out: ShardScan) -> dict[str, int]:
    """Event order and the event counts the transactions must match, part by part (a flow's events are
    written together)."""
    totals: dict[str, int] = {}
    for path in parts:
        ev = pl.read_parquet(path, columns=["flow_id", "event_seq", "event_type", "ts_utc"]).sort(
            "flow_id", "event_seq"
        )
        same = ev["flow_id"].to_numpy()[1:] == ev["flow_id"].to_numpy()[:-1]
        ts = ev["ts_utc"].cast(pl.Int64).to_numpy()
        seq = ev["event_seq"].cast(pl.Int64).to_numpy()
        out.add("event_time_not_increasing", int((same & (ts[1:] <= ts[:-1])).sum()))
        out.add("event_seq_not_dense", int((same & (seq[1:] != seq[:-1] + 1)).sum()))
        per_flow = ev.group_by("flow_id", pl.col("event_type").cast(pl.String)).agg(pl.len().alias("n"))
        repeated = per_flow.filter(
            pl.col("event_type").is_in(["AUTH_REQUEST", "AUTH_RESPONSE", "CLEARING"]) & (pl.col("n") > 1)
        )
        out.add("event_repeated_per_flow", repeated.height)
        for kind, n in ev.group_by(pl.col("event_type").cast(pl.String)).agg(pl.len()).iter_rows():
            totals[kind] = totals.get(kind, 0) + int(n)
    return totals


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
