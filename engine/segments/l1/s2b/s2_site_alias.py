"""2B.S2 — one exact alias table per (merchant, tz group) over the group's sites, in the binary layout."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.canonical import canonical_json_bytes
from engine.core.state import StateContext
from engine.kernels.alias_blob import write_slices
from engine.segments.l1.alias_layout import AliasLayoutPolicy
from engine.segments.l1.s2b.common import SITE_ALIAS, publish_files, tzids_of


def run(ctx: StateContext) -> None:
    layout = ctx.policy("2B/alias_layout.yaml")
    assert isinstance(layout, AliasLayoutPolicy)
    w = ctx.read("s1_site_weights").sort("merchant_id", "tz_index", "site_id")
    tzid = tzids_of(ctx)
    groups = w.group_by("merchant_id", "tz_index", maintain_order=True).agg("site_id", "p_weight")
    items = [
        ({"merchant_id": m, "tz_index": t, "tzid": tzid[t]}, np.asarray(p, dtype=np.float64))
        for m, t, _, p in groups.iter_rows()
    ]
    ctx.progress(f"encoding {len(items)} site slices over {w.height} sites")
    blob, index, masses = write_slices(items, layout.layout())
    members = groups.select(
        "merchant_id",
        "tz_index",
        pl.col("site_id"),
        pl.int_ranges(pl.col("site_id").list.len()).alias("member_index"),
    ).explode("site_id", "member_index")
    members = members.with_columns(
        pl.col("member_index").cast(pl.UInt32),
        pl.Series("mass", np.concatenate(masses).astype(np.uint32)),
    ).select("merchant_id", "tz_index", "member_index", "site_id", "mass")
    _, blob_name, index_name = SITE_ALIAS
    publish_files(
        ctx,
        SITE_ALIAS[0],
        {blob_name: blob, index_name: canonical_json_bytes(index)},
        {blob_name: len(items), index_name: len(items)},
    )
    ctx.publish("s2_site_alias_members", members)
    ctx.facts["slices"] = len(items)
    ctx.facts["blob_bytes"] = len(blob)
