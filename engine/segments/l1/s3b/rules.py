"""3B's classification rules as one vectorised first-match pass, and the gate's reachability check."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.segments.l1.s3b.policy import Rule, VirtualRules

CHANNELS = ("card_present", "card_not_present")


def rule_mask(rule: Rule, merchants: pl.DataFrame) -> np.ndarray:
    """Which merchants (columns sector, channel, mcc, n_outlets_total) a rule's conditions all hold for."""
    ok = np.ones(merchants.height, dtype=bool)
    if rule.sectors is not None:
        ok &= merchants["sector"].is_in(rule.sectors).to_numpy()
    if (codes := rule.mcc_set()) is not None:
        ok &= merchants["mcc"].is_in(sorted(codes)).to_numpy()
    if rule.channel is not None:
        ok &= (merchants["channel"] == rule.channel).to_numpy()
    if rule.n_outlets_ge is not None:
        ok &= (merchants["n_outlets_total"] >= rule.n_outlets_ge).to_numpy()
    return ok


def classify(policy: VirtualRules, merchants: pl.DataFrame) -> pl.DataFrame:
    """Each merchant's first matching rule: virtual_mode, rule_id, rule_version (P99 matches any)."""
    first = np.full(merchants.height, -1, dtype=np.int64)
    for i, rule in enumerate(policy.rules):
        first[(first < 0) & rule_mask(rule, merchants)] = i
    pick = [policy.rules[i] for i in first.tolist()]
    return pl.DataFrame(
        {
            "virtual_mode": [r.decision for r in pick],
            "rule_id": [r.id for r in pick],
            "rule_version": [r.version for r in pick],
        }
    )


def check_reachable(policy: VirtualRules, sector_mccs: dict[str, list[int]], state: str) -> None:
    """Every sector a rule names exists, and every rule can fire: some (sector, channel) it can match is not
    taken whole by an earlier rule without MCC or size conditions. Every (sector, channel) pair reaches a rule
    because the last rule is a catch-all (the policy model insists on it)."""
    sector_of = {mcc: s for s, codes in sector_mccs.items() for mcc in codes}
    taken: set[tuple[str, str]] = set()
    for i, rule in enumerate(policy.rules):
        unknown = sorted(set(rule.sectors or []) - set(sector_mccs))
        if unknown:
            raise EngineError(
                "E_POLICY_INVALID",
                f"rule {rule.id} names sectors 1A does not define: {', '.join(unknown)}",
                where=f"3B/virtual_rules.yaml rules.{i}.sectors",
                fix=f"use sectors of 1A/sectors.yaml: {', '.join(sorted(sector_mccs))}",
                state=state,
            )
        sectors = set(rule.sectors) if rule.sectors is not None else set(sector_mccs)
        if (codes := rule.mcc_set()) is not None:
            # an MCC outside every sector's list (a range code) may belong to any sector
            sectors &= {sector_of[c] for c in codes if c in sector_of} | (
                set(sector_mccs) if any(c not in sector_of for c in codes) else set()
            )
        pairs = {(s, c) for s in sectors for c in ([rule.channel] if rule.channel else CHANNELS)}
        if not pairs - taken:
            raise EngineError(
                "E_3B_RULE_UNREACHABLE",
                f"rule {rule.id} can never fire: earlier rules take every (sector, channel) it matches",
                where=f"3B/virtual_rules.yaml rules.{i}",
                fix="reorder the rules or narrow the earlier ones",
                state=state,
            )
        if rule.mcc_set() is None and rule.n_outlets_ge is None:
            taken |= pairs
