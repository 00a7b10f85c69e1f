"""Per campaign type, the skeleton of its instances' flows (design §4.2, amendments 2–4): who (a victim
party, a captured card or a non-existent number), on which channel, at which kind of merchant, and when
relative to the instance's start. `plan_realise` places skeletons (merchant, site or edge, terminal, device,
IP, tactics, absolute time). One function per type; arrays over all its instances' flows, no per-flow Python.

Skeleton columns (`COLUMNS` gives each one's default): instance, seq (flow index in its instance), phase,
channel, party (0: a non-existent card number), instrument (0: draw one of the party's for the channel),
payee, foreign (merchant outside the reference country), country (−1: the party's), merchant (0: draw),
kind (merchant weights: 0 plain, 1 cash-out goods, 2 flat), lo/hi (time span relative to the instance start,
µs), tilt (+1 up, −1 down, 0 none), forced (probe amount in USD-like major units, NaN none), bias (decline
bias), own (True: the victim's own device and IP; False: the swap tactics may replace them), pool (the
position of the row's card in its instance's breach pool, −1 none: card-fed types name positions, and the
cards are resolved once the breaches are placed), hours (0 night profile, 1 after-hours profile).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.core.errors import EngineError
from engine.segments.l3.s6b.plan_draws import (
    DAY_US,
    HOUR_US,
    TARGET,
    TIME,
    US,
    Draws,
    int_draw,
    range_draw,
)
from engine.segments.l3.s6b.plan_world import ATM, ECOM, POS, TRANSFER, Cells, World, cumulative, pick_in
from engine.segments.l3.s6b.policy import CampaignBase, Campaigns

STATE = "6B.S3"
PLAIN, CASH, FLAT = 0, 1, 2
TILT = {"UP": 1, "DOWN": -1, "NONE": 0}
COLUMNS: dict[str, tuple[object, type]] = {
    "instance": (0, np.int64),
    "seq": (0, np.int64),
    "phase": ("SPEND", object),
    "channel": (ECOM, np.int64),
    "party": (0, np.uint64),
    "instrument": (0, np.uint64),
    "payee": (0, np.uint64),
    "foreign": (False, np.bool_),
    "country": (-1, np.int64),
    "merchant": (0, np.uint64),
    "kind": (PLAIN, np.int64),
    "lo": (0, np.int64),
    "hi": (1, np.int64),
    "tilt": (0, np.int64),
    "forced": (np.nan, np.float64),
    "bias": (0.0, np.float64),
    "own": (False, np.bool_),
    "pool": (-1, np.int64),
    "hours": (0, np.int64),
}


def rows(n: int, **values: object) -> dict[str, np.ndarray]:
    """n skeleton rows: each column broadcast from its value or default."""
    return {
        name: np.broadcast_to(np.asarray(values.get(name, default), dtype=dtype), (n,)).copy()
        for name, (default, dtype) in COLUMNS.items()
    }


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([p[name] for p in parts]) for name in COLUMNS}


@dataclass(frozen=True)
class Env:
    """What every planner reads: the world, the campaign pack, the draws, the mule window length (truth.yaml
    mule_windows.after_campaign_days) and the baseline flows per µs of horizon (F / horizon)."""

    world: World
    pol: Campaigns
    draws: Draws
    mule_window_us: int
    flows_per_us: float


@dataclass(frozen=True)
class Instances:
    """One type's instances: sizes (planned flows: inserted + expected selected) and their draws."""

    kind: str
    type_code: int
    size: np.ndarray
    u0: np.ndarray  # INSTANCE j=0: start, start hour, size, gamma
    u1: np.ndarray  # INSTANCE j=1: mode, share, cross-border coin, length / delay
    u2: np.ndarray  # INSTANCE j=2: size, breach spend delay

    @property
    def n(self) -> int:
        return int(self.size.shape[0])


@dataclass
class Target:
    instance: np.ndarray
    kind: str  # PARTY, ACCOUNT, INSTRUMENT, MERCHANT, DEVICE
    target_id: np.ndarray
    role: str
    p_select: float | np.ndarray = 0.0  # per target row (an array) or one value
    window: tuple[np.ndarray, np.ndarray] | None = None  # relative to the instance start (µs)


@dataclass
class TypePlan:
    """A type planner's result: the skeleton, per-instance durations, targets, the expected selected flows
    per instance (selection types), per-instance mode and breach, and bursts that fix one merchant."""

    skeleton: dict[str, np.ndarray]
    duration: np.ndarray
    targets: list[Target] = field(default_factory=list)
    selected: np.ndarray | None = None
    mode: list[str | None] | None = None
    one_merchant: np.ndarray | None = None  # per instance: every flow at its first flow's merchant
    one_country: np.ndarray | None = None  # per instance: every flow in its first flow's merchant country


def infeasible(kind: str, what: str) -> EngineError:
    return EngineError(
        "E_6B_PLAN_INFEASIBLE",
        f"{kind}: {what}",
        where=f"6B/campaigns.yaml types.{kind}",
        fix="disable the type or build a world that holds its targets",
        state=STATE,
    )


def pick_parties(world: World, weights: np.ndarray, u: np.ndarray, kind: str) -> np.ndarray:
    """Parties by weight: one vectorised inverse-CDF lookup over all parties."""
    cum = cumulative(weights)
    if cum[-1] <= 0:
        raise infeasible(kind, "no party qualifies as a target in this world")
    n = weights.shape[0]
    idx = pick_in(cum, np.zeros(u.shape[0], dtype=np.int64), np.full(u.shape[0], n, dtype=np.int64), u)
    return world.entities.party_id[idx]


def flat(total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(instance, seq) of total[i] rows per instance."""
    total = np.asarray(total, dtype=np.int64)
    inst = np.repeat(np.arange(total.shape[0]), total)
    seq = np.arange(inst.shape[0]) - np.repeat(np.cumsum(total) - total, total)
    return inst, seq


def hours(u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.floor(range_draw(u, lo, hi) * HOUR_US).astype(np.int64)


def fixed_home(cells: Cells, merchant: np.ndarray) -> np.ndarray:
    """Each merchant's largest demand cell."""
    order = np.lexsort((-cells.weekly, cells.merchant_id))
    first = np.searchsorted(cells.merchant_id[order], merchant)
    return order[np.minimum(first, order.shape[0] - 1)]


def served(world: World, channel: int) -> np.ndarray:
    """Per party: its country has merchant demand on `channel`."""
    countries = np.unique(world.cells.country[world.cells.channel == channel])
    return np.isin(world.entities.country, countries)


def able(world: World, *channels: int) -> np.ndarray:
    """Parties holding an instrument for every channel and living where that channel has merchant demand.
    Legit flows are drawn merchant first (6B.S1 takes the customer from the merchant's country with
    p_domestic), campaigns party first; without the second condition a victim or mule whose country has no ATM
    or money-transfer merchant would be sent abroad by construction, and cross-border alone would separate
    ATM and TRANSFER fraud (AUC 0.79–0.84 on default)."""
    ok = np.ones(world.entities.party_id.shape[0], dtype=bool)
    for c in channels:
        ok &= world.entities.has_instrument(c) & served(world, c)
    return ok


def role_is(world: World, *roles: str) -> np.ndarray:
    return np.isin(world.entities.role, roles)


def spread(
    i: np.ndarray, seq: np.ndarray, count: np.ndarray, length: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """Offsets of `count` flows stratified over [0, length): sorted by seq, so a burst keeps its order."""
    return np.floor((seq + u) / np.maximum(count[i], 1) * length[i]).astype(np.int64)


def expected_flows(
    world: World, party: np.ndarray, share: float, window: np.ndarray, f_per_us: float
) -> np.ndarray:
    """A party's expected flows in a window: F · its activity share · a channel share · window / horizon."""
    ent = world.entities
    a = ent.activity[ent.party_index(party)] / ent.activity.sum()
    return a * share * window * f_per_us


# --- card testing (amendment 4) -------------------------------------------------------------------------
def card_testing(env: Env, inst: Instances) -> TypePlan:
    """Burst (one merchant, 10–120 min, non-existent numbers among the probes) or distributed (one probe at
    each of many merchants over 2–8 h, chosen) probes of captured cards; 10–40 % of the valid cards cashed
    out 1–10 d later, up-tilted, at resaleable-goods merchants. The budget scales the shapes down."""
    draws = env.draws
    p = env.pol.types.CARD_TESTING
    burst = inst.u1[:, 0] < p.mode_share["BURST"]
    share = range_draw(inst.u1[:, 1], p.cashout_card_share.lo, p.cashout_card_share.hi)
    inv = np.where(burst, p.invalid_card_share, 0.0)
    probes = np.clip(np.round(inst.size / (1.0 + share * (1.0 - inv))).astype(np.int64), 1, inst.size)
    cash = inst.size - probes
    minutes = range_draw(inst.u1[:, 3], p.burst_minutes.lo, p.burst_minutes.hi)
    length = np.where(burst, minutes * 60 * US, minutes / p.burst_minutes.hi * 6 * HOUR_US + 2 * HOUR_US)
    length = length.astype(np.int64)
    i, j = flat(probes)
    ut = draws.u(inst.type_code, i, TIME, j)
    ua = draws.u(inst.type_code, i, TARGET, j)
    invalid = ua[:, 2] < inv[i]
    lo = spread(i, j, probes, length, ut[:, 3])
    z = p.probe_amounts["ZERO"]
    amount = np.where(
        ua[:, 3] < z,
        0.0,
        np.where(
            ua[:, 3] < z + p.probe_amounts["MICRO"],
            range_draw(ut[:, 2], p.micro_range.lo, p.micro_range.hi),
            range_draw(ut[:, 2], p.small_range.lo, p.small_range.hi),
        ),
    )
    # decline share ≈ .85 overall: non-existent numbers always decline, valid probes make up the rest
    valid_bias = np.clip((p.decline_share - inv) / np.maximum(1.0 - inv, 1e-9), 0.0, 1.0)
    probe_rows = rows(
        i.size,
        instance=i,
        seq=j,
        phase="PROBE",
        pool=np.where(invalid, -1, j),
        foreign=(inst.u1[:, 2] < p.cross_border_share)[i],
        kind=FLAT,
        lo=lo,
        hi=lo + 1,
        forced=amount,
        bias=np.where(invalid, 1.0, valid_bias[i]),
    )
    ci, cj = flat(cash)
    uc = draws.u(inst.type_code, ci, TIME, probes[ci] + cj)
    delay = np.floor(range_draw(uc[:, 0], p.cashout_delay_d.lo, p.cashout_delay_d.hi) * DAY_US).astype(
        np.int64
    )
    clo = length[ci] + delay
    cash_rows = rows(
        ci.size,
        instance=ci,
        seq=probes[ci] + cj,
        phase="CASHOUT",
        pool=cj,
        foreign=uc[:, 1] < p.cross_border_share,
        kind=CASH,
        lo=clo,
        hi=clo + HOUR_US,
        tilt=1,
    )
    duration = length + np.where(cash > 0, int(p.cashout_delay_d.hi * DAY_US) + HOUR_US, 0) + 1
    return TypePlan(
        concat([probe_rows, cash_rows]),
        duration,
        mode=["BURST" if b else "DISTRIBUTED" for b in burst],
        one_merchant=burst,
    )


# --- CNP_STOLEN (amendment 2) ---------------------------------------------------------------------------
def cnp_stolen(env: Env, inst: Instances) -> TypePlan:
    """Captured cards bought from one breach, each spent online 1–5 times within 0.5–72 h, mostly abroad
    (cross_border_share) and at resaleable-goods merchants, amounts tilted up."""
    draws = env.draws
    p = env.pol.types.CNP_STOLEN
    mean = (p.purchases_per_card.lo + p.purchases_per_card.hi) / 2.0
    ncards = np.clip(
        np.round(inst.size / mean).astype(np.int64), p.cards_per_instance.lo, p.cards_per_instance.hi
    )
    ncards = np.minimum(ncards, inst.size)
    dur = hours(inst.u0[:, 2], p.duration_h.lo, p.duration_h.hi)
    i, j = flat(inst.size)
    c = j % ncards[i]  # purchases split evenly over the instance's cards
    ua = draws.u(inst.type_code, i, TARGET, c)
    window = hours(ua[:, 1], p.spend_window_h.lo, p.spend_window_h.hi)
    window = np.minimum(window, dur[i])
    anchor = np.floor(ua[:, 2] * (dur[i] - window)).astype(np.int64)
    ut = draws.u(inst.type_code, i, TIME, j)
    sk = rows(
        i.size,
        instance=i,
        seq=j,
        phase="SPEND",
        pool=c,
        foreign=ut[:, 3] < p.cross_border_share,
        kind=CASH,
        lo=anchor,
        hi=anchor + np.maximum(window, 1),
        tilt=TILT[p.amount_tilt],
    )
    return TypePlan(sk, dur + 1)


# --- ACCOUNT_TAKEOVER -----------------------------------------------------------------------------------
def account_takeover(env: Env, inst: Instances) -> TypePlan:
    """A digital-affinity victim; within 0.5–48 h of the takeover 1–8 ECOM purchases on its own cards from the
    fraudster's device and IP (swap tactics), and 1–3 TRANSFERs from its bank account to mule accounts."""
    world, draws = env.world, env.draws
    p = env.pol.types.ACCOUNT_TAKEOVER
    ent = world.entities
    both = able(world, ECOM, TRANSFER)
    w = ent.activity * ent.digital * np.where(both, 1.0, 0.0)
    if w.sum() <= 0:
        w = ent.activity * ent.digital * able(world, ECOM)
    victim = pick_parties(
        world, w, draws.u(inst.type_code, np.arange(inst.n), TARGET, 0)[:, 0], "ACCOUNT_TAKEOVER"
    )
    has_bank = ent.has_instrument(TRANSFER)[ent.party_index(victim)] & (ent.mule_account.shape[0] > 0)
    transfers = np.where(has_bank, int_draw(inst.u1[:, 1], p.transfers.lo, p.transfers.hi), 0)
    transfers = np.minimum(transfers, inst.size - 1)
    dur = hours(inst.u0[:, 2], p.duration_h.lo, p.duration_h.hi)
    i, j = flat(inst.size)
    ut = draws.u(inst.type_code, i, TIME, j)
    lo = spread(i, j, inst.size, dur, ut[:, 3])
    is_tx = j >= inst.size[i] - transfers[i]  # the transfers close the takeover
    payee = (
        world.entities.mule_account[
            np.floor(ut[:, 2] * max(ent.mule_account.shape[0], 1)).astype(np.int64)
            % max(ent.mule_account.shape[0], 1)
        ]
        if ent.mule_account.shape[0]
        else np.zeros(i.size, dtype=np.uint64)
    )
    sk = rows(
        i.size,
        instance=i,
        seq=j,
        phase=np.where(is_tx, "TRANSFER_OUT", "SPEND"),
        channel=np.where(is_tx, TRANSFER, ECOM),
        party=victim[i],
        payee=np.where(is_tx, payee, 0),
        foreign=(ut[:, 1] < p.cross_border_share) & ~is_tx,
        kind=np.where(is_tx, PLAIN, CASH),
        lo=lo,
        hi=lo + 1,
        tilt=TILT[p.amount_tilt],
    )
    targets = [Target(np.arange(inst.n), "PARTY", victim, "VICTIM")]
    targets += mule_targets(env, i[is_tx], payee[is_tx], lo[is_tx])
    return TypePlan(sk, dur + 1, targets=targets)


def mule_targets(env: Env, inst: np.ndarray, payee: np.ndarray, first: np.ndarray) -> list[Target]:
    """The mule behind each payee account, active from the instance's first transfer to it for
    after_campaign_days (amendment 6: mule flows are ABUSE only inside activation windows; 6B.S4 applies
    the window)."""
    if inst.size == 0:
        return []
    ent = env.world.entities
    owner = ent.mule_account_party[np.searchsorted(ent.mule_account, payee)]
    uniq, where = np.unique(np.stack([inst, owner.astype(np.int64)]), axis=1, return_inverse=True)
    start = np.full(uniq.shape[1], np.iinfo(np.int64).max)
    np.minimum.at(start, where.ravel(), first)
    return [
        Target(uniq[0], "PARTY", uniq[1].astype(np.uint64), "MULE", 0.0, (start, start + env.mule_window_us))
    ]


def pick_mule_accounts(env: Env, u: np.ndarray, cash: bool = False) -> np.ndarray:
    """Mule accounts by uniform; with `cash`, among mules who can withdraw at home (a card and cash machines
    in their country) when there are any, so a scam's cash-out stays domestic instead of becoming
    transfers."""
    ent = env.world.entities
    accounts = ent.mule_account
    if cash:
        at_home = able(env.world, ATM)[ent.party_index(ent.mule_account_party)]
        accounts = accounts[at_home] if at_home.any() else accounts
    if accounts.shape[0] == 0:
        return np.zeros(u.shape[0], dtype=np.uint64)
    return accounts[np.minimum(np.floor(u * accounts.shape[0]).astype(np.int64), accounts.shape[0] - 1)]


# --- APP_SCAM -------------------------------------------------------------------------------------------
def app_scam(env: Env, inst: Instances) -> TypePlan:
    """A victim (RETIRED/MATURE × 3) sends 1–3 TRANSFERs from its own device and IP to a mule account; the
    mule cashes out 10 min–24 h later at ATMs in its country or by onward transfers to another mule."""
    world, draws = env.world, env.draws
    p = env.pol.types.APP_SCAM
    ent = world.entities
    factor = np.ones(ent.party_id.shape[0])
    for seg, f in p.victim_segment_factor.items():
        factor = np.where(ent.segment == seg, f, factor)
    w = ent.activity * factor * able(world, TRANSFER) * (ent.role != "MULE")
    victim = pick_parties(world, w, draws.u(inst.type_code, np.arange(inst.n), TARGET, 0)[:, 0], "APP_SCAM")
    if ent.mule_account.shape[0] == 0:
        raise infeasible("APP_SCAM", "6A holds no mule account to receive the scam transfers")
    ut0 = draws.u(inst.type_code, np.arange(inst.n), TARGET, 1)
    payee = pick_mule_accounts(env, ut0[:, 0], cash=True)
    mule = ent.mule_account_party[np.searchsorted(ent.mule_account, payee)]
    transfers = np.minimum(int_draw(inst.u1[:, 1], p.transfers.lo, p.transfers.hi), inst.size)
    dur = hours(inst.u0[:, 2], p.duration_h.lo, p.duration_h.hi)
    pay_len = dur // 4
    i, j = flat(inst.size)
    ut = draws.u(inst.type_code, i, TIME, j)
    victim_leg = j < transfers[i]
    lo_v = spread(i, j, transfers, pay_len, ut[:, 3])
    delay = np.floor(range_draw(ut[:, 0], p.cashout_delay_s.lo, p.cashout_delay_s.hi) * US).astype(np.int64)
    lo_m = np.minimum(pay_len[i] + delay, dur[i] - 1)
    # a mule without a card, or in a country without cash machines, moves the money on instead
    onward = (ut[:, 1] < p.onward_transfer_share) | ~able(world, ATM)[ent.party_index(mule[i])]
    lo = np.where(victim_leg, lo_v, lo_m)
    sk = rows(
        i.size,
        instance=i,
        seq=j,
        phase=np.where(victim_leg, "TRANSFER_OUT", np.where(onward, "ONWARD_TRANSFER", "MULE_CASHOUT")),
        channel=np.where(victim_leg | onward, TRANSFER, ATM),
        party=np.where(victim_leg, victim[i], mule[i]),
        payee=np.where(victim_leg, payee[i], np.where(onward, pick_mule_accounts(env, ut[:, 2]), 0)),
        foreign=victim_leg & (ut[:, 2] < p.cross_border_share),
        lo=lo,
        hi=lo + 1,
        tilt=TILT[p.amount_tilt],
        own=victim_leg,
    )
    targets = [Target(np.arange(inst.n), "PARTY", victim, "VICTIM")]
    targets += mule_targets(env, np.arange(inst.n), payee, np.zeros(inst.n, dtype=np.int64))
    boss = ent.controller[ent.party_index(mule)]
    has = np.flatnonzero(boss > 0)
    targets.append(Target(has, "PARTY", boss[has], "ORGANISER"))
    return TypePlan(sk, dur + 1, targets=targets)


# --- selection types: BUST_OUT, MERCHANT_COLLUSION, REFUND_ABUSE ----------------------------------------
def selection(
    p: CampaignBase, expected: np.ndarray, size: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p_select from the target's expected activity (design §4.6 step 1): the policy's p_select, lowered so
    that selected baseline flows fill about (1 − p(NEW_FLOW)) of the instance; inserted flows fill the rest
    (at least one). Returns (p_select, expected selected, inserted) per instance."""
    share = 1.0 - p.tactics.get("NEW_FLOW", 0.0)
    p_sel = np.minimum(p.p_select, share * size / np.maximum(expected, 1e-9))  # type: ignore[attr-defined]
    selected = p_sel * expected
    return p_sel, selected, np.maximum(1, size - np.round(selected).astype(np.int64))


def bust_out(env: Env, inst: Instances) -> TypePlan:
    """A SYNTHETIC_ID party over 3–10 d: its baseline flows selected with p_select, plus inserted high-value
    ECOM purchases and ATM cash advances filling the rest of the instance's size."""
    world, draws = env.world, env.draws
    p = env.pol.types.BUST_OUT
    ent = world.entities
    w = ent.activity * role_is(world, "SYNTHETIC_ID") * able(world, ECOM)
    party = pick_parties(world, w, draws.u(inst.type_code, np.arange(inst.n), TARGET, 0)[:, 0], "BUST_OUT")
    dur = hours(inst.u0[:, 2], p.duration_h.lo, p.duration_h.hi)
    p_sel, selected, inserted = selection(
        p, expected_flows(world, party, 1.0, dur, env.flows_per_us), inst.size
    )
    i, j = flat(inserted)
    ut = draws.u(inst.type_code, i, TIME, j)
    atm = (ut[:, 1] < p.cash_advance_share) & ent.has_instrument(ATM)[ent.party_index(party[i])]
    sk = rows(
        i.size,
        instance=i,
        seq=j,
        phase=np.where(atm, "CASH_ADVANCE", "SPEND"),
        channel=np.where(atm, ATM, ECOM),
        party=party[i],
        foreign=ut[:, 2] < p.cross_border_share,
        kind=np.where(atm, PLAIN, CASH),
        lo=0,
        hi=dur[i],
        tilt=TILT[p.amount_tilt],
        own=True,
    )
    targets = [Target(np.arange(inst.n), "PARTY", party, "SYNTHETIC_ID", p_sel)]
    return TypePlan(sk, dur + 1, targets=targets, selected=selected)


def merchant_collusion(env: Env, inst: Instances) -> TypePlan:
    """A COLLUSIVE merchant over 7–21 d: its baseline flows selected (p_select) for inflation, plus inserted
    flows on other parties' cards (compromised cards run through the terminal) clustered after hours."""
    world, draws = env.world, env.draws
    p = env.pol.types.MERCHANT_COLLUSION
    if world.collusive.shape[0] == 0:
        raise infeasible("MERCHANT_COLLUSION", "no COLLUSIVE merchant has demand in this world")
    pick = np.minimum(
        np.floor(draws.u(inst.type_code, np.arange(inst.n), TARGET, 0)[:, 0] * world.collusive.shape[0]),
        world.collusive.shape[0] - 1,
    )
    merchant = world.collusive[pick.astype(np.int64)]
    cells = world.cells
    cell = fixed_home(cells, merchant)
    dur = hours(inst.u0[:, 2], p.duration_h.lo, p.duration_h.hi)
    share = cells.weekly[cell] / cells.weekly.sum()
    p_sel, selected, inserted = selection(p, share * dur * env.flows_per_us, inst.size)
    i, j = flat(inserted)
    channel = cells.channel[cell][i]
    w = world.entities.activity * able(world, POS, ECOM)
    uc = draws.u(inst.type_code, i, TARGET, 1 + j)
    domestic = world.entities.in_country(w, cells.country[cell][i], uc[:, 0])
    anywhere = pick_parties(world, w, uc[:, 0], "MERCHANT_COLLUSION")
    party = np.where(uc[:, 1] < p.cross_border_share, anywhere, domestic)
    sk = rows(
        i.size,
        instance=i,
        seq=j,
        phase="INFLATED",
        channel=channel,
        party=party,
        merchant=merchant[i],
        country=cells.country[cell][i],
        lo=0,
        hi=dur[i],
        tilt=TILT[p.amount_tilt],
        hours=1,
    )
    targets = [Target(np.arange(inst.n), "MERCHANT", merchant, "COLLUSIVE_MERCHANT", p_sel)]
    return TypePlan(sk, dur + 1, targets=targets, selected=selected)


def refund_abuse(env: Env, inst: Instances) -> TypePlan:
    """FRIENDLY_FRAUD_PRONE-weighted parties over 14–30 d: their cleared ECOM flows selected (p_select), plus
    inserted purchase-and-refund pairs (REFUND_INJECTION) filling the rest."""
    world, draws = env.world, env.draws
    p = env.pol.types.REFUND_ABUSE
    ent = world.entities
    w = ent.activity * np.where(ent.role == "FRIENDLY_FRAUD_PRONE", 15.0, 1.0) * able(world, ECOM)
    party = pick_parties(
        world, w, draws.u(inst.type_code, np.arange(inst.n), TARGET, 0)[:, 0], "REFUND_ABUSE"
    )
    dur = hours(inst.u0[:, 2], p.duration_h.lo, p.duration_h.hi)
    expected = expected_flows(world, party, float(world.channel_share[ECOM]), dur, env.flows_per_us)
    p_sel, selected, inserted = selection(p, expected, inst.size)
    i, j = flat(inserted)
    ut = draws.u(inst.type_code, i, TIME, j)
    sk = rows(
        i.size,
        instance=i,
        seq=j,
        phase="REFUND_PAIR",
        party=party[i],
        foreign=ut[:, 2] < p.cross_border_share,
        lo=0,
        hi=dur[i],
        tilt=TILT[p.amount_tilt],
        own=True,
    )
    targets = [Target(np.arange(inst.n), "PARTY", party, "ABUSER", p_sel)]
    return TypePlan(sk, dur + 1, targets=targets, selected=selected)


# --- card-present: LOST_STOLEN, COUNTERFEIT -------------------------------------------------------------
def lost_stolen(env: Env, inst: Instances) -> TypePlan:
    """A stolen card: 3–10 contactless taps at POS near home within 0.25–6 h (amounts tilted down, under the
    no-CVM limit), then with p_atm_attempt 1–3 wrong-PIN attempts at an ATM (always declined)."""
    world, draws = env.world, env.draws
    p = env.pol.types.LOST_STOLEN
    ent = world.entities
    victim = pick_parties(
        world,
        ent.activity * able(world, POS),
        draws.u(inst.type_code, np.arange(inst.n), TARGET, 0)[:, 0],
        "LOST_STOLEN",
    )
    card, _ = ent.instrument(
        victim, np.full(inst.n, POS), draws.u(inst.type_code, np.arange(inst.n), TARGET, 1)[:, 0]
    )
    atm_ok = (inst.u1[:, 1] < p.p_atm_attempt) & ent.has_instrument(ATM)[ent.party_index(victim)]
    pins = np.where(
        atm_ok, np.minimum(int_draw(inst.u1[:, 2], p.pin_attempts.lo, p.pin_attempts.hi), inst.size - 1), 0
    )
    taps = inst.size - pins
    window = hours(inst.u1[:, 3], p.taps_window_h.lo, p.taps_window_h.hi)
    i, j = flat(inst.size)
    ut = draws.u(inst.type_code, i, TIME, j)
    tap = j < taps[i]
    lo = np.where(
        tap, spread(i, j, taps, window, ut[:, 3]), window[i] + np.floor(ut[:, 3] * HOUR_US).astype(np.int64)
    )
    sk = rows(
        i.size,
        instance=i,
        seq=j,
        phase=np.where(tap, "TAP", "PIN_ATTEMPT"),
        channel=np.where(tap, POS, ATM),
        party=victim[i],
        instrument=np.where(tap, card[i], 0),
        foreign=ut[:, 2] < p.cross_border_share,
        lo=lo,
        hi=lo + 1,
        tilt=np.where(tap, TILT[p.amount_tilt], 0),
        bias=np.where(tap, 0.0, 1.0),
    )
    duration = window + HOUR_US + 1
    targets = [
        Target(np.arange(inst.n), "PARTY", victim, "VICTIM"),
        Target(np.arange(inst.n), "INSTRUMENT", card, "COMPROMISED_CARD"),
    ]
    return TypePlan(sk, duration, targets=targets)


def counterfeit(env: Env, inst: Instances) -> TypePlan:
    """Cloned captured cards in a card-present burst abroad over 1–48 h: POS spends and ATM withdrawals
    (atm_share) in one foreign country, amounts tilted up."""
    draws = env.draws
    p = env.pol.types.COUNTERFEIT
    dur = hours(inst.u0[:, 2], p.duration_h.lo, p.duration_h.hi)
    ncards = np.maximum(1, inst.size // 4)
    i, j = flat(inst.size)
    c = j % ncards[i]
    ut = draws.u(inst.type_code, i, TIME, j)
    atm = ut[:, 1] < p.atm_share
    lo = spread(i, j, inst.size, dur, ut[:, 3])
    sk = rows(
        i.size,
        instance=i,
        seq=j,
        phase=np.where(atm, "CASHOUT", "CLONE_SPEND"),
        channel=np.where(atm, ATM, POS),
        pool=c,
        foreign=ut[:, 2] < p.cross_border_share,
        kind=np.where(atm, PLAIN, CASH),
        lo=lo,
        hi=lo + 1,
        tilt=TILT[p.amount_tilt],
    )
    return TypePlan(sk, dur + 1, one_country=np.ones(inst.n, dtype=bool))


# --- PROMO_ABUSE ----------------------------------------------------------------------------------------
def promo_abuse(env: Env, inst: Instances) -> TypePlan:
    """5–30 SYNTHETIC_ID / PROMO_ABUSER parties sharing one operator device place small first orders at one
    merchant; the merchant is one running a 5A PROMO (any ECOM merchant where the scenario has none)."""
    world, draws = env.world, env.draws
    p = env.pol.types.PROMO_ABUSE
    ent = world.entities
    w = ent.activity * role_is(world, "SYNTHETIC_ID", "PROMO_ABUSER") * able(world, ECOM)
    if w.sum() <= 0:
        w = ent.activity * able(world, ECOM)
    nparty = np.minimum(int_draw(inst.u1[:, 1], p.parties.lo, p.parties.hi), inst.size)
    promos = world.promos
    cells = world.cells
    ecom = np.flatnonzero(cells.channel == ECOM)
    merchant = np.zeros(inst.n, dtype=np.uint64)
    pm = promos["merchant_id"].to_numpy().astype(np.uint64) if promos.height else np.zeros(0, dtype=np.uint64)
    pm = pm[np.isin(pm, cells.merchant_id[ecom])]
    pool = np.unique(pm) if pm.shape[0] else np.unique(cells.merchant_id[ecom])
    k = np.minimum(np.floor(inst.u1[:, 3] * pool.shape[0]).astype(np.int64), pool.shape[0] - 1)
    merchant = pool[k]
    dur = hours(inst.u0[:, 2], p.duration_h.lo, p.duration_h.hi)
    i, j = flat(inst.size)
    who = j % nparty[i]
    # promotions are domestic: the abusers live in the promoting merchant's main country
    home = world.cells.country[fixed_home(world.cells, merchant)]
    party = ent.in_country(w, home[i], draws.u(inst.type_code, i, TARGET, 1 + who)[:, 0])
    sk = rows(
        i.size,
        instance=i,
        seq=j,
        phase="FIRST_ORDER",
        party=party,
        merchant=merchant[i],
        lo=0,
        hi=dur[i],
        tilt=TILT[p.amount_tilt],
    )
    uniq = np.unique(np.stack([i, party.astype(np.int64)]), axis=1)
    targets = [
        Target(uniq[0], "PARTY", uniq[1].astype(np.uint64), "ABUSER"),
        Target(np.arange(inst.n), "MERCHANT", merchant, "PROBED_MERCHANT"),
    ]
    return TypePlan(sk, dur + 1, targets=targets)
