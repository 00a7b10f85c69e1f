"""3B.S3 — one alias slice per virtual or hybrid merchant over its edges (edge_id order), in 2B's binary
layout through the shared writer, audited by the shared independent auditor before anything is published."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.alias_blob import AliasLayout, audit_slices, write_slices
from engine.segments.l1.alias_layout import AliasLayoutPolicy
from engine.segments.l1.s3b.files import edge_universe, publish_file


def audit(
    blob: bytes, index: dict[str, Any], layout: AliasLayout, masses: list[np.ndarray] | None, state: str
) -> list[np.ndarray]:
    """The shared auditor; a header at odds with 3B's alias_layout.yaml is 3B's own E_3B_ALIAS_HEADER."""
    try:
        return audit_slices(blob, index, layout, masses, where="edge_alias.bin")
    except EngineError as err:
        if err.code != "E_2B_ALIAS_HEADER":
            raise
        raise EngineError(
            "E_3B_ALIAS_HEADER",
            err.what,
            where=err.where,
            fix="rebuild the edge alias tables under 3B's alias_layout.yaml",
            state=state,
        ) from err


def run(ctx: StateContext) -> None:
    layout = ctx.policy("3B/alias_layout.yaml")
    assert isinstance(layout, AliasLayoutPolicy)
    lay = layout.layout()
    edges = ctx.read("edge_catalogue").sort("merchant_id", "edge_id")
    ctx.read("virtual_settlement")  # digest-checked before its sha256 enters the universe hash
    groups = edges.group_by("merchant_id", maintain_order=True).agg("edge_id", "edge_weight")
    items = [
        ({"merchant_id": m}, np.asarray(w, dtype=np.float64))
        for m, w in zip(groups["merchant_id"].to_list(), groups["edge_weight"].to_list(), strict=True)
    ]
    blob, index, masses = write_slices(items, lay)
    audit(blob, index, lay, masses, ctx.state)
    members = pl.DataFrame(
        {
            "merchant_id": pl.Series(
                np.repeat(groups["merchant_id"].to_numpy(), [m.size for m in masses]), dtype=pl.UInt64
            ),
            "member_index": pl.Series(np.concatenate([np.arange(m.size) for m in masses]), dtype=pl.UInt32),
            "edge_id": pl.Series(groups["edge_id"].explode().to_numpy(), dtype=pl.UInt64),
            "mass": pl.Series(np.concatenate(masses), dtype=pl.UInt32),
        }
    )
    ctx.publish("s3_edge_alias_members", members)
    index_bytes = publish_file(ctx, "edge_alias_index.json", index).read_bytes()
    publish_file(ctx, "edge_alias.bin", blob)
    digests, universe = edge_universe(ctx, blob, index_bytes)
    publish_file(
        ctx,
        "edge_universe.json",
        {
            "parameter_hash": ctx.sealed.parameter_hash,
            "sha256": digests,
            "universe_hash": universe,
            "slices": len(items),
        },
    )
    ctx.facts["slices"] = len(items)
