"""2B.S5 — ready-to-decode group tables per (merchant, day), so 5B never rebuilds one per arrival."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.canonical import canonical_json_bytes
from engine.core.state import StateContext
from engine.kernels.alias_blob import write_day_blocks
from engine.segments.l1.alias_layout import AliasLayoutPolicy
from engine.segments.l1.s2b.common import GROUP_ALIAS, publish_files


def day_blocks(mix: pl.DataFrame) -> list[tuple[dict[str, int], list[int], np.ndarray]]:
    """Per merchant: its key, tz_indexes (ascending) and p_group as [days, groups]."""
    items = []
    mix = mix.sort("merchant_id", "day_index", "tz_index")
    for (mid,), grp in mix.group_by(["merchant_id"], maintain_order=True):
        tz = np.unique(grp["tz_index"].to_numpy())
        p = grp["p_group"].to_numpy().reshape(-1, tz.size)
        items.append(({"merchant_id": int(mid)}, [int(t) for t in tz], p))
    return items


def run(ctx: StateContext) -> None:
    layout = ctx.policy("2B/alias_layout.yaml")
    assert isinstance(layout, AliasLayoutPolicy)
    items = day_blocks(ctx.read("s4_group_weights").select("merchant_id", "day_index", "tz_index", "p_group"))
    ctx.progress(f"encoding group tables of {len(items)} merchants")
    blob, index, _ = write_day_blocks(items, layout.layout())
    _, blob_name, index_name = GROUP_ALIAS
    n_slices = sum(p.shape[0] for _, _, p in items)
    publish_files(
        ctx,
        GROUP_ALIAS[0],
        {blob_name: blob, index_name: canonical_json_bytes(index)},
        {blob_name: n_slices, index_name: len(items)},
    )
    ctx.facts["merchants"] = len(items)
    ctx.facts["blob_bytes"] = len(blob)
