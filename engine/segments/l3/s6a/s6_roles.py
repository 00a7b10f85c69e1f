"""6A.S6 — static fraud roles (design layer2_3.md §3.8): a risk score per party (6A.risk), a tier by
quantile within its party type, a role from the (type, tier) mix (6A.role), caps by lowest score, mules under
organisers of their region, risk propagated to accounts and devices, IP roles by type, and merchant roles
(HIGH_RISK_MCC, COLLUSIVE by merchant score). The rules live in roles.py; this module reads, draws and
publishes."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.blocks import block_uniforms
from engine.kernels.samplers import normals_from_u
from engine.segments.l3.s6a import roles as R
from engine.segments.l3.s6a.policy import DAYS_PER_MONTH, PARTY_ROLES, PARTY_TYPES, RISK_TIERS, Roles

MAX_ROLE_CAP_SUM = 0.05


def check_roles(pol: Roles) -> None:
    """S0's cross-field check of roles.yaml: the caps sum to at most 5 % of parties and every mix sums to 1
    (the model refuses a bad mix too; this keeps S0's check list explicit)."""
    total = sum(pol.caps.values())
    if total > MAX_ROLE_CAP_SUM + 1e-12:
        raise EngineError(
            "E_6A_CAP_INCONSISTENT",
            f"the role caps sum to {total:.4%} of parties, above {MAX_ROLE_CAP_SUM:.0%}",
            where="6A/roles.yaml caps",
            fix="lower the caps",
            state="6A.S0",
        )
    for ptype, tiers in pol.role_mix.items():
        for tier, mix in tiers.items():
            if abs(sum(mix.values()) - 1.0) > 1e-9:
                raise EngineError(
                    "E_POLICY_INVALID",
                    f"the role mix sums to {sum(mix.values())!r}, not 1",
                    where=f"6A/roles.yaml field role_mix.{ptype}.{tier}",
                    fix="make the mix sum to 1 (CLEAN takes the remainder)",
                    state="6A.S0",
                )


def normals(ctx: StateContext, kind: str, ids: np.ndarray) -> np.ndarray:
    """ε ~ N(0, 1) per entity: Box–Muller (cos branch) on u(w0), u(w1) of 6A.risk ⟨kind, id, 0, 0⟩."""
    k = R.ENTITY_KIND[kind]
    u = block_uniforms(ctx.family_key("risk"), np.full(ids.size, k, dtype=np.uint64), ids, lanes=2)
    z = normals_from_u(u)
    ctx.record_draws("risk", (k, ids, 0, 0), draws=2, blocks=1, value=z, entity=ids)
    return z


def role_uniforms(ctx: StateContext, kind: str, ids: np.ndarray) -> np.ndarray:
    """u(w0) of 6A.role ⟨kind, id, 1, 0⟩: one draw per entity."""
    k = R.ENTITY_KIND[kind]
    u = block_uniforms(ctx.family_key("role"), np.full(ids.size, k, dtype=np.uint64), ids, 1)[:, 0]
    ctx.record_draws("role", (k, ids, 1, 0), draws=1, blocks=1, value=u, entity=ids)
    return u


def party_linear(parties: pl.DataFrame, accounts: pl.DataFrame, start: pl.Expr, pol: Roles) -> np.ndarray:
    """b0 + Σ w_f x_f + segment effect, per party in party order (ε is added by the caller)."""
    r = pol.party_risk
    cards = (
        accounts.filter(pl.col("account_type").cast(pl.String) == "CREDIT_CARD")
        .group_by("party_id")
        .agg(pl.len().alias("credit_cards"))
    )
    df = parties.join(cards, on="party_id", how="left", maintain_order="left").select(
        pl.col("cross_border_propensity").cast(pl.Float64).alias("cross_border"),
        pl.col("digital_affinity").cast(pl.Float64).alias("digital"),
        pl.col("credit_cards").fill_null(0).cast(pl.Float64),
        (
            -(
                ((start - pl.col("onboarding_date")).dt.total_days() / DAYS_PER_MONTH).clip(lower_bound=1.0)
                / r.tenure_ref_months
            ).log()
        ).alias("neg_log_tenure"),
        ((pl.col("party_type").cast(pl.String) == "RETAIL") & (pl.col("household_size") == 1))
        .cast(pl.Float64)
        .alias("single_person"),
        pl.col("segment")
        .cast(pl.String)
        .replace_strict(r.segment_effects, default=0.0, return_dtype=pl.Float64)
        .alias("segment_effect"),
    )
    lin = np.full(df.height, r.intercept) + df["segment_effect"].to_numpy()
    for name, w in r.weights.items():
        lin += w * df[name].to_numpy()
    return lin


def party_roles(ctx: StateContext, parties: pl.DataFrame, accounts: pl.DataFrame, pol: Roles) -> pl.DataFrame:
    """Score, tier, draw, cap and group the parties (design §3.8 steps 1–4), in party order."""
    horizon = ctx.policy("CFG/horizon.yaml")
    ids = parties["party_id"].to_numpy()
    lin = party_linear(parties, accounts, pl.lit(horizon.start().date()), pol)
    score = R.logistic(lin + pol.party_risk.noise_sigma * normals(ctx, "PARTY", ids)).astype(np.float32)
    ptype = parties["party_type"].cast(pl.String).replace_strict({t: i for i, t in enumerate(PARTY_TYPES)})
    ptype = ptype.cast(pl.Int64).to_numpy()
    tier = R.tiers_by_quantile(score, ids, ptype, pol.tier_cutoffs)
    # the bank's KYC view: the same quantile tiers over the observable part of the score (no ε), so the tier a
    # bank holds tracks the roles without naming them (6B's kyc_risk_tier)
    kyc_score = R.logistic(lin).astype(np.float32)
    kyc_tier = R.tiers_by_quantile(kyc_score, ids, ptype, pol.tier_cutoffs)
    cdfs = np.array([pol.cdf(t, tier_name) for t in PARTY_TYPES for tier_name in RISK_TIERS])
    role = R.draw_roles(role_uniforms(ctx, "PARTY", ids), ptype * len(RISK_TIERS) + tier, cdfs)
    drawn = np.bincount(role, minlength=len(PARTY_ROLES))
    caps = R.cap_counts(pol, ids.size)
    role, reverted = R.apply_caps(role, score, ids, caps)
    region = parties["region"].to_physical().to_numpy()
    role, controller, counts = R.assign_organisers(
        role, score, ids, region, pol.max_mules_per_organiser, caps["ORGANISER"]
    )
    ctx.count("roles_reverted_by_cap", reverted)
    for name, n in counts.items():
        ctx.count(name, n)
    ctx.facts["party_roles"] = {
        "drawn": {r: int(n) for r, n in zip(PARTY_ROLES, drawn, strict=True)},
        "final": {
            r: int(n) for r, n in zip(PARTY_ROLES, np.bincount(role, minlength=len(PARTY_ROLES)), strict=True)
        },
        "caps": caps,
    }
    return pl.DataFrame(
        {
            "party_id": parties["party_id"],
            "risk_score": pl.Series(score, dtype=pl.Float32),
            "risk_tier": coded(tier, RISK_TIERS),
            "kyc_score": pl.Series(kyc_score, dtype=pl.Float32),
            "kyc_risk_tier": coded(kyc_tier, RISK_TIERS),
            "role": coded(role, PARTY_ROLES),
            "controller_party_id": pl.Series(controller, dtype=pl.UInt64).replace(0, None),
        }
    )


def coded(values: np.ndarray, names: tuple[str, ...]) -> pl.Series:
    """Codes as the Enum over `names` (code i is names[i])."""
    return pl.Series(names)[values.astype(np.int64)].cast(pl.Enum(names))


def run(ctx: StateContext) -> None:
    pol: Roles = ctx.policy("6A/roles.yaml")
    parties = ctx.read("parties").sort("party_id")
    accounts = ctx.read("accounts").sort("account_id")
    prole = party_roles(ctx, parties, accounts, pol)
    ctx.publish("party_roles", prole)

    owner = accounts.join(prole.select("party_id", "role"), on="party_id", how="left", maintain_order="left")
    acc_ids = accounts["account_id"].to_numpy()
    acc = R.account_roles(
        owner["role"].to_physical().to_numpy().astype(np.int8),
        (accounts["account_type"].cast(pl.String) == "CURRENT").to_numpy(),
        role_uniforms(ctx, "ACCOUNT", acc_ids),
        pol,
    )
    ctx.publish(
        "account_roles",
        pl.DataFrame({"account_id": accounts["account_id"], "role": coded(acc, R.ACCOUNT_ROLES)}),
    )

    devices = ctx.read("devices").sort("device_id")
    links = ctx.read("device_links")
    risky = (
        links.join(prole.select("party_id", "role"), on="party_id")
        .filter(pl.col("role").cast(pl.String) != "CLEAN")
        .select("device_id")
        .unique()
    )
    dev_ids = devices["device_id"].to_numpy()
    dev = R.device_roles(
        (devices["owner_kind"].cast(pl.String) == "OPERATOR").to_numpy(),
        devices["device_id"].is_in(risky["device_id"].implode()).to_numpy(),
        role_uniforms(ctx, "DEVICE", dev_ids),
        pol,
    )
    ctx.publish(
        "device_roles", pl.DataFrame({"device_id": devices["device_id"], "role": coded(dev, R.DEVICE_ROLES)})
    )

    ips = ctx.read("ips").sort("ip_id")
    ip_type = ips["ip_type"].cast(pl.String)
    ip = np.where(
        ip_type.is_in(pol.anonymiser_ip_types).to_numpy(),
        2,
        np.where(ip_type.is_in(pol.shared_public_ip_types).to_numpy(), 1, 0),
    )
    ctx.publish("ip_roles", pl.DataFrame({"ip_id": ips["ip_id"], "role": coded(ip, R.IP_ROLES)}))

    ctx.publish("merchant_roles", merchants(ctx, pol))
    ctx.facts["role_counts"] = {
        kind: {r: int(n) for r, n in zip(names, np.bincount(codes, minlength=3), strict=True)}
        for kind, codes, names in (
            ("account", acc, R.ACCOUNT_ROLES),
            ("device", dev, R.DEVICE_ROLES),
            ("ip", ip, R.IP_ROLES),
        )
    }


def merchants(ctx: StateContext, pol: Roles) -> pl.DataFrame:
    """Merchant score from its MCC, channel and ε (6A.risk ⟨MERCHANT, merchant_id⟩), tier by quantile, and
    roles: the top scores COLLUSIVE, then HIGH_RISK_MCC."""
    m = pol.merchants
    cat = ctx.sealed_table("merchant_catalogue").sort("merchant_id")
    ids = cat["merchant_id"].to_numpy()
    hr = cat["mcc"].is_in(m.high_risk_mccs).to_numpy()
    cnp = (cat["channel"].cast(pl.String) == "card_not_present").to_numpy()
    lin = m.intercept + m.high_risk_mcc * hr + m.cnp * cnp
    score = R.logistic(lin + m.noise_sigma * normals(ctx, "MERCHANT", ids)).astype(np.float32)
    tier = R.tiers_by_quantile(score, ids, np.zeros(ids.size, dtype=np.int64), pol.tier_cutoffs)
    n_col = R.collusive_count(pol, ids.size)
    role = R.merchant_roles(score, ids, hr, n_col)
    ctx.facts["merchant_roles"] = {
        "merchants": int(ids.size),
        "collusive": n_col,
        "high_risk_mcc": int((role == 1).sum()),
        "collusive_cap": max(1, math.floor(m.collusive_cap * ids.size + 1e-9)),
    }
    return pl.DataFrame(
        {
            "merchant_id": cat["merchant_id"],
            "role": coded(role, R.MERCHANT_ROLES),
            "risk_tier": coded(tier, RISK_TIERS),
            "risk_score": pl.Series(score, dtype=pl.Float32),
        }
    )
