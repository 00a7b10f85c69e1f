"""One shard's 6B.S7 scan as five tables and back: 6B.S7a writes them per (scenario, shard), S7 reads every
shard's and merges them. A scan needs only its shard's `transactions` and `events`, so it runs as soon as that
shard's S5 is done, beside the shards still in S5; S7 is left with the merge, the cross-shard checks and the
separability model (design §4.10; the split into S7a and S7 is the engine's, the checks are the design's).

- `s7_scan_measures`: every count of the scan, one row each (`measure`, `value`), and the contract verdict of
  each consumer table (`schema:<table>`, 1 with the error's code and text when it failed);
- `s7_scan_cube`: the label/channel cube (s7_scan.CUBE_KEYS);
- `s7_scan_keys`: flows per party, per campaign, and per flow id that is not an arrival's (S7 counts the
  repeats across shards);
- `s7_scan_amounts`: flows per (channel, amount, legit, USD amount);
- `s7_scan_sample`: the separability sample's rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from engine.core.contracts import dictionary, table_schema
from engine.core.errors import EngineError
from engine.segments.l3.s6b.s7_scan import AMOUNT_KEYS, CUBE_KEYS, ShardScan

SCAN_TABLES = ("s7_scan_sample", "s7_scan_cube", "s7_scan_keys", "s7_scan_amounts", "s7_scan_measures")
IDENTITY = ["seed", "manifest_fingerprint", "scenario_id", "shard"]
TOTALS = (
    "rows",
    "tactic_bits",
    "pair_rows",
    "repeat_pair_rows",
    "sessions",
    "singleton_sessions",
    "ecom_sessions",
    "ecom_multi_sessions",
)
KEY_KINDS = pl.Enum(["PARTY", "CAMPAIGN", "NONARRIVAL_FLOW"])
CHECKED = ("transactions", "events")


@dataclass
class ShardFindings:
    """What one shard's scan found: the folded scan, its coverage counts (arrivals, inserted, flows, short,
    event_mismatch) and each consumer table's contract verdict (None: it passed)."""

    scan: ShardScan
    coverage: dict[str, int] = field(default_factory=dict)
    verdicts: dict[str, EngineError | None] = field(default_factory=dict)


def to_tables(found: ShardFindings) -> dict[str, pl.DataFrame]:
    """The five tables, rows in a fixed order (keys sorted, the sample in stream order)."""
    scan = found.scan
    return {
        "s7_scan_sample": pl.concat(scan.sample) if scan.sample else empty("s7_scan_sample"),
        "s7_scan_cube": _counts(scan.cube, CUBE_KEYS, "s7_scan_cube"),
        "s7_scan_keys": _keys(scan),
        "s7_scan_amounts": _counts(scan.amounts, AMOUNT_KEYS, "s7_scan_amounts"),
        "s7_scan_measures": _measures(found),
    }


def from_tables(tables: dict[str, pl.DataFrame]) -> ShardFindings:
    """The findings back from the tables `to_tables` wrote (identity columns may still be on them)."""
    t = {name: df.drop([c for c in IDENTITY if c in df.columns]) for name, df in tables.items()}
    scan = ShardScan()
    found = ShardFindings(scan)
    for measure, value, code, detail in t["s7_scan_measures"].iter_rows():
        kind, _, name = measure.partition(":")
        if kind == "total":
            setattr(scan, name, int(value))
        elif kind == "violation":
            scan.violations[name] = int(value)
        elif kind == "origin":
            scan.origin_counts[name] = int(value)
        elif kind == "coverage":
            found.coverage[name] = int(value)
        elif kind == "schema":
            found.verdicts[name] = EngineError(code, detail) if value else None
    scan.cube = [t["s7_scan_cube"]]
    scan.amounts = [t["s7_scan_amounts"]]
    sample = t["s7_scan_sample"]
    scan.sample = [sample] if sample.height else []
    keys = t["s7_scan_keys"]
    per_kind = {kind: keys.filter(pl.col("kind") == kind) for kind in KEY_KINDS.categories}
    scan.party_counts = [per_kind["PARTY"].select(pl.col("key_id").alias("party_id"), "n")]
    scan.campaign_flows = [per_kind["CAMPAIGN"].select(pl.col("key_id").alias("campaign_id"), "n")]
    repeats = per_kind["NONARRIVAL_FLOW"]
    scan.flow_ids_nonarrival = [np.repeat(repeats["key_id"].to_numpy(), repeats["n"].to_numpy())]
    return found


def empty(dataset: str) -> pl.DataFrame:
    """No rows, in the contract's columns and types (an empty shard's tables)."""
    schema = table_schema(dictionary()[dataset]["schema"]).polars_schema()
    return pl.DataFrame(schema={c: t for c, t in schema.items() if c not in IDENTITY})


def _counts(frames: list[pl.DataFrame], keys: list[str], dataset: str) -> pl.DataFrame:
    """Partial count frames summed by key, every count as Int64, sorted by the keys (nulls first)."""
    if not frames:
        return empty(dataset)
    both = pl.concat(frames)
    values = [c for c in both.columns if c not in keys]
    summed = both.group_by(keys).agg(pl.col(c).cast(pl.Int64).sum() for c in values)
    return summed.sort(keys, nulls_last=False)


def _keys(scan: ShardScan) -> pl.DataFrame:
    ids = np.concatenate(scan.flow_ids_nonarrival) if scan.flow_ids_nonarrival else np.zeros(0, np.uint64)
    nonarrival = pl.DataFrame({"key_id": ids.astype(np.uint64)}).group_by("key_id").agg(pl.len().alias("n"))
    parts = [
        ("PARTY", [f.rename({"party_id": "key_id"}) for f in scan.party_counts]),
        ("CAMPAIGN", [f.rename({"campaign_id": "key_id"}) for f in scan.campaign_flows]),
        ("NONARRIVAL_FLOW", [nonarrival]),
    ]
    frames = [
        df.select(
            pl.lit(kind, dtype=KEY_KINDS).alias("kind"),
            pl.col("key_id").cast(pl.UInt64),
            pl.col("n").cast(pl.Int64),
        )
        for kind, dfs in parts
        for df in dfs
    ]
    return pl.concat(frames).sort("kind", "key_id")


def _measures(found: ShardFindings) -> pl.DataFrame:
    scan = found.scan
    rows: list[tuple[str, int, str | None, str | None]] = [
        (f"total:{name}", int(getattr(scan, name)), None, None) for name in TOTALS
    ]
    rows += [(f"violation:{k}", v, None, None) for k, v in sorted(scan.violations.items())]
    rows += [(f"origin:{k}", v, None, None) for k, v in sorted(scan.origin_counts.items())]
    rows += [(f"coverage:{k}", v, None, None) for k, v in sorted(found.coverage.items())]
    for table in CHECKED:
        err = found.verdicts.get(table)
        rows.append((f"schema:{table}", int(err is not None), err and err.code, err and err.what))
    return pl.DataFrame(
        rows,
        schema={"measure": pl.String, "value": pl.Int64, "code": pl.String, "detail": pl.String},
        orient="row",
    )
