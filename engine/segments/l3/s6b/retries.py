"""Legit retries (amendment 8): a customer whose flow was declined for a non-fraud reason tries again. 6B.S2
decides `retry` and `retry_delay_us` per flow; 6B.S4 materialises the retry as a flow of its own.

A retry keeps the declined flow's party, account, instrument, device, IP, merchant, site or edge, session and
amount; its ts_utc is the declined flow's plus retry_delay_us; arrival_id is null, origin RETRY, attach_mode
RETRY and retry_of_flow_id names the declined flow. Its id is merchant_idx << 40 | 2^39 | 2^38 | k with k the
declined flow's arrival ordinal (< 2^38), so it depends on that flow alone, never on a shard or batch, and
cannot meet a baseline (bit 39 clear) or an inserted id (bit 38 clear). Only baseline flows without a campaign
retry: a fraudster's repeated attempt is the campaign's own flow, not a legit retry.
"""

from __future__ import annotations

import polars as pl

from engine.core.contracts import dictionary, table_schema
from engine.core.errors import EngineError

TAG = (1 << 39) | (1 << 38)
ORDINAL_BITS = 40
MAX_ORDINAL = 1 << 38
IDENTITY = ("seed", "manifest_fingerprint", "scenario_id", "shard")
# the columns a retry copies from the flow it repeats: its S1 attachment (contracts/6B.yaml s1_attachments,
# but its own id and attach mode), its merchant and placement, and its amount
COPIED = (
    "merchant_id",
    *(
        c
        for c in table_schema(dictionary()["s1_attachments"]["schema"]).columns
        if c not in (*IDENTITY, "flow_id", "attach_mode")
    ),
    "site_id",
    "edge_id",
    "legal_country_iso",
    "tzid_local",
    "amount_minor",
)


def retry_id(parent: pl.Expr) -> pl.Expr:
    """The retry's flow id from its declined baseline flow's id (same merchant_idx, same ordinal)."""
    return parent | pl.lit(TAG, pl.UInt64)  # the ordinal is < 2^38 (checked), so bits 38 and 39 are free


def retry_rows(flows: pl.DataFrame, state: str = "6B.S4") -> pl.DataFrame:
    """One row per flow that retries (retry set, no campaign): the copied columns, the new flow_id and ts_utc,
    retry_of_flow_id; the caller gives it a plan (approved) and its local time."""
    parents = flows.filter(pl.col("retry") & pl.col("campaign_id").is_null())
    if parents.height == 0:
        return parents.select("flow_id", *COPIED, "ts_utc").with_columns(
            pl.col("flow_id").alias("retry_of_flow_id")
        )
    ordinal = parents["flow_id"] & ((1 << ORDINAL_BITS) - 1)
    if int(ordinal.max()) >= MAX_ORDINAL:  # bit 39 (inserted) or 38 set: never a baseline arrival ordinal
        raise EngineError(
            "E_6B_FLOW_COVERAGE",
            "a flow to retry is not a baseline arrival (its ordinal reaches 2^38)",
            where="s2_flow_plan retry",
            fix="only baseline flows retry; rebuild 6B.S2",
            state=state,
        )
    return parents.select(
        retry_id(pl.col("flow_id")).alias("flow_id"),
        *COPIED,
        (pl.col("ts_utc") + pl.duration(microseconds=pl.col("retry_delay_us"))).alias("ts_utc"),
        pl.col("flow_id").alias("retry_of_flow_id"),
    )
