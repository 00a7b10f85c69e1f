"""6B.S1 on synthetic 6A frames: the candidate pools (eligibility, foreign tables, reshaped activity), the
regular slots' fixed draws and the entity kernel, each against a plain-Python re-derivation from numpy's
Philox (engine.core.validation.PhiloxBlocks), never the engine's own numba code."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from engine.core import yaml12
from engine.core.validation import PhiloxBlocks, u01
from engine.kernels.alias import decoded_masses
from engine.kernels.attach import N_CHANNELS, AliasSlices
from engine.kernels.attach_entities import Knobs, Rows, draw_entities
from engine.segments.l3.s6b.holdings import build_world, csr_first
from engine.segments.l3.s6b.policy import CHANNELS, Attachment
from engine.segments.l3.s6b.pools import abroad_tables, build_parties, build_slots, build_trips, eligibility

REPO = Path(__file__).resolve().parents[2]
POL = Attachment.model_validate(yaml12.load((REPO / "config/policies/6B/attachment.yaml").read_text()))
KEY = (0x6B5E_0001_0000_0001, 0x0A77_AC4E_0000_0002)
POS, ECOM, ATM, TRANSFER = range(4)
ALPHA_6A = 2.5  # a 6A tail other than attachment.yaml's, so the reshape w^(α_6A/α) shows

# parties 1–4 in DE (EUROPE), 5 in FR (EUROPE), 6 in US (NORTH_AMERICA)
PARTIES = pl.DataFrame(
    {
        "party_id": pl.Series(range(1, 7), dtype=pl.UInt64),
        "country_iso": ["DE", "DE", "DE", "DE", "FR", "US"],
        "region": ["EUROPE"] * 5 + ["NORTH_AMERICA"],
        "activity_weight": pl.Series([1.0, 4.0, 2.0, 1.0, 1.0, 9.0], dtype=pl.Float32),
        "digital_affinity": pl.Series([0.9, 0.1, 0.5, 0.5, 0.5, 0.5], dtype=pl.Float32),
        "cash_affinity": pl.Series([0.1, 0.9, 0.5, 0.5, 0.5, 0.5], dtype=pl.Float32),
        "income_score": pl.Series([0.5] * 6, dtype=pl.Float32),
        "cross_border_propensity": pl.Series([0.5] * 6, dtype=pl.Float32),
    }
)
# party 1: a primary current account (debit card, wallet token, network token, bank account), savings (bank
# account), a credit card without CNP; party 2: debit card + bank account; party 3: bank account only;
# party 4: a credit card without CNP only; 5 and 6: debit card + bank account
ACCOUNTS = pl.DataFrame(
    {
        "account_id": pl.Series(range(1, 9), dtype=pl.UInt64),
        "party_id": pl.Series([1, 1, 1, 2, 3, 4, 5, 6], dtype=pl.UInt64),
        "is_primary": [True, False, False, True, True, True, True, True],
    }
)
INSTRUMENTS = pl.DataFrame(
    {
        "instrument_id": pl.Series(range(1, 14), dtype=pl.UInt64),
        "account_id": pl.Series([1, 1, 1, 1, 2, 3, 4, 4, 5, 6, 7, 7, 8], dtype=pl.UInt64),
        "instrument_type": [
            "DEBIT_PHYSICAL",
            "DEVICE_TOKEN",
            "NETWORK_TOKEN",
            "BANK_ACCOUNT",
            "BANK_ACCOUNT",
            "CREDIT_PHYSICAL",
            "DEBIT_PHYSICAL",
            "BANK_ACCOUNT",
            "BANK_ACCOUNT",
            "CREDIT_PHYSICAL",
            "DEBIT_PHYSICAL",
            "BANK_ACCOUNT",
            "DEBIT_PHYSICAL",
        ],
        "cnp_enabled": [True, True, True, False, False, False, True, False, False, False, True, False, True],
    }
)
TABLES = {
    "accounts": ACCOUNTS,
    "instruments": INSTRUMENTS,
    "device_links": pl.DataFrame(
        {
            "device_id": pl.Series([1, 2, 3, 4], dtype=pl.UInt64),
            "party_id": pl.Series([1, 1, 2, 5], dtype=pl.UInt64),
        }
    ),
    "devices": pl.DataFrame(
        {
            "device_id": pl.Series([1, 2, 3, 4], dtype=pl.UInt64),
            "device_type": ["MOBILE", "DESKTOP", "DESKTOP", "MOBILE"],
        }
    ),
    "ip_links": pl.DataFrame(
        {
            "ip_id": pl.Series([10, 11, 12, 13, 14], dtype=pl.UInt64),
            "device_id": pl.Series([1, 1, 2, 3, 4], dtype=pl.UInt64),
            "usage_weight": pl.Series([1.0, 3.0, 1.0, 1.0, 1.0], dtype=pl.Float32),
        }
    ),
    "ips": pl.DataFrame(
        {
            "ip_id": pl.Series([10, 11, 12, 13, 14, 99], dtype=pl.UInt64),
            "ip_type": ["RESIDENTIAL"] * 5 + ["VPN_PROXY"],
        }
    ),
    "terminals": pl.DataFrame(
        {
            "terminal_id": pl.Series([1, 2, 3], dtype=pl.UInt64),
            "site_id": pl.Series([500, 500, 700], dtype=pl.UInt64),
        }
    ),
}
REF = pl.DataFrame(
    {"iso2": ["DE", "FR", "US", "JP"], "iso_num": pl.Series([276, 250, 840, 392], dtype=pl.UInt16)}
)
# pool eligibility by the shipped instrument weights: who can pay where
ELIGIBLE = {
    "POS": {1, 2, 4, 5, 6},  # physical cards and wallet tokens
    "ECOM": {1, 2, 5, 6},  # CNP-enabled cards and tokens (party 4's credit card is not)
    "ATM": {1, 2, 4, 5, 6},  # physical cards
    "TRANSFER": {1, 2, 3, 5},  # bank accounts
}


def world():  # type: ignore[no-untyped-def]
    w = build_world(TABLES, POL, n_parties=6)
    elig = eligibility(6, w.party_of_acc_row, w.inst_acc_row, w.inst_w)
    parties = build_parties(PARTIES, elig, ["JP"], REF, POL, alpha_6a=ALPHA_6A)
    return w, parties


def trips_dest_tables(p, pol: Attachment) -> AliasSlices:  # type: ignore[no-untyped-def]
    """The destination tables build_trips draws from: all parties per country, on every channel key."""
    counts = np.bincount(p.party_country[1:], minlength=p.countries.size).astype(np.float64)
    return abroad_tables(
        np.repeat(counts[:, None], N_CHANNELS, 1), p.same_region, pol.travel.same_region_weight
    )


def slice_of(tables: AliasSlices, key: int) -> tuple[list[int], np.ndarray]:
    lo, hi = int(tables.first[key]), int(tables.first[key + 1])
    masses = decoded_masses(tables.prob_q[lo:hi], tables.alias[lo:hi], 32).astype(np.float64)
    return [int(v) for v in tables.value[lo:hi]], masses / masses.sum() if hi > lo else masses


def test_pools_hold_exactly_the_eligible_parties_weighted_by_reshaped_activity_and_affinity() -> None:
    _, p = world()
    assert p.countries.tolist() == ["DE", "FR", "JP", "US"]
    de = 0
    for ch, name in enumerate(CHANNELS):
        ids, share = slice_of(p.pools, de * N_CHANNELS + ch)
        assert set(ids) == {q for q in ELIGIBLE[name] if q <= 4}
        aff = POL.channel_affinity[name]
        want = {}
        for q in ids:
            row = PARTIES.row(q - 1, named=True)
            act = row["activity_weight"] ** (ALPHA_6A / POL.activity_pareto_alpha)
            want[q] = act * (aff.floor + (1 - aff.floor) * row[aff.score] ** aff.exponent)
        total = sum(want.values())
        for q, s in zip(ids, share, strict=True):
            assert math.isclose(s, want[q] / total, rel_tol=1e-6)
    assert slice_of(p.pools, 2 * N_CHANNELS + POS)[0] == []  # JP has demand but no parties: empty pool


def test_foreign_tables_weight_other_countries_by_eligible_parties_and_region() -> None:
    _, p = world()
    # from DE on ECOM: FR (1 eligible, same region ×4) and US (1 eligible, other region ×1); never DE itself
    ids, share = slice_of(p.foreign, 0 * N_CHANNELS + ECOM)
    assert ids == [1, 3] and np.allclose(share, [0.8, 0.2], atol=1e-9)
    # from US on TRANSFER: DE (3 eligible) and FR (1), both another region; US's party has no bank account
    ids, share = slice_of(p.foreign, 3 * N_CHANNELS + TRANSFER)
    assert ids == [0, 1] and np.allclose(share, [0.75, 0.25], atol=1e-9)
    # JP (no region among the parties): every party country at weight × 1
    ids, share = slice_of(p.foreign, 2 * N_CHANNELS + POS)
    assert ids == [0, 1, 3] and np.allclose(share, [3 / 5, 1 / 5, 1 / 5], atol=1e-9)


def _pick(tables: AliasSlices, key: int, w: int) -> int:
    lo, hi = int(tables.first[key]), int(tables.first[key + 1])
    j = ((w >> 32) * (hi - lo)) >> 32
    col = j if (w & 0xFFFFFFFF) < int(tables.prob_q[lo + j]) else int(tables.alias[lo + j])
    return int(tables.value[lo + col])


def test_regular_slots_count_and_fixed_draws_replay() -> None:
    _, p = world()
    cells = pl.DataFrame(
        {
            "merchant_id": pl.Series([77, 77, 88], dtype=pl.UInt64),
            "country": pl.Series([0, 1, 0], dtype=pl.Int64),
            "channel": pl.Series([POS, POS, TRANSFER], dtype=pl.Int64),
            "weekly": [10.0, 400.0, 0.5],
        }
    )
    slots = build_slots(cells, p, np.array([77, 88], dtype=np.uint64), POL, KEY)
    # R = max(5, ⌈p_regular·weekly / 1 visit a week⌉): POS .4·10 → 5 (the floor), .4·400 → 160, TRANSFER → 5
    assert np.diff(slots.slots.first).tolist() == [5, 160, 5]
    gen = PhiloxBlocks(KEY)
    iso = {0: 276, 1: 250}
    k = 0
    for m, c, ch, r in [(77, 0, POS, 5), (77, 1, POS, 160), (88, 0, TRANSFER, 5)]:
        for s in range(r):
            w0 = gen.block(m, s, ch, iso[c])[0]
            assert int(slots.slots.party[k]) == _pick(p.pools, c * N_CHANNELS + ch, w0)
            k += 1


def weighted(items: list[tuple[object, float]], u: float) -> Any:
    """The first item whose running weight exceeds u × the total (zero weights never)."""
    total, run = sum(w for _, w in items), 0.0
    for item, w in items:
        run += w
        if w > 0 and u * total < run:
            return item
    raise AssertionError("no positive weight")


def _replay_row(w, p, fid: int, ch: int, party: int, site_row: int, knobs: Knobs) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    """§4.4 steps 4–5 for one non-continuation row, from the frames as a reviewer reads them."""
    gen = PhiloxBlocks(KEY)
    w0, w1, w2, w3 = gen.block(fid, 1, 0, 0)
    accounts = ACCOUNTS.filter(pl.col("party_id") == party).sort("account_id")
    usable = []
    for acc in accounts.iter_rows(named=True):
        inst = INSTRUMENTS.filter(pl.col("account_id") == acc["account_id"]).sort("instrument_id")
        iw = []
        for r in inst.iter_rows(named=True):
            x = POL.instrument_weights[CHANNELS[ch]].get(r["instrument_type"], 0.0)
            iw.append(
                (r["instrument_id"], 0.0 if ch == ECOM and not r["cnp_enabled"] else x, r["instrument_type"])
            )
        if sum(x for _, x, _ in iw) > 0:
            usable.append((acc["account_id"], knobs.primary_weight if acc["is_primary"] else 1.0, iw))
    account, iw = weighted([((a, iw), aw) for a, aw, iw in usable], u01(w0))
    inst_id, kind = weighted([((i, k), x) for i, x, k in iw], u01(w1))
    own = TABLES["device_links"].filter(pl.col("party_id") == party)["device_id"].to_list()
    if ch in (POS, ATM):
        site = [500, 700][site_row] if site_row >= 0 else 0
        terms = TABLES["terminals"].filter(pl.col("site_id") == site)["terminal_id"].to_list()
        terminal = terms[min(int(u01(w2) * len(terms)), len(terms) - 1)] if terms else 0
        device = 0
        if kind == "DEVICE_TOKEN":
            hand = [d for d in own if TABLES["devices"]["device_type"][d - 1] in ("MOBILE", "TABLET")] or own
            device = hand[min(int(u01(w3) * len(hand)), len(hand) - 1)] if hand else 0
        return account, inst_id, terminal, device, 0, 0, 1 if device else -1
    v0, v1, v2, v3 = gen.block(fid, 1, 0, 1)
    country = PARTIES["country_iso"][party - 1]
    c = p.countries.tolist().index(country)

    def other(key: int, w: int) -> int:
        ids = [int(x) for x in p.pools.value[p.pools.first[key] : p.pools.first[key + 1]]]
        if len(ids) < 2:
            return 0 if not ids or ids[0] == party else ids[0]
        q = _pick(p.pools, key, w)
        return q if q != party else ids[(ids.index(q) + 1) % len(ids)]

    u = u01(w2)
    if u >= knobs.p_guest and own:
        device, known = own[min(int((u - knobs.p_guest) / (1 - knobs.p_guest) * len(own)), len(own) - 1)], 1
    else:
        g = other(c * N_CHANNELS + ch, v0)
        theirs = TABLES["device_links"].filter(pl.col("party_id") == g)["device_id"].to_list() if g else []
        if theirs:
            device = theirs[min(int(u01(v1) * len(theirs)), len(theirs) - 1)]
            known = 1 if device in own else 0  # a shared household device is still known
        elif own:
            device, known = own[min(int(u01(v1) * len(own)), len(own) - 1)], 1
        else:
            device, known = 0, -1
    links = TABLES["ip_links"].filter(pl.col("device_id") == device).sort("ip_id")
    if u01(v2) < knobs.p_vpn:
        ip = 99
    elif links.height:
        cum = np.cumsum(links["usage_weight"].to_numpy().astype(np.float64))
        ip = int(links["ip_id"][int(np.searchsorted(cum, u01(w3) * cum[-1], side="right"))])
    else:
        ip = 0
    payee = 0
    if ch == TRANSFER:
        q = other(c * N_CHANNELS + TRANSFER, v3)
        cands = []
        for acc in ACCOUNTS.filter(pl.col("party_id") == q).sort("account_id").iter_rows(named=True):
            kinds = INSTRUMENTS.filter(pl.col("account_id") == acc["account_id"])["instrument_type"].to_list()
            if "BANK_ACCOUNT" in kinds:
                cands.append((not acc["is_primary"], acc["account_id"]))
        payee = min(cands)[1] if cands else 0
    return account, inst_id, 0, device, ip, payee, known


def test_entity_draws_match_a_plain_python_replay() -> None:
    w, p = world()
    knobs = Knobs(POL.primary_account_weight, 0.3, 0.2)  # raised so that every branch shows in 400 rows
    rng = np.random.default_rng(5)
    n = 400
    channel = rng.integers(0, 4, n)
    pool_of = {c: sorted(ELIGIBLE[name] & {1, 2, 3, 4}) for c, name in enumerate(CHANNELS)}
    party = np.array([pool_of[c][rng.integers(0, len(pool_of[c]))] for c in channel], dtype=np.uint64)
    site_row = np.where(np.isin(channel, [POS, ATM]), rng.integers(-1, 2, n), -1)
    fid = (np.uint64(3) << np.uint64(40)) | np.arange(n, dtype=np.uint64)
    rows = Rows(fid, channel.astype(np.int64), party, np.zeros(n, dtype=np.int64), site_row, np.full(n, -1))
    ent = draw_entities(KEY, rows, w.holdings, p.pools, knobs)
    for i in range(n):
        got = tuple(
            int(x[i])
            for x in (ent.account, ent.instrument, ent.terminal, ent.device, ent.ip, ent.payee, ent.known)
        )
        assert got == _replay_row(
            w, p, int(fid[i]), int(channel[i]), int(party[i]), int(site_row[i]), knobs
        ), i
    cnp = np.isin(channel, [ECOM, TRANSFER])
    assert (ent.known[cnp] == 0).any() and (ent.ip[cnp] == 99).any()  # guest devices and VPN IPs both drawn
    assert (ent.payee[channel == TRANSFER] > 0).all()


def test_continuations_copy_their_source_but_pay_at_their_own_site() -> None:
    w, p = world()
    fid = np.arange(1, 6, dtype=np.uint64)
    rows = Rows(
        fid,
        np.array([ECOM, ECOM, POS, POS, POS]),
        np.array([1, 1, 2, 2, 2], dtype=np.uint64),
        np.zeros(5, dtype=np.int64),
        np.array([-1, -1, 0, 0, 1]),  # site rows: 0 = site 500 (terminals 1, 2), 1 = site 700 (terminal 3)
        np.array([-1, 0, -1, 2, 2]),
    )
    ent = draw_entities(KEY, rows, w.holdings, p.pools, Knobs(3.0, 0.08, 0.06))
    for name in ("account", "instrument", "device", "ip", "payee", "known"):
        field = getattr(ent, name)
        assert field[1] == field[0] and field[3] == field[2] == field[4], name
    assert ent.terminal[1] == ent.terminal[0] == 0  # ECOM: no terminal
    # the continuation's terminal: its own site's, by u(w2) of its block 0
    u3 = u01(PhiloxBlocks(KEY).block(4, 0, 0, 0)[2])
    assert ent.terminal[3] == [1, 2][min(int(u3 * 2), 1)] and ent.terminal[4] == 3


def test_trips_replay_and_fill_the_visitor_days() -> None:
    _, p = world()
    pol = POL.model_copy(update={"travel": POL.travel.model_copy(update={"p_per_28d": 0.5})})
    days, start = 40, 1_000
    trips = build_trips(p, pol, KEY, start, days)
    gen = PhiloxBlocks(KEY)
    lo, hi = pol.travel.duration_days.lo, pol.travel.duration_days.hi
    countries = p.countries.tolist()
    want: dict[int, list[int]] = {}
    for party in range(1, 7):
        home = PARTIES["country_iso"][party - 1]
        # destinations by parties × 4 in the home's region (JP has no parties; US is alone in its region)
        others = [c for c in ("DE", "FR", "US") if c != home]
        region = dict(zip(PARTIES["country_iso"], PARTIES["region"], strict=False))
        weights = [
            PARTIES["country_iso"].to_list().count(c) * (4.0 if region[c] == region[home] else 1.0)
            for c in others
        ]
        for period in range(2):  # ⌈40 / 28⌉
            w = gen.block(party, period, 0, 0)
            if u01(w[0]) >= 0.5:
                continue
            table = slice_of(trips_dest_tables(p, pol), countries.index(home) * N_CHANNELS)
            assert [countries[c] for c in table[0]] == others
            assert np.allclose(table[1], np.array(weights) / sum(weights), atol=1e-9)
            dest = _pick(trips_dest_tables(p, pol), countries.index(home) * N_CHANNELS, w[3])
            first = math.floor(period * 28 + u01(w[1]) * 28)
            length = min(lo + math.floor(u01(w[2]) * (hi - lo + 1)), hi)
            for day in range(first, min(first + length, days)):
                for name in pol.travel.channels:
                    if party in ELIGIBLE[name]:
                        key = (dest * N_CHANNELS + CHANNELS.index(name)) * days + day
                        want.setdefault(key, []).append(party)
    t = trips.travellers
    got = {
        k: [int(x) for x in t.party[t.first[k] : t.first[k + 1]]]
        for k in range(t.first.size - 1)
        if t.first[k + 1] > t.first[k]
    }
    assert got == {k: sorted(v) for k, v in want.items()}
    assert (t.start_us, t.days) == (start, days) and trips.taken.sum() > 0


@given(st.lists(st.integers(0, 40), max_size=60), st.integers(-1, 45))
def test_csr_first_counts_the_rows_owned_below_each_owner(owners: list[int], n_owners: int) -> None:
    owner = np.array(sorted(owners), dtype=np.int64)
    expected = [sum(1 for o in owners if o < k) for k in range(n_owners + 2)]
    got = csr_first(owner, n_owners)
    assert got.dtype == np.int64
    assert got.tolist() == expected
