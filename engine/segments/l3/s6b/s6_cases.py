"""6B.S6 — cases (design §4.9): the bank's investigations of one account, across merchants and shards.

The case triggers of every shard (6B.S5's s5_case_triggers), sorted by (account_id, trigger_ts, flow_id,
trigger_type), open a case at the first trigger when none is open; triggers within `join_window_h` of the
opening join it, up to `max_flows_per_case` distinct flows, after which the next trigger opens a new case.
case_id = account_id << 16 | case_index. A case's timeline: CASE_OPENED at its first trigger, one event per
trigger (DETECTION_ATTACHED for detections at auth or later and charge-offs, DISPUTE_FILED for disputes), the
chargeback of a disputed member flow (CHARGEBACK_RAISED, CHARGEBACK_DECIDED from the flow's transactions row),
then CASE_CLOSED at the latest of those times and the member resolutions plus a gamma(shape, scale) delay
clipped to `close_delay_d.clip` (RNG family `6B.case`, counter ⟨account_id, case_index, 0, d⟩, a
Marsaglia–Tsang lane stream over d). A case is CONFIRMED_FRAUD when any member's bank label is fraud
(CHARGEBACK_FRAUD, CONFIRMED_FRAUD), else CLEARED; n_truth_fraud counts its member flows with
is_fraud_truth."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels import njit, prange
from engine.kernels.philox import stream_blocks, stream_draws, stream_new
from engine.kernels.samplers import check_sampler_bound, gamma
from engine.segments.l3.s6b.policy import Cases

STATE = "6B.S6"
US = 1_000_000
DAY_US = 86_400 * US
BLOCK_WORD = 3
MAX_CASES_PER_ACCOUNT = 1 << 16
EVENT_TYPES = (
    "CASE_OPENED",
    "DETECTION_ATTACHED",
    "DISPUTE_FILED",
    "CHARGEBACK_RAISED",
    "CHARGEBACK_DECIDED",
    "CASE_CLOSED",
)
EVENT = pl.Enum(list(EVENT_TYPES))
TRIGGER_EVENT = {
    "AUTH_DECLINE_FRAUD": "DETECTION_ATTACHED",
    "CHALLENGE_FAILED": "DETECTION_ATTACHED",
    "DETECTION": "DETECTION_ATTACHED",
    "CHARGE_OFF": "DETECTION_ATTACHED",
    "DISPUTE": "DISPUTE_FILED",
}
FRAUD_LABELS = ("CHARGEBACK_FRAUD", "CONFIRMED_FRAUD")
OUTCOME = pl.Enum(["CONFIRMED_FRAUD", "CLEARED"])
TS = pl.Datetime("us", "UTC")


@njit(cache=True, nogil=True)
def _group(account, ts, previous, window_us, max_flows):  # type: ignore[no-untyped-def]
    """Case index of each trigger (sorted by account, time, flow): a new case at an account's first trigger,
    past the window from the case's opening, or when a new flow would exceed max_flows; `previous` is the
    position of the same flow's earlier trigger (−1 if none), which joins without counting again."""
    n = account.shape[0]
    case = np.empty(n, dtype=np.int64)
    current = -1
    opened = 0
    flows = 0
    for i in range(n):
        repeat = previous[i] >= 0 and case[previous[i]] == current and account[previous[i]] == account[i]
        first = i == 0 or account[i] != account[i - 1]
        if first:
            current = -1
        if first or ts[i] - opened > window_us or (not repeat and flows >= max_flows):
            current += 1
            opened = ts[i]
            flows = 0
            repeat = False
        if not repeat:
            flows += 1
        case[i] = current
    return case


def group_cases(triggers: pl.DataFrame, policy: Cases) -> pl.DataFrame:
    """The triggers sorted by (account_id, trigger_ts, flow_id, trigger_type) with their case_index."""
    ordered = triggers.sort("account_id", "trigger_ts", "flow_id", pl.col("trigger_type").cast(pl.String))
    previous = ordered.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_pos"), "account_id", "flow_id"
    ).select(pl.col("_pos").shift(1).over("account_id", "flow_id").fill_null(-1))
    case = _group(
        ordered["account_id"].to_numpy(),
        ordered["trigger_ts"].dt.epoch("us").to_numpy(),
        previous.to_series().to_numpy(),
        np.int64(policy.join_window_h) * 3600 * US,
        np.int64(policy.max_flows_per_case),
    )
    if case.size and int(case.max()) >= MAX_CASES_PER_ACCOUNT:
        raise inconsistent(f"an account opens {int(case.max()) + 1} cases, above 2^16 (case_id's index bits)")
    return ordered.with_columns(pl.Series("case_index", case, dtype=pl.UInt64))


@njit(cache=True, nogil=True, parallel=True)
def _delays(k0, k1, account, index, shape, scale_us, lo_us, hi_us, out, draws, blocks):  # type: ignore[no-untyped-def]
    for i in prange(account.shape[0]):
        st = stream_new(k0, k1, account[i], index[i], np.uint64(0), np.uint64(0), BLOCK_WORD)
        g = gamma(st, shape)
        out[i] = g if np.isnan(g) else min(max(g * scale_us, lo_us), hi_us)
        draws[i] = stream_draws(st)
        blocks[i] = stream_blocks(st)


def close_delays(
    key: tuple[int, int], account: np.ndarray, index: np.ndarray, policy: Cases
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Close delay (µs) of each case with the lanes and blocks it consumed."""
    n = account.size
    out, draws, blocks = np.empty(n), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    spec = policy.close_delay_d
    _delays(
        np.uint64(key[0]),
        np.uint64(key[1]),
        np.ascontiguousarray(account, dtype=np.uint64),
        np.ascontiguousarray(index, dtype=np.uint64),
        float(spec.shape),
        float(spec.scale) * DAY_US,
        float(spec.clip[0]) * DAY_US,
        float(spec.clip[1]) * DAY_US,
        out,
        draws,
        blocks,
    )
    check_sampler_bound(np.isnan(out), "6B.case", state=STATE)
    return np.round(out).astype(np.int64), draws, blocks


def build_cases(
    triggers: pl.DataFrame, flows: pl.DataFrame, policy: Cases, delay_of: object
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """cases, case_timeline and the grouped triggers. `flows` holds the member flows' flow_id,
    is_fraud_truth, chargeback_ts_utc, chargeback_outcome_ts_utc; `delay_of(account_id, case_index)` returns
    each case's close delay in µs."""
    grouped = group_cases(triggers, policy).with_columns(
        (pl.col("account_id") * MAX_CASES_PER_ACCOUNT + pl.col("case_index")).alias("case_id")
    )
    member = grouped.select("case_id", "flow_id").unique().join(flows, on="flow_id", how="left")
    chargebacks = (
        grouped.filter(pl.col("trigger_type").cast(pl.String) == "DISPUTE")
        .select("case_id", "flow_id")
        .unique()
        .join(flows.filter(pl.col("chargeback_ts_utc").is_not_null()), on="flow_id", how="inner")
    )
    events = pl.concat(
        [
            grouped.select(
                "case_id",
                pl.col("trigger_type").cast(pl.String).replace_strict(TRIGGER_EVENT).alias("event_type"),
                pl.col("trigger_ts").alias("ts_utc"),
                "flow_id",
            ),
            chargebacks.select(
                "case_id",
                pl.lit("CHARGEBACK_RAISED").alias("event_type"),
                pl.col("chargeback_ts_utc").alias("ts_utc"),
                "flow_id",
            ),
            chargebacks.filter(pl.col("chargeback_outcome_ts_utc").is_not_null()).select(
                "case_id",
                pl.lit("CHARGEBACK_DECIDED").alias("event_type"),
                pl.col("chargeback_outcome_ts_utc").alias("ts_utc"),
                "flow_id",
            ),
        ]
    )
    cases = grouped.group_by("case_id").agg(
        pl.col("account_id").first(),
        pl.col("party_id").first(),
        pl.col("case_index").first(),
        pl.col("trigger_ts").min().alias("opened_ts"),
        pl.col("flow_id").first().alias("first_flow"),
        pl.col("resolution_ts").max().alias("_resolved"),
        pl.col("bank_label").cast(pl.String).is_in(FRAUD_LABELS).any().alias("_fraud"),
    )
    counts = member.group_by("case_id").agg(
        pl.len().cast(pl.UInt32).alias("n_flows"),
        pl.col("is_fraud_truth").fill_null(False).sum().cast(pl.UInt32).alias("n_truth_fraud"),
    )
    last_event = events.group_by("case_id").agg(pl.col("ts_utc").max().alias("_last"))
    cases = cases.join(counts, on="case_id").join(last_event, on="case_id").sort("case_id")
    delay = np.asarray(
        delay_of(cases["account_id"].to_numpy(), cases["case_index"].to_numpy()), dtype=np.int64
    )
    cases = cases.with_columns(
        (
            pl.max_horizontal("_resolved", "_last", "opened_ts") + pl.duration(microseconds=pl.Series(delay))
        ).alias("closed_ts"),
        pl.when(pl.col("_fraud"))
        .then(pl.lit("CONFIRMED_FRAUD"))
        .otherwise(pl.lit("CLEARED"))
        .cast(OUTCOME)
        .alias("outcome"),
    )
    timeline = pl.concat(
        [
            cases.select(
                "case_id",
                pl.lit("CASE_OPENED").alias("event_type"),
                pl.col("opened_ts").alias("ts_utc"),
                pl.col("first_flow").alias("flow_id"),
            ),
            events,
            cases.select(
                "case_id",
                pl.lit("CASE_CLOSED").alias("event_type"),
                pl.col("closed_ts").alias("ts_utc"),
                pl.lit(None, pl.UInt64).alias("flow_id"),
            ),
        ]
    ).with_columns(pl.col("event_type").cast(EVENT))
    timeline = timeline.sort(
        "case_id", "ts_utc", pl.col("event_type").to_physical(), "flow_id", nulls_last=True
    )
    timeline = timeline.with_columns(
        pl.int_range(pl.len(), dtype=pl.UInt16).over("case_id").alias("case_event_seq")
    ).select("case_id", "case_event_seq", "event_type", "ts_utc", "flow_id")
    out = cases.select(
        "case_id", "account_id", "party_id", "opened_ts", "closed_ts", "n_flows", "n_truth_fraud", "outcome"
    )
    check(out, timeline, grouped, triggers.height)
    return out, timeline, grouped


def check(cases: pl.DataFrame, timeline: pl.DataFrame, grouped: pl.DataFrame, triggers: int) -> None:
    """E_6B_CASE_INCONSISTENT: every trigger in exactly one case; close ≥ open; event times non-decreasing
    in case_event_seq; each case opens first and closes last."""
    if grouped.height != triggers or grouped["case_id"].null_count():
        raise inconsistent(f"{triggers} triggers but {grouped.height} grouped")
    if (cases["closed_ts"] < cases["opened_ts"]).any():
        raise inconsistent("a case closes before it opens")
    steps = timeline.select(
        (pl.col("ts_utc").diff().over("case_id") < pl.duration(microseconds=0)).any().alias("back"),
        (pl.col("event_type").first().over("case_id") != "CASE_OPENED").any().alias("open"),
        (pl.col("event_type").last().over("case_id") != "CASE_CLOSED").any().alias("close"),
    )
    bad = [name for name, v in steps.row(0, named=True).items() if v]
    if bad:
        raise inconsistent(f"case timelines fail: {', '.join(bad)}")


def inconsistent(what: str) -> EngineError:
    return EngineError(
        "E_6B_CASE_INCONSISTENT",
        what,
        where="6B cases / case_timeline",
        fix="rerun 6B.S5 and 6B.S6",
        state=STATE,
    )


def member_flows(ctx: StateContext, ids: pl.Series) -> pl.DataFrame:
    """is_fraud_truth and the chargeback times of the trigger flows, from every shard's transactions."""
    frames = []
    wanted = ids.unique().implode()
    for shard in range(ctx.shards):
        paths = ctx.part_files("transactions", scenario=ctx.scenario, shard=shard)
        frames.append(
            pl.scan_parquet(paths)
            .filter(pl.col("flow_id").is_in(wanted))
            .select("flow_id", "is_fraud_truth", "chargeback_ts_utc", "chargeback_outcome_ts_utc")
            .collect()
        )
    return pl.concat(frames)


def run(ctx: StateContext) -> None:
    assert ctx.scenario is not None
    policy: Cases = ctx.policy("6B/cases.yaml")
    triggers = pl.concat(
        [ctx.read("s5_case_triggers", scenario=ctx.scenario, shard=k) for k in range(ctx.shards)]
    ).select("flow_id", "account_id", "party_id", "trigger_type", "trigger_ts", "resolution_ts", "bank_label")
    key = ctx.family_key("case")

    def delay_of(account: np.ndarray, index: np.ndarray) -> np.ndarray:
        delay, draws, blocks = close_delays(key, account, index, policy)
        ctx.record_draws("case", (account, index, 0, 0), draws=draws, blocks=blocks, value=delay)
        return delay

    cases, timeline, _ = build_cases(triggers, member_flows(ctx, triggers["flow_id"]), policy, delay_of)
    ctx.publish("cases", cases)
    ctx.publish("case_timeline", timeline)
    ctx.facts.update(
        {
            "triggers": triggers.height,
            "cases": cases.height,
            "case_events": timeline.height,
            "confirmed_fraud_cases": int((cases["outcome"] == "CONFIRMED_FRAUD").sum()),
            "mean_flows_per_case": round(float(cases["n_flows"].mean() or 0.0), 4),
        }
    )
