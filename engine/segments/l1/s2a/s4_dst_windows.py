"""2A.S4 — the local-time windows that do not exist (gaps) or occur twice (folds), for every tzid."""

from __future__ import annotations

from engine.core.horizon import Horizon
from engine.core.state import StateContext
from engine.segments.l1.s2a.dst import dst_windows


def run(ctx: StateContext) -> None:
    horizon: Horizon = ctx.policy("CFG/horizon.yaml")
    table = ctx.read("tz_transitions", seed_free=True).drop("manifest_fingerprint")
    windows = dst_windows(table, horizon.start(), horizon.end())
    ctx.publish("tz_dst_windows", windows, seed_free=True)
    ctx.facts["windows_in_horizon"] = int(windows["in_horizon"].sum())
