"""The router over 2B's published alias tables (S6)."""

from __future__ import annotations

import json

from engine.core.state import StateContext
from engine.kernels.router import RouterTables, load_router
from engine.segments.l1.alias_layout import AliasLayoutPolicy
from engine.segments.l1.s2b.common import GROUP_ALIAS, SITE_ALIAS, partition_dir, read_file


def router_of(ctx: StateContext) -> RouterTables:
    """The router over this world's site and group tables (digests and headers checked at load)."""
    layout = ctx.policy("2B/alias_layout.yaml")
    assert isinstance(layout, AliasLayoutPolicy)
    members = ctx.read("s2_site_alias_members").sort("merchant_id", "tz_index", "member_index")
    site_dir = partition_dir(ctx.root, SITE_ALIAS[0], ctx.mf, ctx.seed)
    group_dir = partition_dir(ctx.root, GROUP_ALIAS[0], ctx.mf, ctx.seed)
    return load_router(
        json.loads(read_file(ctx, SITE_ALIAS[0], SITE_ALIAS[2])),  # digest-checked; the blob against it
        site_dir / SITE_ALIAS[1],
        members["site_id"].to_numpy(),
        json.loads(read_file(ctx, GROUP_ALIAS[0], GROUP_ALIAS[2])),
        group_dir / GROUP_ALIAS[1],
        layout.layout(),
    )
