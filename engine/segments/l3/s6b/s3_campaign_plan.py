"""6B.S3 — the campaign plan of one scenario (design §4.6, §4.2; amendments 1–4, 6 and 10): every fraud and
abuse instance, its targets and windows, the points of compromise its cards come from, the flows it inserts
(one partition per scenario, `shard` a column) and the non-monetary account events.

1. Budget (step 1): rate·F minus the expected friendly-fraud and mule-posture flows (truth.yaml), at least
   0.5·rate·F; per type T_t = share_t·budget; n_t = clamp(round(T_t / mean flows per instance), min, max);
   instance sizes U[lo, hi] scaled to T_t by largest remainder (each ≥ 1). A selection type's size counts its
   expected selected baseline flows (p_select × the target's expected flows in the window); the rest is
   inserted.
2. Starts are stratified (step 2): start_i = H0 + (i + u)/n·(horizon − duration_i), i the 0-based instance
   (campaign_id = type_code << 56 | i).
3. Skeletons per type (plan_types), breaches and card pools for the card-fed types (breaches), placement
   (plan_realise), then flow ids k = per-merchant ordinal in (merchant_id, ts_utc, campaign_id, seq) order
   (flow_id = merchant_idx << 40 | 2^39 | k) and sessions per (campaign, party, merchant) cut by the sessions
   pack's gap and cap (step 4).
4. Account events: legit base rates for every party plus ATO / APP precursors (account_events).

inserted_flows semantics for 6B.S4 (the contract's columns): amount_tilt = γ for an up tilt, 1/γ for a down
tilt, 1.0 for none (AMOUNT_SHIFT not drawn, or a forced probe amount); forced_amount_minor is the probe's
amount
in the merchant currency; decline_bias the probability the flow is declined (non-existent numbers 1.0, wrong
PIN attempts 1.0); legal_country_iso the demand cell's country (the merchant country of 5B arrivals).

RNG: `6B.plan` (plan_draws) and `6B.account_event` (account_events), every block recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from engine.core.errors import EngineError
from engine.core.gates import read_input_table
from engine.core.group_sums import group_sums
from engine.core.horizon import Horizon
from engine.core.ids import splitmix64
from engine.core.state import StateContext
from engine.kernels import njit
from engine.segments.l3.s6b import plan_types as T
from engine.segments.l3.s6b.account_events import legit_events, precursors, with_ids
from engine.segments.l3.s6b.breaches import Pools, plan_breaches, spend_delay_us
from engine.segments.l3.s6b.plan_draws import DAY_US, INSTANCE, US, Draws, hour_cdf, weighted_time
from engine.segments.l3.s6b.plan_realise import realise
from engine.segments.l3.s6b.plan_types import Env, Instances, TypePlan
from engine.segments.l3.s6b.plan_world import (
    ATM,
    ECOM,
    POS,
    TRANSFER,
    World,
    build_cells,
    build_entities,
    build_places,
)
from engine.segments.l3.s6b.policy import (
    CAMPAIGN_TYPES,
    CHANNELS,
    TACTIC_BITS,
    Campaigns,
    Channels,
    Flows,
    Sessions,
    Truth,
)

STATE = "6B.S3"
INSERTED_BIT = 1 << 39
FED = ("CARD_TESTING", "CNP_STOLEN", "COUNTERFEIT")  # the types that spend a breach's captured cards
PLANNERS = {
    "CARD_TESTING": T.card_testing,
    "CNP_STOLEN": T.cnp_stolen,
    "ACCOUNT_TAKEOVER": T.account_takeover,
    "APP_SCAM": T.app_scam,
    "BUST_OUT": T.bust_out,
    "LOST_STOLEN": T.lost_stolen,
    "COUNTERFEIT": T.counterfeit,
    "MERCHANT_COLLUSION": T.merchant_collusion,
    "REFUND_ABUSE": T.refund_abuse,
    "PROMO_ABUSE": T.promo_abuse,
}
PRECURSOR_TYPES = ("ACCOUNT_TAKEOVER", "APP_SCAM")
AFTER_HOURS = (20, 5)  # MERCHANT_COLLUSION's after-hours: 20:00–05:59 local (chosen)
SEP = 1 << 20  # INSTANCE block j = 2 (size, breach delay)


@dataclass(frozen=True)
class Budget:
    flows: int  # F: baseline arrivals of the scenario
    target: float  # rate · F
    friendly: float
    posture: float
    budget: float
    per_type: dict[str, float]


def budget(world: World, pol: Campaigns, truth: Truth, flows_f: int, horizon_days: float) -> Budget:
    """Step 1: the campaign budget after the expected friendly and mule-posture flows of the truth pack."""
    ent = world.entities
    share = world.channel_share
    ffp = float(ent.activity[ent.role == "FRIENDLY_FRAUD_PRONE"].sum() / ent.activity.sum())
    f = truth.friendly
    lift = 1.0 + ffp * (f.role_factor["FRIENDLY_FRAUD_PRONE"] - 1.0)
    friendly = (
        f.p * flows_f * (share[ECOM] * f.channel_factor["ECOM"] + share[POS] * f.channel_factor["POS"]) * lift
    )
    mule = float(ent.activity[ent.role == "MULE"].sum() / ent.activity.sum())
    w = truth.mule_windows
    standalone = min(1.0, w.standalone_per_28d * (w.standalone_days.lo + w.standalone_days.hi) / 2.0 / 28.0)
    posture = mule * flows_f * (share[ATM] + share[TRANSFER]) * standalone
    target = pol.fraud_rate_target * flows_f
    total = max(target - friendly - posture, 0.5 * target)
    enabled = pol.types.enabled()
    return Budget(flows_f, target, friendly, posture, total, {t: c.share * total for t, c in enabled.items()})


def largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    quota = total * weights / weights.sum()
    base = np.floor(quota).astype(np.int64)
    order = np.lexsort((np.arange(weights.shape[0]), -(quota - base)))
    base[order[: total - int(base.sum())]] += 1
    return base


def instances(pol: Campaigns, kind: str, type_code: int, flows_t: float, draws: Draws) -> Instances:
    """n_t instances with sizes U[lo, hi] scaled so they sum to T_t (each ≥ 1)."""
    c = getattr(pol.types, kind)
    mean = (c.flows_per_instance.lo + c.flows_per_instance.hi) / 2.0
    n = int(np.clip(round(flows_t / mean), pol.min_instances, pol.max_instances))
    idx = np.arange(n)
    u0 = draws.u(type_code, idx, INSTANCE, 0)
    u1 = draws.u(type_code, idx, INSTANCE, 1)
    u2 = draws.u(type_code, idx, INSTANCE, 2)
    raw = c.flows_per_instance.lo + u2[:, 0] * (c.flows_per_instance.hi - c.flows_per_instance.lo)
    total = max(round(flows_t), n)
    size = np.maximum(largest_remainder(total, raw), 1)
    return Instances(kind, type_code, size, u0, u1, u2)


def gammas(pol: Campaigns, kind: str, u: np.ndarray) -> np.ndarray:
    tilt = getattr(pol.types, kind).amount_tilt
    lo, hi = pol.tilt_up if tilt == "UP" else pol.tilt_down
    return np.where(tilt == "NONE", 1.0, lo + u * (hi - lo))


def starts(
    world: World, inst: Instances, duration: np.ndarray, horizon: tuple[int, int], home: np.ndarray
) -> np.ndarray:
    """Stratified starts; where the stratum spans a day or more the start is drawn in it with the
    night-skewed local-hour profile (the stratum still holds it)."""
    h0, h1 = horizon
    room = np.maximum(h1 - h0 - duration, 0)
    lo = h0 + (np.arange(inst.n) * room) // inst.n
    hi = h0 + ((np.arange(inst.n) + 1) * room) // inst.n
    u = np.stack([inst.u0[:, 1], inst.u0[:, 2], inst.u0[:, 3], inst.u0[:, 0]], axis=1)
    start = weighted_time(lo, np.maximum(hi, lo + 1), world.tz_offset_s[home], u, world.hour_cdf[0])
    return np.minimum(start, np.maximum(h1 - duration, h0))


@njit(cache=True, nogil=True)
def session_cut(group: np.ndarray, ts: np.ndarray, gap_us: int, cap_us: int) -> np.ndarray:
    """Session start positions: rows sorted by (group, ts); a new session at a new group, after a gap above
    gap_us, or when the session has lasted cap_us (design §4.4 step 6; §4.6 step 3)."""
    first = np.empty(group.shape[0], dtype=np.int64)
    start = 0
    for r in range(group.shape[0]):
        if r == 0 or group[r] != group[r - 1] or ts[r] - ts[r - 1] > gap_us or ts[r] - ts[start] > cap_us:
            start = r
        first[r] = start
    return first


def assign_ids(world: World, flows: pl.DataFrame, sessions: Sessions) -> pl.DataFrame:
    """flow ids (per-merchant ordinal) and sessions (per campaign, party and merchant)."""
    flows = flows.sort("merchant_id", "ts_us", "campaign_id", "seq")
    midx = world.merchant_idx(flows["merchant_id"].to_numpy())
    ordinal = (
        flows.select(pl.int_range(pl.len()).over("merchant_id").alias("k"))["k"].to_numpy().astype(np.uint64)
    )
    flow_id = (midx << np.uint64(40)) | np.uint64(INSERTED_BIT) | ordinal
    flows = flows.with_columns(pl.Series("flow_id", flow_id, dtype=pl.UInt64))
    order = (
        flows.select(
            pl.arg_sort_by("campaign_id", pl.col("party_id").fill_null(0), "merchant_id", "ts_us", "flow_id")
        )
        .to_series()
        .to_numpy()
    )
    grouped = flows[order]
    group = (
        grouped.select(
            pl.struct("campaign_id", pl.col("party_id").fill_null(0), "merchant_id").rank("dense").alias("g")
        )["g"]
        .to_numpy()
        .astype(np.int64)
    )
    first = session_cut(
        group, grouped["ts_us"].to_numpy(), sessions.gap_seconds * US, sessions.max_session_hours * 3600 * US
    )
    session_id = grouped["flow_id"].to_numpy()[first]
    seq = np.arange(first.shape[0]) - first + 1
    grouped = grouped.with_columns(
        pl.Series("session_id", session_id, dtype=pl.UInt64), pl.Series("session_seq", seq, dtype=pl.UInt16)
    )
    return grouped.sort("merchant_id", "ts_us", "flow_id")


@dataclass
class Plan:
    """S3's outputs before identity columns, and the figures its report gives."""

    breaches: pl.DataFrame
    campaigns: pl.DataFrame
    targets: pl.DataFrame
    flows: pl.DataFrame
    events: pl.DataFrame
    facts: dict[str, object]


def home_of(world: World, plan: TypePlan, n: int) -> np.ndarray:
    """Each instance's reference country (its first flow's party, else its first fixed country, else 0)."""
    sk = plan.skeleton
    ent = world.entities
    idx = np.minimum(ent.party_index(sk["party"]), ent.party_id.shape[0] - 1)
    known = (sk["party"] > 0) & (ent.party_id[idx] == sk["party"])
    country = np.where(known, ent.country[idx], np.maximum(sk["country"], 0))
    home = np.zeros(n, dtype=np.int64)
    first = np.unique(sk["instance"], return_index=True)
    home[first[0]] = country[first[1]]
    return home


def plan_type(env: Env, inst: Instances, horizon: tuple[int, int]) -> tuple[TypePlan, np.ndarray]:
    plan = PLANNERS[inst.kind](env, inst)
    fit_horizon(plan, horizon[1] - horizon[0])
    return plan, starts(env.world, inst, plan.duration, horizon, home_of(env.world, plan, inst.n))


def fit_horizon(plan: TypePlan, length: int) -> None:
    """An instance longer than the horizon (a 30-day refund window in a 14-day world) is compressed into it:
    its flows' spans scale by horizon / duration, so every flow stays inside and in order."""
    factor = np.minimum(1.0, (length - 1) / np.maximum(plan.duration, 1))
    sk = plan.skeleton
    f = factor[sk["instance"]]
    lo = np.floor(sk["lo"] * f).astype(np.int64)
    sk["hi"] = np.maximum(np.floor(sk["hi"] * f).astype(np.int64), lo + 1)
    sk["lo"] = lo
    plan.duration = np.minimum(plan.duration, length - 1)
    if plan.selected is not None:  # fewer baseline flows fall inside the shorter window
        plan.selected = plan.selected * factor


def plan_scenario(
    world: World,
    pol: Campaigns,
    truth: Truth,
    flows_pol: Flows,
    sessions: Sessions,
    draws: Draws,
    events_key: tuple[int, int],
    flows_f: int,
    horizon: tuple[int, int],
    record_events=None,  # type: ignore[no-untyped-def]
) -> Plan:
    days = (horizon[1] - horizon[0]) / DAY_US
    env = Env(
        world,
        pol,
        draws,
        int(truth.mule_windows.after_campaign_days * DAY_US),
        flows_f / (horizon[1] - horizon[0]),
    )
    b = budget(world, pol, truth, flows_f, days)
    codes = pol.type_codes
    planned: dict[str, tuple[Instances, TypePlan, np.ndarray]] = {}
    for kind, flows_t in b.per_type.items():
        inst = instances(pol, kind, codes[kind], flows_t, draws)
        plan, start = plan_type(env, inst, horizon)
        planned[kind] = (inst, plan, start)
    pools, breach_of = breaches_for(env, pol, planned, days)
    frames, camp, targets, victims = [], [], [], []
    for kind, (inst, plan, start) in planned.items():
        cid = (np.uint64(codes[kind]) << np.uint64(56)) | np.arange(inst.n, dtype=np.uint64)
        breach = breach_of.get(kind)
        gamma = gammas(pol, kind, inst.u0[:, 3])
        flows = realise(
            env, inst, plan, start, gamma, cid, pools if breach is not None else None, breach, horizon
        )
        frames.append(flows)
        camp.append(campaign_rows(pol, kind, inst, plan, start, gamma, cid, flows, breach))
        targets.append(target_rows(env, kind, inst, plan, start, cid, flows, breach, pools))
        if kind in PRECURSOR_TYPES:
            victims.append((kind, codes[kind], victim_rows(inst, plan, cid, flows)))
    flows = assign_ids(world, pl.concat(frames), sessions)
    events = legit_events(world, events_key, flows_pol.account_events.per_party_28d, horizon, record_events)
    pre = [precursors(world, pol, draws, kind, code, v, horizon[0]) for kind, code, v in victims]
    events = with_ids(pl.concat([events, *[p for p in pre if p.height]], how="diagonal_relaxed"))
    campaigns = pl.concat(camp)
    n_targets = pl.concat(targets).group_by("campaign_id").len()
    campaigns = campaigns.join(n_targets, on="campaign_id", how="left").with_columns(
        pl.col("len").fill_null(0).cast(pl.UInt32).alias("n_targets")
    )
    planned_flows = int(campaigns["planned_flows"].sum())
    by_type = campaigns.group_by("campaign_type").agg(
        pl.col("planned_flows").sum(), pl.len().alias("instances")
    )
    facts = {
        "arrivals": flows_f,
        "fraud_rate_target": pol.fraud_rate_target,
        "enrichment_factor": pol.enrichment_factor,
        "budget": round(b.budget, 3),
        "expected_friendly": round(b.friendly, 3),
        "expected_posture": round(b.posture, 3),
        "planned_flows": planned_flows,
        "inserted_flows": flows.height,
        "planned_rate": (planned_flows + b.friendly + b.posture) / max(flows_f, 1),
        "by_type": {
            r["campaign_type"]: {"planned_flows": r["planned_flows"], "instances": r["instances"]}
            for r in by_type.sort("campaign_type").iter_rows(named=True)
        },
        "breaches": pools.table.height if pools is not None else 0,
        "account_events": events.height,
        "precursor_events": int((events["event_role"] == "FRAUD_PRECURSOR").sum()),
    }
    return Plan(
        pools.table if pools is not None else pl.DataFrame(),
        campaigns.drop("len"),
        pl.concat(targets).unique(
            ["campaign_id", "target_kind", "target_id"], keep="first", maintain_order=True
        ),
        flows,
        events,
        facts,
    )


def breaches_for(
    env: Env, pol: Campaigns, planned: dict[str, tuple[Instances, TypePlan, np.ndarray]], days: float
) -> tuple[Pools | None, dict[str, np.ndarray]]:
    """One breach list for every card-fed instance of the scenario; each fed type's instance → breach."""
    fed = [k for k in FED if k in planned]
    if not fed:
        return None, {}
    start, delay, need = [], [], []
    for kind in fed:
        inst, plan, st = planned[kind]
        start.append(st)
        delay.append(spend_delay_us(pol.compromise, inst.u2[:, 1]))
        cards = np.zeros(inst.n, dtype=np.int64)
        np.maximum.at(cards, plan.skeleton["instance"], plan.skeleton["pool"] + 1)
        need.append(cards)
    pools, of = plan_breaches(
        env.world,
        pol.compromise,
        env.draws,
        np.concatenate(start),
        np.concatenate(delay),
        np.concatenate(need),
        days,
    )
    out, at = {}, 0
    for kind in fed:
        n = planned[kind][0].n
        out[kind] = of[at : at + n]
        at += n
    return pools, out


def tactic_mask_of(pol: Campaigns, kind: str) -> int:
    """The tactics a type may apply (probability > 0), as tactic_mask bits."""
    return sum(TACTIC_BITS[t] for t, p in getattr(pol.types, kind).tactics.items() if p > 0)


def campaign_rows(
    pol: Campaigns,
    kind: str,
    inst: Instances,
    plan: TypePlan,
    start: np.ndarray,
    gamma: np.ndarray,
    cid: np.ndarray,
    flows: pl.DataFrame,
    breach: np.ndarray | None,
) -> pl.DataFrame:
    counts = flows.group_by("campaign_id").len()
    selected = np.zeros(inst.n) if plan.selected is None else np.round(plan.selected)
    c = getattr(pol.types, kind)
    frame = pl.DataFrame(
        {
            "campaign_id": pl.Series(cid, dtype=pl.UInt64),
            "campaign_type": [kind] * inst.n,
            "truth_label": [c.label] * inst.n,
            "mode": pl.Series(plan.mode if plan.mode is not None else [None] * inst.n, dtype=pl.String),
            "breach_id": pl.Series([None] * inst.n if breach is None else breach + 1, dtype=pl.UInt64),
            "start_us": start,
            "end_us": start + np.minimum(plan.duration, np.iinfo(np.int64).max - start),
            "selected": selected.astype(np.int64),
            "tactic_mask": pl.Series([tactic_mask_of(pol, kind)] * inst.n, dtype=pl.UInt16),
            "gamma": pl.Series(np.maximum(gamma, 1.0), dtype=pl.Float32),
        }
    )
    return (
        frame.join(counts, on="campaign_id", how="left")
        .with_columns(
            (pl.col("len").fill_null(0) + pl.col("selected")).cast(pl.UInt32).alias("planned_flows")
        )
        .drop("len", "selected")
    )


def target_frame(
    cid: np.ndarray,
    kind: str,
    target_id: np.ndarray,
    role: str,
    p: float | np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "campaign_id": pl.Series(cid, dtype=pl.UInt64),
            "target_kind": [kind] * cid.shape[0],
            "target_id": pl.Series(np.asarray(target_id, dtype=np.uint64), dtype=pl.UInt64),
            "window_start_us": np.asarray(lo, dtype=np.int64),
            "window_end_us": np.asarray(hi, dtype=np.int64),
            "p_select": pl.Series(
                np.broadcast_to(np.asarray(p, dtype=np.float64), cid.shape), dtype=pl.Float32
            ),
            "target_role": [role] * cid.shape[0],
        }
    )


def target_rows(
    env: Env,
    kind: str,
    inst: Instances,
    plan: TypePlan,
    start: np.ndarray,
    cid: np.ndarray,
    flows: pl.DataFrame,
    breach: np.ndarray | None,
    pools: Pools | None,
) -> pl.DataFrame:
    """The planner's targets plus those read off the placed flows: captured cards, the breached merchant,
    probed and cash-out merchants, operator devices."""
    end = start + plan.duration
    parts = []
    for t in plan.targets:
        lo, hi = (
            (start[t.instance], end[t.instance])
            if t.window is None
            else (
                start[t.instance] + t.window[0],
                start[t.instance] + t.window[1],
            )
        )
        parts.append(target_frame(cid[t.instance], t.kind, t.target_id, t.role, t.p_select, lo, hi))
    index = dict(zip(cid.tolist(), range(inst.n), strict=True))

    def from_flows(rows: pl.DataFrame, column: str, target_kind: str, role: str) -> None:
        rows = (
            rows.filter(pl.col(column).is_not_null())
            .unique(["campaign_id", column])
            .sort("campaign_id", column)
        )
        at = np.array([index[c] for c in rows["campaign_id"].to_list()], dtype=np.int64)
        if at.size:
            parts.append(
                target_frame(cid[at], target_kind, rows[column].to_numpy(), role, 0.0, start[at], end[at])
            )

    if breach is not None and pools is not None:
        from_flows(flows, "instrument_id", "INSTRUMENT", "COMPROMISED_CARD")
        table = pools.table
        parts.append(
            target_frame(
                cid,
                "MERCHANT",
                table["merchant_id"].to_numpy()[breach],
                "BREACHED_MERCHANT",
                0.0,
                table["start_us"].to_numpy()[breach],
                table["end_us"].to_numpy()[breach],
            )
        )
    if kind == "CARD_TESTING":
        from_flows(flows.filter(pl.col("phase") == "PROBE"), "merchant_id", "MERCHANT", "PROBED_MERCHANT")
        from_flows(flows.filter(pl.col("phase") == "CASHOUT"), "merchant_id", "MERCHANT", "CASHOUT_MERCHANT")
    from_flows(flows.filter(pl.col("device_known") == False), "device_id", "DEVICE", "OPERATOR_DEVICE")  # noqa: E712
    return (
        pl.concat(parts)
        if parts
        else target_frame(cid[:0], "PARTY", cid[:0], "VICTIM", 0.0, cid[:0], cid[:0])
    )


def victim_rows(inst: Instances, plan: TypePlan, cid: np.ndarray, flows: pl.DataFrame) -> pl.DataFrame:
    """instance, campaign_id, victim party, first flow time, fraudster device, payee of each instance."""
    victim = next(t for t in plan.targets if t.role == "VICTIM")
    per = flows.group_by("campaign_id").agg(
        pl.col("ts_us").min().alias("first_ts"),
        pl.col("device_id").filter(pl.col("device_known") == False).first().fill_null(0).alias("device_id"),  # noqa: E712
        pl.col("payee_account_id").drop_nulls().first().fill_null(0).alias("payee"),
    )
    frame = pl.DataFrame(
        {
            "instance": victim.instance,
            "campaign_id": pl.Series(cid[victim.instance], dtype=pl.UInt64),
            "party_id": pl.Series(victim.target_id, dtype=pl.UInt64),
        }
    )
    return frame.join(per, on="campaign_id", how="inner").sort("instance")


# --- inputs ----------------------------------------------------------------------------------------------
TABLES = (
    "merchant_catalogue",
    "merchant_zone_profile",
    "scenario_events",
    "site_timezones",
    "s1_site_weights",
    "edge_catalogue",
    "tz_transitions",
    "terminals",
    "parties",
    "party_roles",
    "accounts",
    "account_roles",
    "instruments",
    "devices",
    "device_links",
    "ip_links",
    "ips",
    "merchant_roles",
    "ref_currencies",
)


PER_SCENARIO = ("scenario_events",)  # sealed per scenario partition
ENTITY_COLUMNS = {
    "parties": ["party_id", "country_iso", "segment", "activity_weight", "digital_affinity"],
    "party_roles": ["party_id", "role", "controller_party_id"],
    "accounts": ["account_id", "party_id", "is_primary"],
    "account_roles": ["account_id", "role"],
    "instruments": [
        "instrument_id",
        "account_id",
        "party_id",
        "instrument_type",
        "cnp_enabled",
    ],
    "devices": ["device_id", "owner_kind"],
    "device_links": ["party_id", "device_id"],
    "ip_links": ["device_id", "ip_id", "usage_weight"],
    "ips": ["ip_id", "ip_type"],
}


def hour_profile(sample: pl.DataFrame) -> np.ndarray:
    """The legit local-hour profile (24 shares) of a sample of arrivals (ts_local)."""
    hist = sample.select(pl.col("ts_local").dt.hour().alias("h")).group_by("h").len()
    w = np.ones(24)  # a floor of one arrival per hour keeps every hour reachable
    w[hist["h"].to_numpy()] += hist["len"].to_numpy()
    return w / w.sum()


def country_offsets(
    profile: pl.DataFrame, transitions: pl.DataFrame, code: dict[str, int], h0: int
) -> np.ndarray:
    """Per country code: the UTC offset at the horizon start of its largest-demand zone (the cardholder's
    clock for the night skew)."""
    zones = [pl.col("legal_country_iso").cast(pl.String).alias("c"), pl.col("tzid").cast(pl.String)]
    main = (
        group_sums(profile, zones, ["weekly_expected"])
        .sort("c", "weekly_expected", "tzid", descending=[False, True, False])
        .unique("c", keep="first", maintain_order=True)
    )
    at = (
        transitions.select(pl.col("tzid").cast(pl.String), "valid_from", "utc_offset_s")
        .filter(pl.col("valid_from") <= h0)
        .sort("valid_from")
        .group_by("tzid")
        .agg(pl.col("utc_offset_s").last())
    )
    rows = main.join(at, on="tzid", how="left")
    out = np.zeros(len(code) + 1, dtype=np.int64)
    for c, off in zip(rows["c"].to_list(), rows["utc_offset_s"].fill_null(0).to_list(), strict=True):
        out[code[c]] = off
    return out


def world_from_tables(
    t: dict[str, pl.DataFrame],
    pol: Campaigns,
    channels: Channels,
    sample: pl.DataFrame,
    scenario: str,
    h0: int,
) -> World:
    """S3's world from its sealed tables and a sample of arrivals (their local hours)."""
    profile = t["merchant_zone_profile"]
    countries = sorted(
        set(profile["legal_country_iso"].cast(pl.String).to_list())
        | set(t["parties"]["country_iso"].cast(pl.String).unique().to_list())
        | set(t["site_timezones"]["legal_country_iso"].cast(pl.String).unique().to_list())
    )
    code = {c: i for i, c in enumerate(countries)}
    cells = build_cells(profile, code, channels, pol)
    places = build_places(
        t["site_timezones"], t["s1_site_weights"], t["terminals"], t["edge_catalogue"], code
    )
    entities = build_entities(t, code)
    cur = t["ref_currencies"].select("iso2", "currency", "minor_units")
    scale = {c: 1.0 for c in countries}
    for iso, currency, minor in cur.iter_rows():
        if iso in code:
            scale[iso] = channels.currency_price_scale.get(currency, 1.0) * 10.0 ** int(minor or 0)
    minor_per_usd = np.array([scale[c] for c in countries] + [1.0])
    roles = t["merchant_roles"].filter(pl.col("role").cast(pl.String) == "COLLUSIVE")["merchant_id"]
    collusive = np.intersect1d(roles.to_numpy().astype(np.uint64), cells.merchant_id)
    events = t["scenario_events"]
    if "scenario_id" in events.columns:
        events = events.filter(pl.col("scenario_id") == scenario)
    promos = events.filter(
        (pl.col("event_type").cast(pl.String) == "PROMO") & pl.col("merchant_id").is_not_null()
    )
    prof = hour_profile(sample)
    night = hour_cdf(prof, (pol.skew.night_hours.lo, pol.skew.night_hours.hi), pol.skew.night_weight)
    after = after_hours_cdf(prof, pol.types.MERCHANT_COLLUSION.after_hours_share)
    weekly = np.array([cells.weekly[cells.channel == c].sum() for c in range(len(CHANNELS))])
    return World(
        countries=countries,
        merchant_ids=np.sort(t["merchant_catalogue"]["merchant_id"].to_numpy().astype(np.uint64)),
        cells=cells,
        places=places,
        entities=entities,
        minor_per_usd=minor_per_usd,
        collusive=collusive,
        promos=promos.select("merchant_id"),
        hour_cdf=np.stack([night, after]),
        tz_offset_s=country_offsets(profile, t["tz_transitions"], code, h0),
        channel_share=weekly / weekly.sum(),
    )


def after_hours_cdf(profile: np.ndarray, share: float) -> np.ndarray:
    """The legit profile rescaled so that 20:00–05:59 local holds `share` of the flows."""
    lo, hi = AFTER_HOURS
    late = np.zeros(24, dtype=bool)
    late[lo:] = True
    late[: hi + 1] = True
    w = profile.copy()
    w[late] *= share / w[late].sum()
    w[~late] *= (1.0 - share) / w[~late].sum()
    cdf = np.zeros(25)
    np.cumsum(w, out=cdf[1:])
    cdf[-1] = 1.0
    return cdf


def read_tables(ctx: StateContext) -> dict[str, pl.DataFrame]:
    """The sealed tables S3 plans from; 6A's only in the columns build_entities uses (at the large preset
    they hold 23 M instruments and 15 M parties)."""
    out = {}
    for name in TABLES:
        if name in PER_SCENARIO:
            paths = ctx.sealed_parts(name, scenario=ctx.scenario)
            out[name] = pl.concat([read_input_table(p, state=ctx.state) for p in paths])
        else:
            out[name] = ctx.sealed_table(name, ENTITY_COLUMNS.get(name))
    return out


SAMPLE_MOD = 64  # the hour profile's sample: arrivals with splitmix64(arrival_id) mod 64 = 0


def arrivals(ctx: StateContext) -> tuple[int, pl.DataFrame]:
    """F (the scenario's arrivals, from the parts' metadata) and the local times of a sample of arrivals keyed
    by arrival id, so the hour profile, and every campaign time drawn from it, is the same for any shard
    count."""
    total, picked = 0, []
    for shard in range(ctx.shards):
        for path in ctx.sealed_parts("arrival_events", scenario=ctx.scenario, shard=shard):
            total += pq.ParquetFile(path).metadata.num_rows
            part = pl.read_parquet(path, columns=["arrival_id", "ts_local"])
            keep = splitmix64(part["arrival_id"].to_numpy()) % np.uint64(SAMPLE_MOD) == 0
            picked.append(part.filter(pl.Series(keep)).select("ts_local"))
    return total, pl.concat(picked) if picked else pl.DataFrame({"ts_local": []})


# --- outputs ---------------------------------------------------------------------------------------------
def ts(column: str, name: str) -> pl.Expr:
    return pl.col(column).cast(pl.Datetime("us", "UTC")).alias(name)


def publish(ctx: StateContext, plan: Plan, world: World) -> None:
    enum = pl.Enum
    ctx.publish(
        "breaches",
        plan.breaches.select(
            "breach_id",
            "merchant_id",
            pl.col("channel_code")
            .replace_strict(dict(enumerate(CHANNELS)), return_dtype=enum(list(CHANNELS)))
            .alias("channel"),
            ts("start_us", "start_ts"),
            ts("end_us", "end_ts"),
            "n_captured",
        ),
    )
    ctx.publish(
        "campaigns",
        plan.campaigns.sort("campaign_id").select(
            "campaign_id",
            pl.col("campaign_type").cast(enum(list(CAMPAIGN_TYPES))),
            pl.col("truth_label").cast(enum(["LEGIT", "FRAUD", "ABUSE"])),
            pl.col("mode").cast(enum(["BURST", "DISTRIBUTED"])),
            "breach_id",
            ts("start_us", "start_ts"),
            ts("end_us", "end_ts"),
            "n_targets",
            "planned_flows",
            "tactic_mask",
            "gamma",
        ),
    )
    ctx.publish(
        "campaign_targets",
        plan.targets.select(
            "campaign_id",
            pl.col("target_kind").cast(enum(TARGET_KINDS)),
            "target_id",
            ts("window_start_us", "window_start"),
            ts("window_end_us", "window_end"),
            "p_select",
            pl.col("target_role").cast(enum(TARGET_ROLES)),
        ).sort("campaign_id", "target_kind", "target_id"),  # the contract's order: target_kind as listed
    )
    f = plan.flows
    ctx.publish(
        "inserted_flows",
        f.select(
            pl.Series("shard", ctx.shard_of(f["merchant_id"].to_numpy()), dtype=pl.UInt16),
            "flow_id",
            pl.col("channel").cast(enum(list(CHANNELS))),
            "party_id",
            "account_id",
            "instrument_id",
            "device_id",
            "terminal_id",
            "ip_id",
            "payee_account_id",
            "is_cross_border",
            pl.lit("CAMPAIGN").cast(enum(ATTACH_MODES)).alias("attach_mode"),
            "device_known",
            "session_id",
            "session_seq",
            "merchant_id",
            pl.col("country_code")
            .replace_strict(dict(enumerate(world.countries)), return_dtype=enum(world.countries))
            .alias("legal_country_iso"),
            "site_id",
            "edge_id",
            ts("ts_us", "ts_utc"),
            "campaign_id",
            pl.col("phase").cast(enum(PHASES)),
            "tactic_mask",
            "amount_tilt",
            "decline_bias",
            "forced_amount_minor",
        ),
    )
    e = plan.events
    ctx.publish(
        "account_events",
        e.select(
            "account_event_id",
            "event_type",
            ts("ts_utc", "ts_utc"),
            "party_id",
            "account_id",
            "instrument_id",
            "device_id",
            "ip_id",
            "payee_account_id",
            pl.col("truth_label").cast(enum(["LEGIT", "FRAUD", "ABUSE"])),
            "campaign_id",
            "event_role",
        ),
    )


TARGET_KINDS = ["PARTY", "ACCOUNT", "INSTRUMENT", "MERCHANT", "DEVICE"]
TARGET_ROLES = [
    "VICTIM",
    "COMPROMISED_CARD",
    "MULE",
    "ORGANISER",
    "ABUSER",
    "SYNTHETIC_ID",
    "OPERATOR_DEVICE",
    "PROBED_MERCHANT",
    "CASHOUT_MERCHANT",
    "COLLUSIVE_MERCHANT",
    "BREACHED_MERCHANT",
]
ATTACH_MODES = ["DOMESTIC", "FOREIGN", "REGULAR", "CONTINUATION", "TRAVEL", "CAMPAIGN", "RETRY"]
PHASES = [
    "PROBE",
    "CASHOUT",
    "SPEND",
    "TRANSFER_OUT",
    "MULE_CASHOUT",
    "ONWARD_TRANSFER",
    "TAP",
    "PIN_ATTEMPT",
    "CLONE_SPEND",
    "CASH_ADVANCE",
    "SELECTED",
    "INFLATED",
    "REFUND_PAIR",
    "FIRST_ORDER",
]


def check_plan(plan: Plan, pol: Campaigns, horizon: tuple[int, int]) -> None:
    """Design §4.6 validation: the planned rate lies in the band; inserted flows lie inside the horizon."""
    rate = float(plan.facts["planned_rate"])  # type: ignore[arg-type]
    lo, hi = pol.fraud_rate_band
    if not lo <= rate <= hi:
        worst = max(plan.facts["by_type"].items(), key=lambda kv: kv[1]["planned_flows"])[0]  # type: ignore[union-attr]
        raise EngineError(
            "E_6B_PLAN_INFEASIBLE",
            f"the planned FRAUD+ABUSE rate {rate:.5f} lies outside the band [{lo}, {hi}] "
            f"(largest type {worst})",
            where="6B/campaigns.yaml fraud_rate_target",
            fix="widen fraud_rate_band, or lower min_instances or the types' flows_per_instance",
            state=STATE,
        )
    t = plan.flows["ts_us"]
    if t.len() and (t.min() < horizon[0] or t.max() >= horizon[1]):
        raise EngineError(
            "E_6B_PLAN_INFEASIBLE",
            "an inserted flow lies outside the horizon",
            where="inserted_flows.ts_utc",
            fix="report this: stratified starts keep every instance inside the horizon",
            state=STATE,
        )


def run(ctx: StateContext) -> None:
    horizon_pol: Horizon = ctx.policy("CFG/horizon.yaml")
    h0 = int(horizon_pol.start_utc.timestamp()) * US
    horizon = (h0, h0 + horizon_pol.days * DAY_US)
    pol: Campaigns = ctx.policy("6B/campaigns.yaml")
    channels: Channels = ctx.policy("6B/channels.yaml")
    truth: Truth = ctx.policy("6B/truth.yaml")
    flows_pol: Flows = ctx.policy("6B/flows.yaml")
    sessions: Sessions = ctx.policy("6B/sessions.yaml")
    flows_f, sample = arrivals(ctx)
    world = world_from_tables(read_tables(ctx), pol, channels, sample, str(ctx.scenario), h0)

    def record_plan(counter: tuple[np.ndarray, ...], value: np.ndarray) -> None:
        ctx.record_draws("plan", counter, draws=4, blocks=1, value=value)

    def record_events(counter: tuple[np.ndarray, ...], value: np.ndarray, lanes: int) -> None:
        ctx.record_draws("account_event", counter, draws=lanes, blocks=1, value=value)

    draws = Draws(ctx.family_key("plan"), record_plan)
    plan = plan_scenario(
        world,
        pol,
        truth,
        flows_pol,
        sessions,
        draws,
        ctx.family_key("account_event"),
        flows_f,
        horizon,
        record_events,
    )
    check_plan(plan, pol, horizon)
    publish(ctx, plan, world)
    ctx.facts.update(plan.facts)
    ctx.progress(
        f"{plan.facts['inserted_flows']} inserted flows, planned rate {plan.facts['planned_rate']:.5f}, "
        f"{plan.facts['breaches']} breaches, {plan.facts['account_events']} account events"
    )
