"""6A.S6's rules as pure functions over arrays (design layer2_3.md §3.8): risk tiers by quantile, the role
draw, caps by lowest score, mules grouped under organisers of their region, and propagation to accounts and
devices. The state (s6_roles.py) only reads, draws and publishes, so each rule is testable on hand frames.

Role codes are indices into PARTY_ROLES (0 = CLEAN); tier codes into RISK_TIERS (0 = LOW)."""

from __future__ import annotations

import math

import numpy as np

from engine.segments.l3.s6a.policy import PARTY_ROLES, Roles

MULE = PARTY_ROLES.index("MULE")
ORGANISER = PARTY_ROLES.index("ORGANISER")
SYNTHETIC = PARTY_ROLES.index("SYNTHETIC_ID")
ACCOUNT_ROLES = ("CLEAN", "MULE_ACCOUNT", "HIGH_RISK")
DEVICE_ROLES = ("CLEAN", "SHARED_RISKY", "HIGH_RISK")
IP_ROLES = ("CLEAN", "SHARED_PUBLIC", "ANONYMISER")
MERCHANT_ROLES = ("NORMAL", "HIGH_RISK_MCC", "COLLUSIVE")
# word c0 of 6A.risk ⟨kind, id, 0, 0⟩ and 6A.role ⟨kind, id, 1, 0⟩
ENTITY_KIND = {"PARTY": 1, "ACCOUNT": 2, "DEVICE": 3, "MERCHANT": 4}


def logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def score_order(score: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Positions from the highest score down; equal scores by ascending id (never by row order)."""
    return np.lexsort((ids, -score.astype(np.float64)))


def tiers_by_quantile(
    score: np.ndarray, ids: np.ndarray, group: np.ndarray, cutoffs: list[float]
) -> np.ndarray:
    """Tier per row within its group: rows ranked ascending by (score, id) at position i of n are in tier
    #{c : i ≥ ⌈c·n⌉}, so a group of n holds exactly ⌈c₁n⌉ LOW rows and so on (exact quantiles, no draw)."""
    tier = np.zeros(score.size, dtype=np.int8)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        order = rows[np.lexsort((ids[rows], score[rows].astype(np.float64)))]
        pos = np.arange(order.size)
        bounds = np.array([math.ceil(c * order.size) for c in cutoffs])
        tier[order] = (pos[:, None] >= bounds[None, :]).sum(axis=1)
    return tier


def draw_roles(u: np.ndarray, mix_row: np.ndarray, cdfs: np.ndarray) -> np.ndarray:
    """Categorical by inverse CDF: the smallest role r with u·total < cdf[r] (cdfs: one cumulative row per
    (type, tier), `mix_row` picks each party's row); a zero-probability role is never chosen."""
    cdf = cdfs[mix_row]
    total = cdf[:, -1]
    target = u * total
    role = (target[:, None] >= cdf).sum(axis=1)
    last = cdfs.shape[1] - 1 - np.argmax((np.diff(cdfs, prepend=0.0) > 0)[:, ::-1], axis=1)
    return np.minimum(role, last[mix_row]).astype(np.int8)


def cap_counts(pol: Roles, n: int) -> dict[str, int]:
    """Most holders per role: ⌊cap·N⌋."""
    return {role: math.floor(share * n + 1e-9) for role, share in pol.caps.items()}


def apply_caps(
    role: np.ndarray, score: np.ndarray, ids: np.ndarray, caps: dict[str, int]
) -> tuple[np.ndarray, int]:
    """Holders of a role beyond its cap, lowest scores first, revert to CLEAN; returns the roles and how many
    reverted."""
    role = role.copy()
    order = score_order(score, ids)
    reverted = 0
    for name, cap in caps.items():
        code = PARTY_ROLES.index(name)
        holders = order[role[order] == code]
        if holders.size > cap:
            role[holders[cap:]] = 0
            reverted += holders.size - cap
    return role, reverted


def assign_organisers(
    role: np.ndarray,
    score: np.ndarray,
    ids: np.ndarray,
    region: np.ndarray,
    max_per: int,
    organiser_cap: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Each MULE gets an ORGANISER of its region, round-robin in score order, at most `max_per` each.

    A region with too few organisers first promotes its highest-scoring mules (p = ⌈(m − max·o)/(max + 1)⌉ of
    them, while the global organiser cap allows; regions in sorted order); mules still beyond max·organisers
    revert to CLEAN, lowest scores first. Returns roles, the controller's id per row (0 = none) and counts."""
    role = role.copy()
    controller = np.zeros(role.size, dtype=np.uint64)
    order = score_order(score, ids)
    room = organiser_cap - int((role == ORGANISER).sum())
    promoted = reverted = 0
    for g in np.unique(region):
        in_g = order[region[order] == g]
        mules = in_g[role[in_g] == MULE]
        orgs = in_g[role[in_g] == ORGANISER]
        short = mules.size - max_per * orgs.size
        if short > 0:
            p = min(math.ceil(short / (max_per + 1)), max(room, 0), mules.size)
            role[mules[:p]] = ORGANISER
            room -= p
            promoted += p
            orgs = in_g[role[in_g] == ORGANISER]
            mules = mules[p:]
            keep = max_per * orgs.size
            if mules.size > keep:
                role[mules[keep:]] = 0
                reverted += mules.size - keep
                mules = mules[:keep]
        if mules.size:
            controller[mules] = ids[orgs[np.arange(mules.size) % orgs.size]]
    return role, controller, {"organisers_promoted": promoted, "mules_without_organiser": reverted}


def account_roles(owner_role: np.ndarray, is_current: np.ndarray, u: np.ndarray, pol: Roles) -> np.ndarray:
    """MULE's CURRENT accounts → MULE_ACCOUNT (p mule_current_account); SYNTHETIC_ID's accounts → HIGH_RISK
    (p synthetic_account); every other account → HIGH_RISK at the base rate. One uniform per account."""
    p = pol.propagation
    mule_cur = (owner_role == MULE) & is_current
    synth = owner_role == SYNTHETIC
    out = np.zeros(u.size, dtype=np.int8)
    out[mule_cur & (u < p.mule_current_account)] = 1
    out[synth & (u < p.synthetic_account)] = 2
    out[~mule_cur & ~synth & (u < p.clean_account)] = 2
    return out


def device_roles(operator: np.ndarray, risky_link: np.ndarray, u: np.ndarray, pol: Roles) -> np.ndarray:
    """OPERATOR devices: HIGH_RISK with p operator_high_risk, else SHARED_RISKY. A customer device linked to
    any non-clean party: HIGH_RISK with p risky_party_device; otherwise at the clean base rate."""
    p = pol.propagation
    rate = np.where(risky_link, p.risky_party_device, p.clean_device)
    out = np.where(u < rate, 2, 0).astype(np.int8)
    return np.where(operator, np.where(u < p.operator_high_risk, 2, 1), out).astype(np.int8)


def collusive_count(pol: Roles, n_merchants: int) -> int:
    """round(p·M), at most max(1, ⌊cap·M⌋), at least 1 when enabled (0 when not)."""
    m = pol.merchants
    if not m.collusive_enabled or n_merchants == 0:
        return 0
    cap = max(1, math.floor(m.collusive_cap * n_merchants + 1e-9))
    return max(1, min(round(m.p_collusive * n_merchants), cap))


def merchant_roles(
    score: np.ndarray, ids: np.ndarray, high_risk_mcc: np.ndarray, n_collusive: int
) -> np.ndarray:
    """COLLUSIVE for the top `n_collusive` scores, then HIGH_RISK_MCC for listed MCCs, else NORMAL."""
    out = np.where(high_risk_mcc, 1, 0).astype(np.int8)
    out[score_order(score, ids)[:n_collusive]] = 2
    return out
