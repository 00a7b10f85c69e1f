"""6B.S1's candidate tables (design §4.4 and amendment 8), built once per shard from the sealed 6A world:
which parties can pay on each channel, the (country, channel) pools and foreign-country tables the attachment
kernel draws from, and the regular slots of this shard's (merchant, country, channel) cells.

- A party is eligible for a channel when one of its accounts holds an instrument with a positive
  `instrument_weights` weight there (ECOM cards need `cnp_enabled`). Pools hold exactly the eligible parties,
  weighted by activity^(α_6A/α) × (floor + (1 − floor)·score^exponent): 6A's Pareto(α_6A) activity reshaped to
  attachment.yaml's α (amendment 8), times the channel affinity.
- Foreign tables per (country, channel) weight every other country by its eligible parties × the same-region
  factor, so a foreign draw always lands in a non-empty pool.
- Regular slots: R = max(min_slots, ⌈p_regular·weekly / visits_per_week⌉) per (merchant, legal country,
  channel) cell of 5A's baseline profile (a departure from the design's ⌈3·√weekly⌉: attachment.yaml says
  why); slot s's party is the `6B.regular` draw ⟨merchant_id, s, channel code, iso_num⟩ (lane w0, raw,
  decoded in that country's pool). The country word departs from the design's 0: a chain's regulars in each
  country are locals of that country.
- Trips (amendment 8): per party and 28-day period a `6B.travel` draw ⟨party_id, period, 0, 0⟩ (4 lanes) may
  send it abroad for a few days; the kernel gives a card-present FOREIGN arrival to a visitor of that day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.core.group_sums import group_sums
from engine.kernels.alias import encode, integer_masses
from engine.kernels.attach import N_CHANNELS, AliasSlices, RegularSlots, Travellers, alias_values
from engine.kernels.blocks import block_raw
from engine.segments.l3.s6a.policy import INSTRUMENT_TYPES
from engine.segments.l3.s6b.policy import CHANNELS, Attachment, Channels

INSTRUMENT_CODES = tuple(INSTRUMENT_TYPES)  # 6A's instrument vocabulary, in its code order
DEVICE_TOKEN = INSTRUMENT_CODES.index("DEVICE_TOKEN")
ECOM = CHANNELS.index("ECOM")
MASS_BITS = 32


def alias_slices(weights: list[np.ndarray], values: list[np.ndarray], dtype: type) -> AliasSlices:
    """Alias tables concatenated by key (an empty weight array is an empty slice)."""
    first, prob, alias = [0], [], []
    for w in weights:
        if w.size:
            q, a = encode(integer_masses(np.ascontiguousarray(w, dtype=np.float64), MASS_BITS), MASS_BITS)
            prob.append(q)
            alias.append(a)
        first.append(first[-1] + int(w.size))

    def cat(parts: list[np.ndarray], kind: type) -> np.ndarray:
        return np.concatenate(parts).astype(kind) if parts else np.zeros(0, dtype=kind)

    return AliasSlices(
        np.array(first, dtype=np.int64), cat(prob, np.uint32), cat(alias, np.uint32), cat(values, dtype)
    )


def channel_codes(cp: np.ndarray, mcc: np.ndarray, channels: Channels) -> np.ndarray:
    """6B channel code (POS 0, ECOM 1, ATM 2, TRANSFER 3) of card-present (cp) or not rows by MCC
    (channels.yaml)."""
    atm = np.isin(mcc, channels.atm_mccs)
    transfer = np.isin(mcc, channels.transfer_mccs)
    return np.where(cp, np.where(atm, 2, 0), np.where(transfer, 3, 1)).astype(np.int64)


def instrument_weights(instruments: pl.DataFrame, pol: Attachment) -> np.ndarray:
    """[N_CHANNELS, I] weight of each instrument row on each channel (0: cannot pay there)."""
    code = instruments["instrument_type"].cast(pl.Enum(INSTRUMENT_TYPES)).to_physical().to_numpy()
    lookup = np.array(
        [[pol.instrument_weights[name].get(t, 0.0) for t in INSTRUMENT_TYPES] for name in CHANNELS]
    )
    out = lookup[:, code.astype(np.int64)]
    out[ECOM, ~instruments["cnp_enabled"].to_numpy()] = 0.0
    return out


@dataclass(frozen=True)
class Parties:
    """Scenario-free candidate tables of the whole world (every shard builds the same)."""

    countries: np.ndarray  # str, sorted: the kernels' country index
    iso_num: np.ndarray  # i64 per country index
    party_country: np.ndarray  # i64 [P + 1] by party_id (row 0 unused)
    eligible: np.ndarray  # bool [N_CHANNELS, P + 1]
    pools: AliasSlices  # key country·N_CHANNELS + channel → party ids
    foreign: AliasSlices  # key country·N_CHANNELS + channel → other country indices
    same_region: np.ndarray  # bool [C, C]


def eligibility(
    n_parties: int, acc_party: np.ndarray, inst_acc_row: np.ndarray, inst_w: np.ndarray
) -> np.ndarray:
    """[N_CHANNELS, P + 1]: the party holds an instrument usable on the channel."""
    out = np.zeros((N_CHANNELS, n_parties + 1), dtype=bool)
    owner = acc_party[inst_acc_row]
    for c in range(N_CHANNELS):
        out[c, owner[inst_w[c] > 0]] = True
    return out


def abroad_tables(counts: np.ndarray, same: np.ndarray, same_weight: float) -> AliasSlices:
    """Per (country, channel), every other country with parties there, weighted by its parties × same_weight
    when it lies in the same region."""
    n_c = counts.shape[0]
    weights, values = [], []
    for c in range(n_c):
        for ch in range(N_CHANNELS):
            other = np.array([o for o in range(n_c) if o != c and counts[o, ch] > 0], dtype=np.int64)
            weights.append(counts[other, ch] * np.where(same[c, other], same_weight, 1.0))
            values.append(other)
    return alias_slices(weights, values, np.int64)


def build_parties(
    parties: pl.DataFrame,
    eligible: np.ndarray,
    arrival_countries: list[str],
    ref_countries: pl.DataFrame,
    pol: Attachment,
    alpha_6a: float,
) -> Parties:
    """Pools and foreign tables over the eligible parties (party_id = row + 1, as 6A numbers them)."""
    homes = parties.select(pl.col("country_iso").cast(pl.String), pl.col("region").cast(pl.String)).unique(
        maintain_order=True
    )
    countries = np.array(sorted(set(homes["country_iso"]) | set(arrival_countries)))
    iso = dict(zip(ref_countries["iso2"], ref_countries["iso_num"], strict=True))
    iso_num = np.array([int(iso[c]) for c in countries], dtype=np.int64)
    p_country = np.searchsorted(countries, parties["country_iso"].cast(pl.String).to_numpy())
    party_country = np.concatenate(([-1], p_country)).astype(np.int64)
    ids = parties["party_id"].to_numpy().astype(np.uint64)
    activity = parties["activity_weight"].to_numpy().astype(np.float64) ** (
        alpha_6a / pol.activity_pareto_alpha
    )
    region_of = dict(zip(homes["country_iso"], homes["region"], strict=True))
    scores = {
        name: parties[name].to_numpy().astype(np.float64)
        for name in {a.score for a in pol.channel_affinity.values()}
    }
    n_c = countries.size
    counts = np.zeros((n_c, N_CHANNELS), dtype=np.float64)
    weights, values = [], []
    order = np.argsort(p_country, kind="stable")
    bounds = np.searchsorted(p_country[order], np.arange(n_c + 1))
    for c in range(n_c):
        rows = order[bounds[c] : bounds[c + 1]]
        for ch, name in enumerate(CHANNELS):
            aff = pol.channel_affinity[name]
            keep = rows[eligible[ch, rows + 1]]
            score = scores[aff.score][keep]
            weights.append(activity[keep] * (aff.floor + (1.0 - aff.floor) * score**aff.exponent))
            values.append(ids[keep])
            counts[c, ch] = keep.size
    same = np.array(
        [[region_of.get(a) == region_of.get(b) is not None for b in countries] for a in countries]
    )
    return Parties(
        countries=countries,
        iso_num=iso_num,
        party_country=party_country,
        eligible=eligible,
        pools=alias_slices(weights, values, np.uint64),
        foreign=abroad_tables(counts, same, pol.foreign_same_region_weight),
        same_region=same,
    )


@dataclass(frozen=True)
class Slots:
    """This shard's regular slots: cell keys (sorted) → slot rows, and the slots' draws for accounting."""

    keys: np.ndarray  # i64 sorted: merchant_pos·(C·N_CHANNELS) + country·N_CHANNELS + channel
    slots: RegularSlots
    merchant_id: np.ndarray  # u64 per slot (the draw's c0)
    slot: np.ndarray  # u64 per slot (c1)
    channel: np.ndarray  # u64 per slot (c2)
    iso_num: np.ndarray  # u64 per slot (c3)


def cell_key(
    merchant_pos: np.ndarray, country: np.ndarray, channel: np.ndarray, n_countries: int
) -> np.ndarray:
    return (merchant_pos.astype(np.int64) * n_countries + country) * N_CHANNELS + channel


def build_slots(
    cells: pl.DataFrame, world: Parties, merchant_ids: np.ndarray, pol: Attachment, key: tuple[int, int]
) -> Slots:
    """Slots of the cells (merchant_id, country index, channel, weekly) and their fixed parties."""
    cells = cells.sort("merchant_id", "country", "channel")
    m = cells["merchant_id"].to_numpy().astype(np.uint64)
    country = cells["country"].to_numpy().astype(np.int64)
    channel = cells["channel"].to_numpy().astype(np.int64)
    weekly = cells["weekly"].to_numpy().astype(np.float64)
    rs = pol.regular_slots
    p_reg = np.array([pol.p_regular[c] for c in CHANNELS])[channel]
    r = np.maximum(rs.min_slots, np.ceil(p_reg * weekly / rs.visits_per_week)).astype(np.int64)
    first = np.concatenate(([0], np.cumsum(r))).astype(np.int64)
    cell = np.repeat(np.arange(r.size), r)
    slot = (np.arange(int(first[-1])) - first[cell]).astype(np.uint64)
    iso = world.iso_num[country[cell]].astype(np.uint64)
    raw = block_raw(key, m[cell], slot, channel[cell].astype(np.uint64), iso, lanes=1)[:, 0]
    party = alias_values(world.pools, country[cell] * N_CHANNELS + channel[cell], raw)
    keys = cell_key(np.searchsorted(merchant_ids, m), country, channel, world.countries.size)
    return Slots(keys, RegularSlots(first, party), m[cell], slot, channel[cell].astype(np.uint64), iso)


def slot_cells(p: pl.DataFrame, world: Parties, channels: Channels) -> pl.DataFrame:
    """(merchant_id, country, channel, weekly) cells of 5A's baseline profile rows; `weekly` sets each cell's
    slot count, so it is summed in a fixed order (group_sums)."""
    ch = channel_codes((p["channel_group"].cast(pl.String) == "CP").to_numpy(), p["mcc"].to_numpy(), channels)
    country = np.searchsorted(world.countries, p["legal_country_iso"].cast(pl.String).to_numpy())
    rows = pl.DataFrame(
        {
            "merchant_id": p["merchant_id"],
            "country": country.astype(np.int64),
            "channel": ch,
            "weekly": p["weekly_expected"],
        }
    )
    return group_sums(rows, ["merchant_id", "country", "channel"], ["weekly"])


def u01_lanes(raw: np.ndarray) -> np.ndarray:
    """The open uniforms of raw lanes (engine.kernels.philox.u01, vectorised)."""
    return np.minimum(((raw >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53, 1.0 - 2.0**-53)


@dataclass(frozen=True)
class Trips:
    """Amendment 8's trips abroad and the `6B.travel` draws they took (for the accounting)."""

    travellers: Travellers
    party_id: np.ndarray  # u64 per draw (c0)
    period: np.ndarray  # u64 per draw (c1)
    taken: np.ndarray  # bool per draw: a trip


def build_trips(world: Parties, pol: Attachment, key: tuple[int, int], start_us: int, days: int) -> Trips:
    """Per party and 28-day period one `6B.travel` block ⟨party_id, period, 0, 0⟩: u(w0) < p_per_28d takes a
    trip starting at period·28 d + u(w1)·28 d for lo + ⌊u(w2)·(hi − lo + 1)⌋ days to a country drawn on raw
    w3 from the home country's table (other countries by parties × same_region_weight within the region).
    On each day of the trip inside the horizon the party visits there on each travel channel it can pay on."""
    n = world.party_country.size - 1
    periods = -(-days // 28)
    pid = np.repeat(np.arange(1, n + 1, dtype=np.uint64), periods)
    period = np.tile(np.arange(periods, dtype=np.uint64), n)
    raw = block_raw(key, pid, period, 0, 0, lanes=4)
    u = u01_lanes(raw[:, :3])
    home = world.party_country[pid.astype(np.int64)]
    counts = np.bincount(world.party_country[1:], minlength=world.countries.size).astype(np.float64)
    dest_tables = abroad_tables(
        np.repeat(counts[:, None], N_CHANNELS, 1), world.same_region, pol.travel.same_region_weight
    )
    dest_key = home * N_CHANNELS
    has_dest = dest_tables.first[dest_key + 1] > dest_tables.first[dest_key]
    taken = (u[:, 0] < pol.travel.p_per_28d) & has_dest
    t = np.flatnonzero(taken)
    dest = alias_values(dest_tables, dest_key[t], raw[t, 3]).astype(np.int64)
    lo, hi = pol.travel.duration_days.lo, pol.travel.duration_days.hi
    first_day = np.floor(period[t].astype(np.float64) * 28.0 + u[t, 1] * 28.0).astype(np.int64)
    length = np.minimum(lo + np.floor(u[t, 2] * (hi - lo + 1)).astype(np.int64), hi)
    trip = np.repeat(np.arange(t.size), length)
    day = first_day[trip] + (np.arange(trip.size) - np.repeat(np.cumsum(length) - length, length))
    inside = (day >= 0) & (day < days)
    trip, day = trip[inside], day[inside]
    keys, party = [], []
    for name in pol.travel.channels:
        ch = CHANNELS.index(name)
        ok = world.eligible[ch, pid[t[trip]].astype(np.int64)]
        keys.append((dest[trip[ok]] * N_CHANNELS + ch) * days + day[ok])
        party.append(pid[t[trip[ok]]])
    k, q = np.concatenate(keys), np.concatenate(party)
    order = np.lexsort((q, k))
    n_keys = world.countries.size * N_CHANNELS * days
    first = np.searchsorted(k[order], np.arange(n_keys + 1)).astype(np.int64)
    return Trips(Travellers(first, q[order], start_us, days), pid, period, taken)
