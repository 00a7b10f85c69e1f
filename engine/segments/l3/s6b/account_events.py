"""Non-monetary account events (amendment 10): legit parties log in from new devices, change contact details,
add payees and provision wallet tokens at base rates (flows.yaml account_events, per party per 28 d), and
account takeovers and APP scams are preceded by the same events (campaigns.yaml precursors with their lead
times), so the events alone do not reveal fraud.

RNG `6B.account_event` (a family of its own): ⟨party_id, type, 0, 0⟩ lane 0 is the count of that type for the
party over the horizon (Poisson by inversion, at most MAX_EVENTS); ⟨party_id, type, k, 0⟩ for its k-th event
(k ≥ 1): time (lane 0), instrument or device (lane 1), IP or payee (lane 2). Precursors draw from `6B.plan`
⟨type_code, instance, PRECURSOR, event type⟩: occurs (lane 0), lead (lane 1).
account_event_id = party_id << 20 | ordinal of the event within its party in (ts_utc, type) order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from engine.kernels.blocks import block_uniforms
from engine.segments.l3.s6b.plan_draws import HOUR_US, PRECURSOR, Draws
from engine.segments.l3.s6b.plan_world import ECOM, TRANSFER, World
from engine.segments.l3.s6b.policy import ACCOUNT_EVENT_TYPES, Campaigns

MAX_EVENTS = 16  # per party and type over a horizon: far above any base rate × 90 d (≤ 1 expected)
ORDINAL_BITS = 20
EVENT_TYPE = pl.Enum(list(ACCOUNT_EVENT_TYPES))
ROLE = pl.Enum(["LEGIT_CONTEXT", "FRAUD_PRECURSOR"])
Recorder = Callable[[tuple[np.ndarray, ...], np.ndarray, int], None]


def poisson_inverse(u: np.ndarray, lam: float, kmax: int) -> np.ndarray:
    """Poisson(λ) by inversion of one uniform, truncated at kmax (a loop over k ≤ kmax, vectorised over u)."""
    term = np.exp(-lam)
    cdf = term
    out = np.zeros(u.shape[0], dtype=np.int64)
    for k in range(1, kmax + 1):
        out += u > cdf
        term *= lam / k
        cdf += term
    return out


def legit_events(
    world: World,
    key: tuple[int, int],
    rates: dict[str, float],
    horizon: tuple[int, int],
    record: Recorder | None = None,
) -> pl.DataFrame:
    """Every party's legit events of each type over the horizon, uniform in time."""
    ent = world.entities
    days = (horizon[1] - horizon[0]) / (86_400 * 1e6)
    parts = []
    for code, name in enumerate(ACCOUNT_EVENT_TYPES):
        lam = rates[name] * days / 28.0
        u = block_uniforms(key, ent.party_id, code, 0, 0, lanes=1)[:, 0]
        if record is not None:
            record((ent.party_id, np.full(u.shape[0], code, np.uint64)), u, 1)
        count = poisson_inverse(u, lam, MAX_EVENTS)
        party = np.repeat(ent.party_id, count)
        k = 1 + np.arange(party.shape[0]) - np.repeat(np.cumsum(count) - count, count)
        ue = block_uniforms(key, party, code, k.astype(np.uint64), 0, lanes=3)
        if record is not None and party.shape[0]:
            record((party, np.full(party.shape[0], code, np.uint64), k.astype(np.uint64)), ue[:, 0], 3)
        ts = horizon[0] + np.floor(ue[:, 0] * (horizon[1] - horizon[0])).astype(np.int64)
        parts.append(fields(world, name, party, ts, ue[:, 1], ue[:, 2], np.zeros(party.shape[0], np.uint64)))
    return pl.concat(parts).with_columns(
        pl.lit("LEGIT", dtype=pl.String).alias("truth_label"),
        pl.lit(None, dtype=pl.UInt64).alias("campaign_id"),
        pl.lit("LEGIT_CONTEXT").alias("event_role"),
    )


def fields(
    world: World,
    name: str,
    party: np.ndarray,
    ts: np.ndarray,
    u1: np.ndarray,
    u2: np.ndarray,
    device: np.ndarray,
) -> pl.DataFrame:
    """The entity columns of events of one type: the party's own device and its IP (or `device` where given);
    a new payee (an account, drawn uniformly, the fraudster's mule where the caller sets it later); the card
    tokenised."""
    ent = world.entities
    own = ent.device(party, u1)
    device = np.where(device > 0, device, own)
    account = np.zeros(party.shape[0], np.uint64)
    instrument = np.zeros(party.shape[0], np.uint64)
    payee = np.zeros(party.shape[0], np.uint64)
    if name == "TOKEN_PROVISIONED":
        instrument, account = ent.instrument(party, np.full(party.shape[0], ECOM), u1)
    if name == "NEW_PAYEE_ADDED":
        _, account = ent.instrument(party, np.full(party.shape[0], TRANSFER), u1)
        n = ent.account_id.shape[0]
        payee = ent.account_id[np.minimum(np.floor(u2 * n).astype(np.int64), n - 1)]
    ip = ent.ip(device, u2)
    return pl.DataFrame(
        {
            "event_type": pl.Series([name] * party.shape[0], dtype=EVENT_TYPE),
            "ts_utc": ts,
            "party_id": pl.Series(party, dtype=pl.UInt64),
            "account_id": nullable(account),
            "instrument_id": nullable(instrument),
            "device_id": nullable(device),
            "ip_id": nullable(ip),
            "payee_account_id": nullable(payee),
        }
    )


def nullable(v: np.ndarray) -> pl.Series:
    """A u64 column with 0 as null."""
    v = np.asarray(v, dtype=np.uint64)
    return pl.select(pl.when(pl.Series(v != 0)).then(pl.Series(v, dtype=pl.UInt64))).to_series()


def precursors(
    world: World,
    pol: Campaigns,
    draws: Draws,
    kind: str,
    type_code: int,
    victims: pl.DataFrame,
    horizon_start: int,
) -> pl.DataFrame:
    """Precursor events of one type's instances. `victims`: instance, campaign_id, party_id, first_ts (the
    instance's first flow), device_id (the fraudster's, or 0 for the victim's own), payee (the mule account
    or 0). Each event happens with its type's probability, lead U[lo, hi] h before the first flow."""
    probs = getattr(pol.types, kind).precursors
    parts = []
    inst = victims["instance"].to_numpy()
    party = victims["party_id"].to_numpy().astype(np.uint64)
    first = victims["first_ts"].to_numpy()
    for code, name in enumerate(ACCOUNT_EVENT_TYPES):
        p = probs.get(name, 0.0)
        if p <= 0 or inst.shape[0] == 0:
            continue
        u = draws.u(type_code, inst, PRECURSOR, code)
        on = u[:, 0] < p
        lead = pol.precursor_lead_h[name]
        ts = first - np.floor((lead.lo + u[:, 1] * (lead.hi - lead.lo)) * HOUR_US).astype(np.int64) - 1
        ts = np.maximum(ts, horizon_start)
        device = (
            victims["device_id"].to_numpy().astype(np.uint64)
            if name == "NEW_DEVICE_LOGIN"
            else np.zeros(inst.shape[0], np.uint64)
        )
        frame = fields(world, name, party, ts, u[:, 2], u[:, 3], device)
        if name == "NEW_PAYEE_ADDED":
            frame = frame.with_columns(nullable(victims["payee"].to_numpy()).alias("payee_account_id"))
        parts.append(frame.with_columns(victims["campaign_id"].alias("campaign_id")).filter(pl.Series(on)))
    if not parts:
        return pl.DataFrame()
    label = pol.types.__getattribute__(kind).label
    return pl.concat(parts).with_columns(
        pl.lit(label, dtype=pl.String).alias("truth_label"),
        pl.col("campaign_id").cast(pl.UInt64),
        pl.lit("FRAUD_PRECURSOR").alias("event_role"),
    )


def with_ids(events: pl.DataFrame) -> pl.DataFrame:
    """account_event_id = party_id << 20 | ordinal in (ts_utc, type) order; sorted (party_id, ts_utc, id)."""
    return (
        events.sort("party_id", "ts_utc", "event_type", "campaign_id", nulls_last=False)
        .with_columns(
            (
                pl.col("party_id") * (1 << ORDINAL_BITS)
                + pl.int_range(pl.len()).over("party_id").cast(pl.UInt64)
            )
            .cast(pl.UInt64)
            .alias("account_event_id")
        )
        .with_columns(pl.col("event_role").cast(ROLE))
    )
