"""2B.S7 — an independent audit of every alias table against the policy and the data it was built from.

The auditor (engine/kernels/alias_blob.py) re-parses the bytes with numpy and decodes each slice back to
masses by its own arithmetic. Findings are recorded, not raised: S8 refuses the flag on any of them, and
the evidence says which table failed and why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.horizon import Horizon
from engine.core.state import StateContext
from engine.kernels.alias import integer_masses
from engine.kernels.alias_blob import audit_day_blocks, audit_slices
from engine.segments.l1.alias_layout import AliasLayoutPolicy
from engine.segments.l1.s2b.common import GROUP_ALIAS, SITE_ALIAS, publish_json, table_files

P_GROUP_TOLERANCE = 1e-12


class Findings:
    """Each audit check's outcome: ok, or the engine code and one line of why."""

    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []

    def run(self, check_id: str, fn: Callable[[], str | None]) -> None:
        try:
            problem = fn()
        except EngineError as err:
            self.checks.append({"id": check_id, "ok": False, "code": err.code, "detail": err.what})
            return
        self.checks.append(
            {
                "id": check_id,
                "ok": problem is None,
                "code": "" if problem is None else "E_2B_AUDIT",
                "detail": problem or "",
            }
        )


def site_masses(members: pl.DataFrame) -> list[np.ndarray]:
    """The members' masses per slice, in (merchant_id, tz_index) slice order."""
    grouped = members.sort("merchant_id", "tz_index", "member_index").group_by(
        "merchant_id", "tz_index", maintain_order=True
    )
    return [np.asarray(m, dtype=np.int64) for m in grouped.agg("mass")["mass"].to_list()]


def recomputed_p_group(weights: pl.DataFrame, effects: pl.DataFrame) -> pl.DataFrame:
    """base·γ/Σ from S1 and S3 directly, summed in numpy (not S4's code path)."""
    w = weights.sort("merchant_id", "tz_index", "site_id")
    keys = w.select("merchant_id", "tz_index").to_numpy()
    starts = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]).any(axis=1)])
    base = np.add.reduceat(w["p_weight"].to_numpy(), starts)
    groups = pl.DataFrame({"merchant_id": keys[starts, 0], "tz_index": keys[starts, 1], "base": base}).cast(
        {"merchant_id": pl.UInt64, "tz_index": pl.UInt16}
    )
    e = effects.join(groups, on=["merchant_id", "tz_index"]).sort("merchant_id", "day_index", "tz_index")
    bg = e["base"].to_numpy() * e["gamma"].to_numpy()
    md = e.select("merchant_id", "day_index").to_numpy()
    starts = np.flatnonzero(np.r_[True, (md[1:] != md[:-1]).any(axis=1)])
    sums = np.add.reduceat(bg, starts)
    total = np.repeat(sums, np.diff(np.r_[starts, bg.size]))
    return e.select("merchant_id", "day_index", "tz_index").with_columns(pl.Series("p_again", bg / total))


def run(ctx: StateContext) -> None:
    layout_policy = ctx.policy("2B/alias_layout.yaml")
    assert isinstance(layout_policy, AliasLayoutPolicy)
    layout = layout_policy.layout()
    horizon: Horizon = ctx.policy("CFG/horizon.yaml")
    members = ctx.read("s2_site_alias_members")
    weights = ctx.read("s1_site_weights")
    mix = ctx.read("s4_group_weights").sort("merchant_id", "day_index", "tz_index")
    site_blob, site_index = table_files(ctx, SITE_ALIAS)
    group_blob, group_index = table_files(ctx, GROUP_ALIAS)
    found = Findings()

    def site_tables() -> str | None:
        expected = site_masses(members)
        if len(expected) != len(site_index["slices"]):
            return f"{len(site_index['slices'])} slices for {len(expected)} member groups"
        for s, m in zip(site_index["slices"], expected, strict=True):
            if int(s["n"]) != m.size:
                return f"slice of merchant {s['merchant_id']} has n={s['n']}, members {m.size}"
        audit_slices(site_blob, site_index, layout, expected, "site_alias.bin")
        return None

    def p_group() -> str | None:
        again = recomputed_p_group(weights, ctx.read("s3_day_effects"))
        joined = mix.join(again, on=["merchant_id", "day_index", "tz_index"], how="full", coalesce=True)
        if joined["p_group"].null_count() or joined["p_again"].null_count():
            return "s4_group_weights and base·γ cover different (merchant, day, group) rows"
        worst = float((joined["p_group"] - joined["p_again"]).abs().max())
        return None if worst <= P_GROUP_TOLERANCE else f"p_group differs from base·γ/Σ by {worst:.3g}"

    def group_tables() -> str | None:
        merchants = sorted(int(m) for m in weights["merchant_id"].unique())
        indexed = [int(m["merchant_id"]) for m in group_index["merchants"]]
        if indexed != merchants:
            return f"{len(indexed)} merchants with group tables, {len(merchants)} with sites"
        if any(int(m["days"]) != horizon.days for m in group_index["merchants"]):
            return "a merchant's group tables do not cover every horizon day"
        expected = []
        for m, (_, grp) in zip(
            group_index["merchants"], mix.group_by(["merchant_id"], maintain_order=True), strict=True
        ):
            tz = sorted(set(grp["tz_index"].to_list()))
            if m["tz_indexes"] != tz:
                return f"merchant {m['merchant_id']} indexes groups {m['tz_indexes']}, has {tz}"
            p = grp["p_group"].to_numpy().reshape(-1, len(tz))
            expected.append(np.array([integer_masses(row, layout.mass_bits) for row in p], dtype=np.int64))
        audit_day_blocks(group_blob, group_index, layout, expected, "group_alias.bin")
        return None

    found.run("site_tables", site_tables)
    found.run("p_group", p_group)
    found.run("group_tables", group_tables)
    failures = [c for c in found.checks if not c["ok"]]
    publish_json(ctx, "s7_audit", {"checks": found.checks, "failures": len(failures)})
    ctx.facts["audit_failures"] = len(failures)
