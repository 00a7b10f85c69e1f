"""Place a type's skeleton flows: card from the breach pool, instrument of the party for the channel, merchant
cell (domestic or abroad, plain / cash-out / flat weights), site and terminal (card present) or CDN edge
(card not present), device and IP (the party's own, or the instance's operator device and anonymous IP under
the swap tactics), tactic bits, amount tilt, probe amounts in the merchant currency, and the absolute time
(the instance start plus the flow's span, drawn with the night-skewed local-hour profile of amendment 1).

Draws (`6B.plan`, see plan_draws): PLACE (merchant, instrument, site/edge, terminal), TACTIC and TACTIC2
(one coin per tactic, the anonymous-IP kind), WHEN (the time inside the span), per flow j = seq; the
instance's operator device and anonymous IPs from its TARGET block j = 2^20.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.segments.l3.s6b.breaches import Pools
from engine.segments.l3.s6b.plan_draws import PLACE, TACTIC, TACTIC2, TARGET, WHEN, weighted_time
from engine.segments.l3.s6b.plan_types import Env, Instances, TypePlan, infeasible
from engine.segments.l3.s6b.plan_world import ATM, POS, Cells, World
from engine.segments.l3.s6b.policy import CHANNELS, TACTIC_BITS, TACTICS

INSTANCE_POOL = 1 << 20  # TARGET block index of the instance's operator device and anonymous IPs
CP = (POS, ATM)
PROBE_P_VPN = 0.6  # design §4.2 IP_SWAP_ANON: 60 % VPN / datacentre, 40 % residential proxy


def fixed_cells(cells: Cells, merchant: np.ndarray, channel: np.ndarray, country: np.ndarray) -> np.ndarray:
    """The cell of a given merchant on the channel (in `country` when ≥ 0, else its largest), −1 if none."""
    frame = pl.DataFrame(
        {"m": cells.merchant_id, "ch": cells.channel, "cc": cells.country, "w": cells.weekly}
    ).with_row_index("cell")
    want = pl.DataFrame({"m": merchant, "ch": channel, "cc": country}).with_row_index("row")
    exact = want.join(frame, on=["m", "ch", "cc"], how="left").select("row", pl.col("cell").alias("exact"))
    best = frame.sort("w", descending=True).unique(["m", "ch"], keep="first").select("m", "ch", "cell")
    loose = want.join(best, on=["m", "ch"], how="left").select("row", pl.col("cell").alias("loose"))
    both = exact.join(loose, on="row").sort("row")
    cell = np.where(country >= 0, both["exact"].fill_null(-1), both["loose"].fill_null(-1))
    return np.where(cell >= 0, cell, both["loose"].fill_null(-1)).astype(np.int64)


def first_of_instance(instance: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each row's instance's value at its first row (rows are grouped by instance, in seq order)."""
    first = np.unique(instance, return_index=True)
    lookup = np.zeros(int(instance.max()) + 1 if instance.size else 0, dtype=np.int64)
    lookup[first[0]] = first[1]
    return values[lookup[instance]]


def instance_home(instance: np.ndarray, home: np.ndarray, n: int) -> np.ndarray:
    """Per row, its instance's first known home country (0 where none is known): the reference country of
    a non-existent card number is its instance's other cards' country."""
    known = np.flatnonzero(home >= 0)
    out = np.zeros(n, dtype=np.int64)
    inst, first = np.unique(instance[known], return_index=True)
    out[inst] = home[known[first]]
    return out[instance]


def tactic_bits(env: Env, inst: Instances, sk: dict[str, np.ndarray]) -> np.ndarray:
    """One coin per tactic (TACTIC, TACTIC2 blocks); NEW_FLOW always (every inserted flow); swaps only where
    the device and IP are not the victim's own; SITE_SHIFT only card present; clearing suppression only on
    card-testing probes (design §4.2)."""
    probs = getattr(env.pol.types, inst.kind).tactics
    t1 = env.draws.u(inst.type_code, sk["instance"], TACTIC, sk["seq"])
    t2 = env.draws.u(inst.type_code, sk["instance"], TACTIC2, sk["seq"])
    coins = np.concatenate([t1, t2[:, :3]], axis=1)
    order = [t for t in TACTICS if t != "NEW_FLOW"]
    mask = np.full(sk["seq"].shape[0], TACTIC_BITS["NEW_FLOW"], dtype=np.int64)
    for k, tactic in enumerate(order):
        mask |= np.where(coins[:, k] < probs.get(tactic, 0.0), TACTIC_BITS[tactic], 0)
    cp = np.isin(sk["channel"], CP)
    swap = TACTIC_BITS["IP_SWAP_ANON"] | TACTIC_BITS["DEVICE_SWAP_SHARED"]
    mask = np.where(sk["own"] | cp, mask & ~swap, mask)
    mask = np.where(cp, mask, mask & ~TACTIC_BITS["SITE_SHIFT"])
    mask = np.where(sk["phase"] == "PROBE", mask, mask & ~TACTIC_BITS["CLEARING_SUPPRESSION"])
    mask = np.where(np.isnan(sk["forced"]), mask, mask | TACTIC_BITS["AMOUNT_SHIFT"])
    return mask, t2[:, 3]


def realise(
    env: Env,
    inst: Instances,
    plan: TypePlan,
    start: np.ndarray,
    gamma: np.ndarray,
    campaign_id: np.ndarray,
    pools: Pools | None,
    breach: np.ndarray | None,
    horizon: tuple[int, int],
) -> pl.DataFrame:
    world, draws = env.world, env.draws
    ent, cells, places = world.entities, world.cells, world.places
    sk = dict(plan.skeleton)
    n = sk["seq"].shape[0]
    i, j = sk["instance"], sk["seq"]
    if pools is not None and breach is not None:
        pooled = sk["pool"] >= 0
        card, owner = pools.gather(breach[i], np.maximum(sk["pool"], 0))
        sk["instrument"] = np.where(pooled, card, sk["instrument"])
        sk["party"] = np.where(pooled, owner, sk["party"])
    up = draws.u(inst.type_code, i, PLACE, j)
    party = sk["party"]
    pidx = np.minimum(ent.party_index(party), ent.party_id.shape[0] - 1)
    has_party = (party > 0) & (ent.party_id[pidx] == party)
    home = np.where(has_party, ent.country[pidx], -1)
    home = np.where(has_party, home, instance_home(i, home, inst.n))
    ref = np.where(sk["country"] >= 0, sk["country"], home)
    cell = cells.pick(sk["channel"], ref, sk["foreign"], up[:, 0], "plain")
    for kind, name in ((1, "cash"), (2, "flat")):
        rows = sk["kind"] == kind
        cell = np.where(rows, cells.pick(sk["channel"], ref, sk["foreign"], up[:, 0], name), cell)
    given = sk["merchant"] > 0
    if given.any():
        cell = np.where(given, fixed_cells(cells, sk["merchant"], sk["channel"], sk["country"]), cell)
    if plan.one_merchant is not None:
        cell = np.where(plan.one_merchant[i], first_of_instance(i, cell), cell)
    if plan.one_country is not None:
        abroad = first_of_instance(i, cells.country[np.maximum(cell, 0)])
        again = cells.pick(sk["channel"], abroad, np.zeros(n, dtype=bool), up[:, 0], "plain")
        cell = np.where(plan.one_country[i] & (j > 0), again, cell)
    if (cell < 0).any():
        bad = CHANNELS[int(sk["channel"][np.argmax(cell < 0)])]
        raise infeasible(inst.kind, f"no {bad} merchant has demand in this world")
    merchant = cells.merchant_id[cell]
    country = cells.country[cell]
    mask, ip_kind = tactic_bits(env, inst, sk)
    cp = np.isin(sk["channel"], CP)
    low = (mask & TACTIC_BITS["SITE_SHIFT"]) > 0
    # as 5B routes: a virtual merchant's card-not-present flow to a CDN edge, every other flow to a site
    edge = np.where(cp, 0, places.edge(merchant, up[:, 2])).astype(np.uint64)
    site = np.where(edge == 0, places.site(merchant, country, up[:, 2], low), 0).astype(np.uint64)
    terminal = np.where(cp, places.terminal(site, sk["channel"] == ATM, up[:, 3]), 0).astype(np.uint64)
    need = has_party & (sk["instrument"] == 0)
    drawn, _ = ent.instrument(party, sk["channel"], up[:, 1])
    instrument = np.where(need, drawn, sk["instrument"]).astype(np.uint64)
    account, token = ent.account_of(instrument)
    # devices and IPs: the party's own (and for POS only behind a device token); the instance's operator
    # device and anonymous IP under the swap tactics; a non-existent card number always comes from them
    pool_u = draws.u(inst.type_code, np.arange(inst.n), TARGET, INSTANCE_POOL)
    operator = pick_from(ent.operator_devices, pool_u[:, 0])[i]
    vpn = pick_from(ent.anon_vpn, pool_u[:, 1])[i]
    proxy = pick_from(ent.anon_proxy, pool_u[:, 2])[i]
    own_device = ent.device(party, up[:, 3])
    dswap = ((mask & TACTIC_BITS["DEVICE_SWAP_SHARED"]) > 0) | (~has_party & ~cp)
    device = np.where(dswap, operator, own_device)
    device = np.where(cp & ~token, 0, device).astype(np.uint64)
    anon = np.where(ip_kind < PROBE_P_VPN, vpn, proxy)
    iswap = (mask & TACTIC_BITS["IP_SWAP_ANON"]) > 0
    # without the IP tactic the flow comes from an ordinary address (the party's usual one: a swapped device's
    # own links are datacentre and VPN addresses, which would make every device swap an anonymiser flow too)
    ordinary = ent.ip(np.where(has_party & (own_device > 0), own_device, device), up[:, 1])
    ip = np.where(iswap & (anon > 0), anon, ordinary)
    ip = np.where(cp, 0, ip).astype(np.uint64)
    known = np.where(device == 0, -1, np.where(dswap, 0, 1))
    # amounts: the instance's γ up or 1/γ down when AMOUNT_SHIFT applies (S4 tilts the plan's uniforms);
    # probes carry their amount in the merchant currency's minor units
    shifted = ((mask & TACTIC_BITS["AMOUNT_SHIFT"]) > 0) & np.isnan(sk["forced"])
    tilt = np.where(shifted & (sk["tilt"] != 0), gamma[i] ** np.sign(sk["tilt"]), 1.0)
    forced = forced_minor(world, sk["forced"], country)
    # time: the span [lo, hi) after the instance start, night-skewed in the cardholder's clock
    uw = draws.u(inst.type_code, i, WHEN, j)
    offset = world.tz_offset_s[np.where(home >= 0, home, country)]
    cdf = world.hour_cdf[sk["hours"]]
    ts = weighted_rows(start[i] + sk["lo"], start[i] + sk["hi"], offset, uw, cdf)
    ts = np.clip(ts, horizon[0], horizon[1] - 1)
    return pl.DataFrame(
        {
            "campaign_id": pl.Series(campaign_id[i], dtype=pl.UInt64),
            "seq": j,
            "phase": sk["phase"].astype(str),
            "channel": np.asarray(CHANNELS)[sk["channel"]],
            "party_id": null_zero(party),
            "account_id": null_zero(account),
            "instrument_id": null_zero(instrument),
            "device_id": null_zero(device),
            "terminal_id": null_zero(terminal),
            "ip_id": null_zero(ip),
            "payee_account_id": null_zero(sk["payee"]),
            "is_cross_border": has_party & (home != country),
            "device_known": masked(pl.Series(known == 1), known < 0),
            "merchant_id": pl.Series(merchant, dtype=pl.UInt64),
            "country_code": country,
            "site_id": null_zero(site),
            "edge_id": null_zero(edge),
            "ts_us": ts,
            "tactic_mask": pl.Series(mask, dtype=pl.UInt16),
            "amount_tilt": pl.Series(tilt, dtype=pl.Float32),
            "decline_bias": pl.Series(sk["bias"], dtype=pl.Float32),
            "forced_amount_minor": masked(pl.Series(forced, dtype=pl.Int64), forced < 0),
        }
    )


def weighted_rows(
    lo: np.ndarray, hi: np.ndarray, offset: np.ndarray, u: np.ndarray, cdf: np.ndarray
) -> np.ndarray:
    """weighted_time with a per-row hour profile (two profiles: rows grouped by their cdf)."""
    out = np.empty(lo.shape[0], dtype=np.int64)
    keys, inverse = np.unique(cdf, axis=0, return_inverse=True)
    for k in range(keys.shape[0]):
        rows = np.flatnonzero(inverse.ravel() == k)
        out[rows] = weighted_time(lo[rows], hi[rows], offset[rows], u[rows], keys[k])
    return out


def pick_from(pool: np.ndarray, u: np.ndarray) -> np.ndarray:
    if pool.shape[0] == 0:
        return np.zeros(u.shape[0], dtype=np.uint64)
    return pool[np.minimum(np.floor(u * pool.shape[0]).astype(np.int64), pool.shape[0] - 1)]


def null_zero(values: np.ndarray) -> pl.Series:
    """A u64 column with 0 as null (ids start at 1)."""
    return masked(pl.Series(np.asarray(values, dtype=np.uint64), dtype=pl.UInt64), np.asarray(values) == 0)


def masked(series: pl.Series, null: np.ndarray) -> pl.Series:
    return pl.select(pl.when(pl.Series(~null)).then(series)).to_series().alias(series.name)


def forced_minor(world: World, major: np.ndarray, country: np.ndarray) -> np.ndarray:
    """Probe amounts in USD-like major units → minor units of the merchant country's currency (× its price
    scale), −1 where the flow has none."""
    minor = np.round(np.nan_to_num(major) * world.minor_per_usd[country]).astype(np.int64)
    return np.where(np.isnan(major), -1, minor)
