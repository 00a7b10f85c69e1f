"""label_stats.json and summary.json of 6B's bundle: what a fraud-model builder asks first about the labels —
rates by campaign type, channel and country, how often and how fast the bank learns, cross-border shares and
per-customer activity (design layer2_3.md §4.10; the issue's closing figures)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from engine.segments.l3.s6b.s7_scan import ShardScan, merged_counts

QUANTILES = (0.5, 0.9, 0.99)
US_PER_H = 3_600_000_000


def _rate(num: float, den: float) -> float | None:
    return round(num / den, 9) if den else None


def _by(cube: pl.DataFrame, key: str) -> dict[str, Any]:
    """Flows, FRAUD/ABUSE flows, their rate and value share per value of `key`."""
    g = cube.group_by(pl.col(key).cast(pl.String).fill_null("NONE")).agg(
        pl.col("n").sum(),
        pl.col("n").filter(pl.col("truth_label") != "LEGIT").sum().alias("bad"),
        pl.col("usd").sum(),
        pl.col("usd").filter(pl.col("truth_label") != "LEGIT").sum().alias("bad_usd"),
    )
    return {
        str(row[key]): {
            "flows": int(row["n"]),
            "fraud_abuse_flows": int(row["bad"]),
            "fraud_abuse_rate": _rate(row["bad"], row["n"]),
            "fraud_abuse_value_share": _rate(row["bad_usd"], row["usd"]),
        }
        for row in g.sort(key).iter_rows(named=True)
    }


def _bank(cube: pl.DataFrame) -> dict[str, Any]:
    """How much of each truth label the bank detects, disputes, charges back and finally labels fraud."""
    out = {}
    for label in ("FRAUD", "ABUSE", "LEGIT"):
        sub = cube.filter(pl.col("truth_label") == label)
        n = float(sub["n"].sum())
        out[label] = {
            "flows": int(n),
            "detection_rate": _rate(float(sub["detected"].sum()), n),
            "dispute_rate": _rate(float(sub["disputed"].sum()), n),
            "chargeback_rate": _rate(float(sub["chargebacks"].sum()), n),
            "bank_fraud_rate": _rate(float(sub["bank_fraud"].sum()), n),
        }
    return out


def delay_quantiles(sample: pl.DataFrame, column: str, since: str = "ts_utc") -> dict[str, float | None]:
    """Hours from `since` to `column` on the sample's FRAUD/ABUSE flows (all of them are in the sample)."""
    bad = sample.filter((pl.col("truth_label").cast(pl.String) != "LEGIT") & pl.col(column).is_not_null())
    if bad.height == 0:
        return {f"p{int(q * 100)}_h": None for q in QUANTILES}
    h = (bad[column] - bad[since]).dt.total_microseconds().to_numpy() / US_PER_H
    return {f"p{int(q * 100)}_h": round(float(np.quantile(h, q)), 4) for q in QUANTILES}


def of_scenario(
    cube: pl.DataFrame, scan: ShardScan, tables: dict[str, pl.DataFrame], coverage: dict[str, int]
) -> dict[str, Any]:
    sample = pl.concat(scan.sample) if scan.sample else pl.DataFrame()
    parties = merged_counts(scan.party_counts, ["party_id"])
    flows = parties["n"].to_numpy() if parties.height else np.zeros(1)
    cross = (
        cube.group_by("channel")
        .agg(pl.col("n").sum(), pl.col("n").filter(pl.col("is_cross_border")).sum().alias("xb"))
        .sort("channel")
    )
    return {
        "coverage": coverage,
        "origins": dict(sorted(scan.origin_counts.items())),
        "by_campaign_type": _by(cube, "campaign_type"),
        "by_truth_subtype": _by(cube, "truth_subtype"),
        "by_channel": _by(cube, "channel"),
        "by_cross_border": _by(cube, "is_cross_border"),
        "bank_view": _bank(cube),
        "delays": {
            "detection": delay_quantiles(sample, "detection_ts_utc"),
            "dispute": delay_quantiles(sample, "dispute_ts_utc"),
            "chargeback": delay_quantiles(sample, "chargeback_ts_utc"),
            "bank_label": delay_quantiles(sample, "bank_label_ts_utc"),
        },
        "cross_border_share_by_channel": {
            row["channel"]: _rate(row["xb"], row["n"]) for row in cross.iter_rows(named=True)
        },
        "flows_per_active_party": {
            "parties": int(parties.height),
            **{f"p{int(q * 100)}": float(np.quantile(flows, q)) for q in (0.5, 0.9, 0.99)},
            "max": int(flows.max()),
        },
        "campaigns": int(tables["campaigns"].height),
        "breaches": int(tables["breaches"].height),
        "account_events": int(tables["account_events"].height),
        "cases": int(tables["cases"].height),
    }


def summary(
    per_scenario: dict[str, Any],
    coverage: dict[str, int],
    campaigns: Any,
    metrics: dict[str, tuple[float, int]],
) -> dict[str, Any]:
    """Key figures of the world's labels, with the stated enrichment over reality (amendment 1)."""
    return {
        "flows": coverage.get("flows", 0),
        "arrivals": coverage.get("arrivals", 0),
        "inserted": coverage.get("inserted", 0),
        "fraud_rate_target": campaigns.fraud_rate_target,
        "reference_fraud_rate": campaigns.reference_fraud_rate,
        "enrichment_factor": round(campaigns.enrichment_factor, 6),
        "realised_over_target": metrics["fraud_rate_over_target"][0],
        "model_auc": metrics["model_auc"][0],
        "best_single_feature_auc": metrics["best_single_feature_auc"][0],
        "scenarios": {
            name: {
                "flows": s["coverage"]["flows"],
                "bank_view": s["bank_view"],
                "fraud_abuse_by_type": {
                    k: v["fraud_abuse_flows"] for k, v in s["by_campaign_type"].items() if k != "NONE"
                },
            }
            for name, s in per_scenario.items()
        },
    }
