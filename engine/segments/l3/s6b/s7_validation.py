"""6B.S7 — fail closed on structure and on label-critical realism, and publish 6B's bundle (design layer2_3.md
§4.10–4.11 with the amendments of 2026-11-29; validation.yaml numbers the checks R01–R22).

Every (scenario, shard) of `transactions` and `events` was read once by 6B.S7a, which checked each batch
against the contract and folded it (s7a_shard_scan.py); S7 merges the shards' findings (scan_tables.py),
checks what crosses shards, and checks the campaign, case and plan tables whole.
Structural findings (coverage, keys, time order, clearing, truth integrity) are counts that must be 0; realism
metrics come from the pooled cube and the separability sample (separability.py). Bundle extras: summary.json,
label_stats.json, separability.json."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.core.validation import CheckBook, apply_checks, check_schemas, finish_segment, state_reports
from engine.segments.l3.s6b import label_stats
from engine.segments.l3.s6b.blocks import REISSUE_BIT
from engine.segments.l3.s6b.policy import BankView, BlockReissue
from engine.segments.l3.s6b.rng_accounting import expected_draws, matches
from engine.segments.l3.s6b.s7_scan import (
    APPROVED,
    CARD_CHANNELS,
    CATEGORICAL_FEATURES,
    CUBE_KEYS,
    DECLINED,
    NUMERIC_FEATURES,
    ShardScan,
    features_of,
    merged_counts,
)
from engine.segments.l3.s6b.scan_tables import SCAN_TABLES, ShardFindings, from_tables
from engine.segments.l3.s6b.separability import MIN_CHANNEL_POSITIVES, Features, categorical_codes, evaluate

PRODUCERS = ["6B.S1", "6B.S2", "6B.S3", "6B.S4", "6B.S5a", "6B.S5b", "6B.S5", "6B.S6", "6B.S7a"]
SCENARIO_TABLES = ["breaches", "campaigns", "campaign_targets", "inserted_flows", "account_events",
                   "card_reissues", "cases", "case_timeline"]  # fmt: skip
CHANNEL_CODES = {0: "POS", 1: "ECOM", 2: "ATM", 3: "TRANSFER"}
US_PER_H = 3_600_000_000
TACTIC_BITS = 8


def ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def shard_findings(ctx: StateContext, scenario: str, shard: int) -> ShardFindings:
    """What 6B.S7a found in one shard, from its five tables."""
    return from_tables({name: ctx.read(name, scenario=scenario, shard=shard) for name in SCAN_TABLES})


def scan_scenario(ctx: StateContext, book: CheckBook, scenario: str) -> tuple[ShardScan, dict[str, int]]:
    """All shards of one scenario folded into one ShardScan (counts add; frames are kept for merging)."""
    total = ShardScan()
    coverage = {"arrivals": 0, "inserted": 0, "flows": 0, "short": 0, "event_mismatch": 0}
    for shard in range(ctx.shards):
        found = shard_findings(ctx, scenario, shard)
        for table, err in found.verdicts.items():
            book.structural(f"schema.{table}.{scenario}.{shard}", err is None, *_failure(err))
        for k, v in found.coverage.items():
            coverage[k] += v
        merge_into(total, found.scan)
    ids = np.concatenate(total.flow_ids_nonarrival) if total.flow_ids_nonarrival else np.zeros(0, np.uint64)
    total.add("duplicate_inserted_flow_id", int(ids.size - np.unique(ids).size))
    return total, coverage


def _failure(err: EngineError | None) -> tuple[str, str]:
    return ("", "") if err is None else (err.what, err.code)


def detected_cards(ctx: StateContext, scenario: str) -> int:
    """Cards 6B.S5a found a blocking detection on (each draws one 6B.block block in S5b)."""
    found = [
        ctx.read("s5_block_candidates", scenario=scenario, shard=k).select("instrument_id")
        for k in range(ctx.shards)
    ]
    return int(pl.concat(found)["instrument_id"].n_unique())


def block_outside_policy(reissues: pl.DataFrame, policy: BlockReissue) -> int:
    """card_reissues rows off amendment 5's law: a block outside [detection + lo, detection + hi] s, a
    replacement outside [block + lo, block + hi] d, or a replacement id other than 2^40 | the card's."""
    us = {c: reissues[c].dt.epoch("us").to_numpy() for c in ("detection_ts_utc", "card_blocked_ts_utc")}
    block = us["card_blocked_ts_utc"] - us["detection_ts_utc"]
    reissue = reissues["reissue_ts_utc"].dt.epoch("us").to_numpy() - us["card_blocked_ts_utc"]
    d, r = policy.block_delay_s, policy.reissue_d
    ids = reissues["instrument_id"].to_numpy().astype(np.uint64)
    bad = (
        (block < d.lo * 1e6)
        | (block > d.hi * 1e6)
        | (reissue < r.lo * 86_400e6)
        | (reissue > r.hi * 86_400e6)
        | (reissues["new_instrument_id"].to_numpy().astype(np.uint64) != (ids | np.uint64(REISSUE_BIT)))
    )
    return int(bad.sum())


def merge_into(total: ShardScan, scan: ShardScan) -> None:
    total.rows += scan.rows
    for k, v in scan.violations.items():
        total.add(k, v)
    total.tactic_bits |= scan.tactic_bits
    for name in ("cube", "party_counts", "amounts", "sample", "campaign_flows", "flow_ids_nonarrival"):
        getattr(total, name).extend(getattr(scan, name))
    for name in ("pair_rows", "repeat_pair_rows", "sessions", "singleton_sessions", "ecom_sessions",
                 "ecom_multi_sessions"):  # fmt: skip
        setattr(total, name, getattr(total, name) + getattr(scan, name))
    for k, v in scan.origin_counts.items():
        total.origin_counts[k] = total.origin_counts.get(k, 0) + v


def stratum_violations(campaigns: pl.DataFrame, h0_us: int, horizon_us: int) -> int:
    """Instances whose start leaves their own stratum (§4.6): start_i = H0 + (i + u)/n·(horizon − d_i) with
    d_i the planned window, which is at most end − start (a campaign's end also covers its cash-out), so a
    start must lie in [i/n·(horizon − (end − start)), (i + 1)/n·horizon)."""
    if campaigns.height == 0:
        return 0
    df = campaigns.select(
        pl.col("campaign_type").cast(pl.String),
        (pl.col("campaign_id") & ((1 << 56) - 1)).cast(pl.Int64).alias("instance"),
        (pl.col("start_ts").dt.epoch("us") - h0_us).cast(pl.Float64).alias("start"),
        (pl.col("end_ts").dt.epoch("us") - pl.col("start_ts").dt.epoch("us")).cast(pl.Float64).alias("span"),
    ).with_columns(
        (pl.col("instance") - pl.col("instance").min().over("campaign_type")).cast(pl.Float64).alias("i"),
        pl.len().over("campaign_type").cast(pl.Float64).alias("n"),
    )
    lo = df["i"] / df["n"] * (horizon_us - df["span"]).clip(lower_bound=0.0)
    hi = (df["i"] + 1) / df["n"] * horizon_us
    return int(((df["start"] < lo - 1.0) | (df["start"] >= hi)).sum())


def realism_metrics(
    cube: pl.DataFrame,
    scans: list[ShardScan],
    sep: dict[str, Any],
    campaigns: pl.DataFrame,
    cases: pl.DataFrame,
    pol: Any,
) -> dict[str, tuple[float, int]]:
    """(value, support) per metric of validation.yaml, from the pooled cube and sample."""
    m: dict[str, tuple[float, int]] = {}
    n = int(cube["n"].sum())
    bad = cube.filter(pl.col("truth_label") != "LEGIT")
    fa = int(bad["n"].sum())
    lo, hi = pol.fraud_rate_band
    rate = ratio(fa, n)
    m["fraud_abuse_share_in_band"] = (float(lo <= rate <= hi), n)
    m["min_fraud_or_abuse_flows"] = (float(min(int(cube.filter(pl.col("truth_label") == lab)["n"].sum())
                                               for lab in ("FRAUD", "ABUSE"))), n)  # fmt: skip
    m["fraud_rate_over_target"] = (ratio(rate, pol.fraud_rate_target), n)

    def share(frame: pl.DataFrame, col: str, base: str = "n") -> tuple[float, int]:
        return ratio(float(frame[col].sum()), float(frame[base].sum())), int(frame[base].sum())

    for ch in ("POS", "ECOM", "ATM", "TRANSFER"):
        sub = cube.filter(pl.col("channel") == ch)
        declined = sub.filter(pl.col("auth_decision").is_in(DECLINED))
        m[f"decline_rate_{ch.lower()}"] = (
            ratio(float(declined["n"].sum()), float(sub["n"].sum())),
            int(sub["n"].sum()),
        )
        if ch in ("POS", "ECOM"):
            xb = sub.filter(pl.col("is_cross_border"))
            m[f"cross_border_share_{ch.lower()}"] = (
                ratio(float(xb["n"].sum()), float(sub["n"].sum())),
                int(sub["n"].sum()),
            )
    ecom = cube.filter(pl.col("channel") == "ECOM")
    m["ecom_refund_rate"] = share(ecom, "refunds")
    m["reversal_rate"] = share(cube, "reversals")
    fraud = cube.filter(pl.col("truth_label") == "FRAUD")
    abuse = cube.filter(pl.col("truth_label") == "ABUSE")
    legit = cube.filter(pl.col("truth_label") == "LEGIT")
    m["detection_rate_fraud"] = share(fraud, "detected")
    m["detection_rate_abuse"] = share(abuse, "detected")
    m["bank_fraud_rate_legit"] = share(legit, "bank_fraud")
    flagged = float(cube["bank_fraud"].sum())
    m["bank_precision"] = (ratio(float(bad["bank_fraud"].sum()), flagged), int(flagged))
    card = cube.filter(pl.col("channel").is_in(CARD_CHANNELS))
    m["chargeback_share_card_flows"] = share(card, "chargebacks")
    # R19 weighs executed value, as the EBA/ECB fraud statistics its bands come from do: a declined attempt
    # (a probe, a wrong PIN) moves no money
    executed = card.filter(pl.col("auth_decision").is_in(APPROVED))
    card_fraud = executed.filter(pl.col("truth_subtype").is_in(list(pol.skew.card_fraud_subtypes)))
    cf_usd = float(card_fraud["usd"].sum())
    # a value share of campaign fraud is as steady as the number of campaigns behind it (flows of one campaign
    # are not independent: one stolen-card ring can carry a third of a world's card-fraud value), so R19a/b's
    # support is the card-fraud campaign instances
    instances = campaigns.filter(
        pl.col("campaign_type").cast(pl.String).is_in(list(pol.skew.card_fraud_subtypes))
    ).height
    m["cnp_card_fraud_value_share"] = (
        ratio(float(card_fraud.filter(pl.col("channel") == "ECOM")["usd"].sum()), cf_usd),
        instances,
    )
    m["cross_border_card_fraud_value_share"] = (
        ratio(float(card_fraud.filter(pl.col("is_cross_border"))["usd"].sum()), cf_usd),
        instances,
    )
    m["cross_border_card_value_share"] = (
        ratio(float(executed.filter(pl.col("is_cross_border"))["usd"].sum()), float(executed["usd"].sum())),
        int(executed["n"].sum()),
    )
    night, day = cube.filter(pl.col("night")), cube.filter(~pl.col("night"))
    night_rate = ratio(
        float(night.filter(pl.col("truth_label") != "LEGIT")["n"].sum()), float(night["n"].sum())
    )
    day_rate = ratio(float(day.filter(pl.col("truth_label") != "LEGIT")["n"].sum()), float(day["n"].sum()))
    m["night_fraud_rate_ratio"] = (ratio(night_rate, day_rate), fa)

    parties = merged_counts([f for s in scans for f in s.party_counts], ["party_id"])
    flows = np.sort(parties["n"].to_numpy()) if parties.height else np.zeros(0)
    if flows.size:
        p50, p99 = np.quantile(flows, [0.5, 0.99])
        top = flows[-max(1, flows.size // 100) :].sum() / flows.sum()
        m["party_flows_p99_over_p50"] = (float(p99 / p50), int(flows.size))
        m["top1pct_party_flow_share"] = (float(top), int(flows.size))
    else:
        m["party_flows_p99_over_p50"] = m["top1pct_party_flow_share"] = (float("nan"), 0)
    pair_rows = sum(s.pair_rows for s in scans)
    m["repeat_pair_flow_share"] = (ratio(sum(s.repeat_pair_rows for s in scans), pair_rows), pair_rows)
    sessions = sum(s.sessions for s in scans)
    m["singleton_session_share"] = (ratio(sum(s.singleton_sessions for s in scans), sessions), sessions)
    ecom_sessions = sum(s.ecom_sessions for s in scans)
    m["ecom_multi_flow_session_share"] = (ratio(sum(s.ecom_multi_sessions for s in scans), ecom_sessions),
                                          ecom_sessions)  # fmt: skip

    amounts = merged_counts(
        [f for s in scans for f in s.amounts], ["channel", "amount_minor", "legit", "amount_usd"]
    )
    m["distinct_amounts"] = (float(amounts["amount_minor"].n_unique()), n)
    non_atm = amounts.filter(pl.col("channel") != "ATM").group_by("amount_minor").agg(pl.col("n").sum())
    top10 = non_atm.sort("n", descending=True).head(10)["n"].sum()
    m["top10_amount_share_non_atm"] = (
        ratio(float(top10), float(non_atm["n"].sum())),
        int(non_atm["n"].sum()),
    )

    sample = sep["sample"]
    legit_s = sample.filter(pl.col("truth_label") == "LEGIT")
    no_step = legit_s.filter(
        ~pl.col("auth_decision").is_in(["CHALLENGE_PASS", "CHALLENGE_FAIL", "CHALLENGE_ABANDON"])
    )
    lat = (no_step["auth_response_ts_utc"] - no_step["ts_utc"]).dt.total_microseconds().to_numpy() / 1e6
    m["auth_latency_median_s"] = (float(np.median(lat)) if lat.size else float("nan"), int(lat.size))
    m["auth_latency_p99_s"] = (float(np.quantile(lat, 0.99)) if lat.size else float("nan"), int(lat.size))
    pos = legit_s.filter(pl.col("channel") == "POS")
    pos_amt = pos["amount_usd"].to_numpy()
    m["pos_amount_p99_over_p50"] = (
        float(np.quantile(pos_amt, 0.99) / np.quantile(pos_amt, 0.5)) if pos_amt.size else float("nan"),
        int(pos_amt.size) * 64,
    )
    cleared = pos.filter(pl.col("clearing_ts_utc").is_not_null())
    delay_h = (cleared["clearing_ts_utc"] - cleared["ts_utc"]).dt.total_microseconds().to_numpy() / US_PER_H
    m["pos_clearing_delay_median_h"] = (float(np.median(delay_h)) if delay_h.size else float("nan"),
                                        int(delay_h.size) * 64)  # fmt: skip
    bad_s = sample.filter(pl.col("truth_label") != "LEGIT")
    # the bank's own monitoring (design §4.8: a quarter at the 02:00 batch, else lognormal median 6 h);
    # customer reports and charge-offs carry the dispute and charge-off delays (R18d and label_stats)
    det = bad_s.filter(pl.col("detection_channel").cast(pl.String) == "MONITORING")
    det_h = (det["detection_ts_utc"] - det["ts_utc"]).dt.total_microseconds().to_numpy() / US_PER_H
    m["detection_delay_median_h"] = (float(np.median(det_h)) if det_h.size else float("nan"), int(det_h.size))
    disp = bad_s.filter(pl.col("dispute_ts_utc").is_not_null())
    disp_d = disp.select(
        (pl.col("dispute_ts_utc") - pl.coalesce("clearing_ts_utc", "ts_utc")).dt.total_microseconds()
    ).to_series().to_numpy() / (24 * US_PER_H)
    m["dispute_delay_median_d"] = (
        float(np.median(disp_d)) if disp_d.size else float("nan"),
        int(disp_d.size),
    )

    m["best_single_feature_auc"] = (sep["best_single_feature_auc"], sep["positives_test"])
    amount_aucs = [
        v["amount_auc"] for v in sep["by_channel"].values() if v["positives"] >= MIN_CHANNEL_POSITIVES
    ]
    m["max_amount_auc_by_channel"] = (
        max(amount_aucs) if amount_aucs else float("nan"),
        sep["positives_test"],
    )
    m["model_auc"] = (sep["model_auc"], sep["positives_test"])
    m["fraud_amount_inside_legit_share"] = inside_legit_share(sample, legit_bounds(amounts))

    if cases.height:
        m["mean_flows_per_case"] = (float(cases["n_flows"].cast(pl.Float64).mean()), cases.height)
        dur = (cases["closed_ts"] - cases["opened_ts"]).dt.total_microseconds()
        m["max_case_duration_value_share"] = (
            float(dur.value_counts()["count"].max() / cases.height),
            cases.height,
        )
    else:
        m["mean_flows_per_case"] = m["max_case_duration_value_share"] = (float("nan"), 0)
    return m


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The q-quantile of values repeated weights times (the smallest value whose cumulative share ≥ q)."""
    order = np.argsort(values, kind="mergesort")
    cum = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(int(np.searchsorted(cum, q)), values.size - 1)])


def legit_bounds(amounts: pl.DataFrame) -> dict[str, tuple[float, float]]:
    """Each channel's legit USD amount [p1, p99.5] over every flow (from the full amount frequencies)."""
    out = {}
    for ch in CHANNEL_CODES.values():
        legit = amounts.filter((pl.col("channel") == ch) & pl.col("legit"))
        if legit.height:
            usd, n = legit["amount_usd"].to_numpy(), legit["n"].to_numpy().astype(np.float64)
            out[ch] = (weighted_quantile(usd, n, 0.01), weighted_quantile(usd, n, 0.995))
    return out


def inside_legit_share(sample: pl.DataFrame, bounds: dict[str, tuple[float, float]]) -> tuple[float, int]:
    """Share of non-probe fraud amounts (USD) inside the legit [p1, p99.5] of their channel (R07c)."""
    bad = sample.filter(
        (pl.col("truth_label").cast(pl.String) != "LEGIT")
        & (pl.col("truth_subtype").cast(pl.String) != "CARD_TESTING")
        & pl.col("channel").cast(pl.String).is_in(list(bounds))
    )
    if bad.height == 0:
        return float("nan"), 0
    lo = (
        bad["channel"]
        .cast(pl.String)
        .replace_strict({k: v[0] for k, v in bounds.items()}, return_dtype=pl.Float64)
    )
    hi = (
        bad["channel"]
        .cast(pl.String)
        .replace_strict({k: v[1] for k, v in bounds.items()}, return_dtype=pl.Float64)
    )
    inside = (bad["amount_usd"] >= lo) & (bad["amount_usd"] <= hi)
    return float(inside.mean()), bad.height


def separability(sample: pl.DataFrame) -> dict[str, Any]:
    """The sample through separability.evaluate (train on even splitmix64(flow_id), test on odd)."""
    from engine.core.ids import splitmix64

    derived = features_of(sample)
    numeric = {name: np.asarray(derived[name], dtype=np.float64) for name in NUMERIC_FEATURES}
    categorical = {
        name: categorical_codes(derived[name] if name in derived else sample[name])
        for name in CATEGORICAL_FEATURES
    }
    channel = (
        sample["channel"].cast(pl.String).replace_strict({v: k for k, v in CHANNEL_CODES.items()}).to_numpy()
    )
    feat = Features(
        numeric=numeric,
        categorical=categorical,
        y=(sample["truth_label"].cast(pl.String) != "LEGIT").to_numpy(),
        fold=(splitmix64(splitmix64(sample["flow_id"].to_numpy())) % np.uint64(2)).astype(np.int64),
        channel=channel.astype(np.int64),
        log_amount=numeric["log_amount_usd"],
    )
    return evaluate(feat, CHANNEL_CODES)


def run(ctx: StateContext) -> None:
    val = ctx.policy("6B/validation.yaml")
    campaigns_pol = ctx.policy("6B/campaigns.yaml")
    bank: BankView = ctx.policy("6B/bank_view.yaml")
    horizon = ctx.policy("CFG/horizon.yaml")
    h0_us = int(horizon.start().timestamp() * 1_000_000)
    horizon_us = int(horizon.days) * 86_400_000_000
    book = CheckBook()
    scans, cubes, samples, campaign_frames, case_frames = [], [], [], [], []
    structural: dict[str, int] = {}
    coverage_total: dict[str, int] = {}
    per_scenario: dict[str, Any] = {}
    for scenario in ctx.scenarios:
        tables = {name: ctx.read(name, scenario=scenario) for name in SCENARIO_TABLES}
        check_schemas(ctx, book, tables)
        scan, coverage = scan_scenario(ctx, book, scenario)
        coverage["detected_cards"] = detected_cards(ctx, scenario)
        structural["block_outside_policy"] = structural.get("block_outside_policy", 0) + block_outside_policy(
            tables["card_reissues"], bank.block_reissue
        )
        for k, v in coverage.items():
            coverage_total[k] = coverage_total.get(k, 0) + v
        campaigns = tables["campaigns"]
        flows_per_campaign = merged_counts(scan.campaign_flows, ["campaign_id"])
        live = (
            campaigns.join(flows_per_campaign, on="campaign_id", how="inner")
            if flows_per_campaign.height
            else campaigns.head(0)
        )
        per_type = live.group_by(pl.col("campaign_type").cast(pl.String)).agg(pl.len().alias("n"))
        have = dict(per_type.iter_rows())
        enabled = campaigns_pol.types.enabled()
        structural["types_below_min_instances"] = structural.get("types_below_min_instances", 0) + sum(
            have.get(t, 0) < campaigns_pol.min_instances for t in enabled
        )
        structural["instances_outside_stratum"] = structural.get(
            "instances_outside_stratum", 0
        ) + stratum_violations(campaigns, h0_us, horizon_us)
        structural["tactics_unused"] = (
            structural.get("tactics_unused", 0) + TACTIC_BITS - bin(scan.tactic_bits).count("1")
        )
        cases = tables["cases"]
        structural["case_close_before_open"] = int((cases["closed_ts"] < cases["opened_ts"]).sum())
        for k, v in scan.violations.items():
            structural[k] = structural.get(k, 0) + v
        cube = merged_counts(scan.cube, CUBE_KEYS)
        scans.append(scan)
        cubes.append(cube)
        samples.append(pl.concat(scan.sample) if scan.sample else pl.DataFrame())
        campaign_frames.append(campaigns)
        case_frames.append(cases)
        per_scenario[scenario] = label_stats.of_scenario(cube, scan, tables, coverage)
    for key, n in sorted(structural.items()):
        if key in ("types_below_min_instances", "instances_outside_stratum", "tactics_unused"):
            continue
        book.structural(
            f"6B.R02.{key}" if "before" in key or "event" in key else f"6B.R01.{key}",
            n == 0,
            f"{n} rows",
            _code(key),
        )
    cube = merged_counts(cubes, CUBE_KEYS)
    sample = pl.concat([s for s in samples if s.height], how="vertical_relaxed")
    sep = separability(sample)
    sep["sample"] = sample
    metrics = realism_metrics(
        cube, scans, sep, pl.concat(campaign_frames), pl.concat(case_frames), campaigns_pol
    )
    del sep["sample"]
    time_bad = sum(
        v
        for k, v in structural.items()
        if "before" in k or k.startswith("event_") or k == "latency_not_positive"
    )
    truth_bad = sum(
        structural.get(k, 0)
        for k in (
            "campaign_flow_legit",
            "label_without_rule",
            "legit_with_rule",
            "campaign_source_without_id",
            "fraud_flag_mismatch",
        )
    )
    clearing_bad = sum(
        structural.get(k, 0) for k in ("cleared_not_approved", "approved_not_cleared", "cleared_without_ts")
    )
    flows = coverage_total.get("flows", 0)
    metrics["flow_label_coverage"] = (
        float(coverage_total.get("short", 0) == 0 and coverage_total.get("event_mismatch", 0) == 0),
        flows,
    )
    metrics["time_order_violations"] = (float(time_bad), flows)
    metrics["clearing_once_share"] = (float(clearing_bad == 0), flows)
    metrics["truth_integrity_violations"] = (float(truth_bad), flows)
    metrics["zero_latency_flows"] = (float(structural.get("latency_not_positive", 0)), flows)
    for key in ("types_below_min_instances", "instances_outside_stratum", "tactics_unused"):
        metrics[key] = (float(structural.get(key, 0)), flows)
    reports, recorded = state_reports(ctx, PRODUCERS)
    expected = expected_draws(recorded, {**coverage_total, "cases": sum(c.height for c in case_frames)})
    off = matches(expected, recorded)
    book.structural("6B.R22.families", not off, f"families off their accounting: {off}", "E_RNG_ACCOUNTING")
    metrics["rng_accounting"] = (float(not off), flows)
    apply_checks(book, val, metrics)
    finish_segment(
        ctx,
        book,
        {
            "rng_accounting": {"recorded": recorded, "expected": expected},
            "state_reports": reports,
            "extra": {
                "summary": json_safe(
                    label_stats.summary(per_scenario, coverage_total, campaigns_pol, metrics)
                ),
                "label_stats": json_safe(per_scenario),
                "separability": json_safe(sep),
            },
        },
    )


def json_safe(obj: Any) -> Any:
    """NaN and infinities (a statistic without support) as null, so the bundle stays canonical JSON."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _code(key: str) -> str:
    if key.startswith(("block", "card_blocked", "reissued")):
        return "E_6B_BLOCK_REISSUE"
    if "event" in key:
        return "E_6B_EVENT_ORDER"
    if "before" in key or "latency" in key:
        return "E_6B_BANK_TIME_ORDER"
    if key in ("campaign_flow_legit", "label_without_rule", "legit_with_rule", "campaign_source_without_id"):
        return "E_6B_TRUTH_UNMATCHED"
    return "E_6B_FLOW_COVERAGE"
