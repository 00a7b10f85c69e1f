"""6A.S3 instruments (design layer2_3.md §3.5, amendment 5): slot tables, calendar arithmetic and card dates
by known answers, every (account, slot) draw re-derived in plain Python from numpy's Philox; invariants: at
most 6 instruments per account, one scheme and BIN per account inside its issuer's block, every card valid at
the horizon start, and batching that changes no value."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from engine.core import yaml12
from engine.core.validation import PhiloxBlocks, u01
from engine.segments.l3.s6a import s3_instruments as s3
from engine.segments.l3.s6a.policy import (
    ACCOUNT_TYPES,
    INSTRUMENT_TYPES,
    RAILS,
    REGIONS,
    SCHEMES,
    Instruments,
)

REPO = Path(__file__).resolve().parents[2]
KEY = (0x5151_0000_AAAA_0003, 0x0123_4567_89AB_CDEF)
START = dt.date(2026, 3, 2)
EPOCH = dt.date(1970, 1, 1)


@pytest.fixture(scope="module")
def pol() -> Instruments:
    return Instruments.model_validate(yaml12.load((REPO / "config/policies/6A/instruments.yaml").read_text()))


def day(d: dt.date) -> int:
    return (d - EPOCH).days


def test_calendar_known_answers() -> None:
    for d in (EPOCH, START, dt.date(2000, 2, 29), dt.date(1900, 3, 1), dt.date(2099, 12, 31)):
        assert s3.civil(day(d)) == (d.year, d.month, d.day) and s3.day_number(d.year, d.month, d.day) == day(
            d
        )
    assert s3.month_start(2026 * 12 + 2) == day(dt.date(2026, 3, 1))
    assert s3.month_start(2029 * 12 + 13) == day(dt.date(2030, 2, 1))  # month indices carry into years


def test_card_dates(pol: Instruments) -> None:
    old = np.array([day(dt.date(1990, 1, 1))] * 4)
    u = np.array([0.0, 0.5, 0.999999, 0.999999])
    months = np.array([36, 48, 36, 60])
    issue, expiry, again = s3.card_dates(old, u, months, START, 10)
    # u = 0: issued the day before the start, expiring in March 2029
    assert (issue[0], expiry[0], again[0]) == (day(dt.date(2026, 3, 1)), day(dt.date(2029, 3, 1)), 0)
    # u = .5 of the 1 461 days back to 2 March 2022: 730 days back → 2024-03-01, expiry March 2028
    assert (issue[1], expiry[1]) == (day(dt.date(2024, 3, 1)), day(dt.date(2028, 3, 1)))
    # u ≈ 1: issued 2 March 2023, expiry month March 2026 begins before the start → reissued from it
    assert again[2] == 1 and (issue[2], expiry[2]) == (day(dt.date(2026, 3, 1)), day(dt.date(2029, 3, 1)))
    assert again[3] == 1 and expiry[3] == day(dt.date(2031, 3, 1))
    recent = np.array([day(START) - 10])  # an account opened 10 days ago: issue inside those 10 days
    issue, expiry, again = s3.card_dates(recent, np.array([0.999999]), np.array([36]), START, 10)
    assert issue[0] == day(START) - 10 and expiry[0] == day(dt.date(2029, 2, 1)) and again[0] == 0
    stuck = s3.card_dates(old[:1], u[2:3], months[:1], START, 0)  # no reissue allowed: stays expired
    assert stuck[1][0] == day(dt.date(2026, 3, 1)) and stuck[2][0] == 0


def test_slot_table(pol: Instruments) -> None:
    kind, prob, tilt, first_card = s3.slot_table(pol)
    current = ACCOUNT_TYPES.index("CURRENT")
    assert [INSTRUMENT_TYPES[k] for k in kind[current]] == [s.type for s in pol.slots["CURRENT"]]
    assert prob[current].tolist() == [1.0, 0.15, 0.25, 0.45, 0.25, 1.0]
    assert tilt[current].tolist() == [False, False, False, True, True, False]
    assert first_card.tolist() == [0, -1, 0, -1]  # SAVINGS holds only a bank account, LOAN nothing
    assert (kind[ACCOUNT_TYPES.index("LOAN")] == -1).all()


def accounts(n: int) -> s3.Accounts:
    rng = np.random.default_rng(11)
    return s3.Accounts(
        account_id=np.arange(1, n + 1, dtype=np.uint64),
        party_id=np.repeat(np.arange(1, n // 2 + 2, dtype=np.uint64), 2)[:n],
        account_type=rng.integers(0, 4, n),
        opened=day(START) - rng.integers(1, 12_000, n),
        region=rng.integers(0, len(REGIONS), n),
        digital=rng.random(n),
        iso_num=rng.choice([276, 840, 392], n),
        rail=rng.integers(0, len(RAILS), n),
        rank=rng.integers(1, 4, n),
    )


def draw(pol: Instruments, acc: s3.Accounts, batch: int | None = None) -> tuple[pl.DataFrame, list]:
    calls: list = []
    ctx = SimpleNamespace(family_key=lambda label: KEY, record_draws=lambda *a, **k: calls.append((a, k)))
    size = batch or acc.account_id.size
    parts, first = [], 1
    for lo in range(0, acc.account_id.size, size):
        out, _ = s3.instruments(ctx, acc[lo : lo + size], pol, START, 5, first)  # type: ignore[arg-type]
        parts.append(out)
        first += out.height
    return pl.concat(parts), calls


def test_slot_draws_replay(pol: Instruments) -> None:
    acc = accounts(300)
    out, _ = draw(pol, acc)
    gen = PhiloxBlocks(KEY)
    have = {(r["account_id"], r["instrument_id"]): r for r in out.iter_rows(named=True)}
    rows = {a: [r for (a2, _), r in sorted(have.items()) if a2 == a] for a in range(1, 301)}
    bins_ok = 0
    for i in range(300):
        aid, slots = i + 1, pol.slots[ACCOUNT_TYPES[acc.account_type[i]]]
        kept = []
        for s, slot in enumerate(slots):
            w = gen.block(aid, s, 0, 0)
            p = min(1.0, 2 * slot.p * acc.digital[i]) if slot.digital_tilt else slot.p
            if u01(w[0]) < p:
                kept.append((s, slot, w))
        got = rows[aid]
        assert [r["instrument_type"] for r in got] == [slot.type for _, slot, _ in kept]
        first = next((s for s, slot in enumerate(slots) if slot.type != "BANK_ACCOUNT"), None)
        if first is not None:
            v = gen.block(aid, first, 0, 1)
            mix = pol.schemes[REGIONS[acc.region[i]]]
            cum, u = 0.0, u01(v[1])
            scheme = next(s for s in SCHEMES if (cum := cum + mix.get(s, 0.0)) >= u or s == SCHEMES[-1])
            rng = pol.bin_ranges[scheme]
            block = (rng.hi - rng.lo + 1) // 1000
            bin_ = (
                rng.lo + acc.iso_num[i] * block + (acc.rank[i] - 1) * (block // 5) + math.floor(u01(v[2]) * 8)
            )
        for (s, slot, w), r in zip(kept, got, strict=True):
            if slot.type == "BANK_ACCOUNT":
                assert r["scheme"] is None and r["card_bin"] is None and r["expiry_month"] is None
                assert r["rail"] == RAILS[acc.rail[i]] and not r["cnp_enabled"]
                assert r["issue_date"] == EPOCH + dt.timedelta(days=int(acc.opened[i]))
                continue
            assert (r["scheme"], r["card_bin"]) == (scheme, bin_)
            bins_ok += 1
            assert r["last4"] == math.floor(u01(w[3]) * 10_000) and r["rail"] is None
            months = [36, 48, 60][
                [0.3, 0.8, 1.0].index(next(c for c in (0.3, 0.8, 1.0) if u01(w[1]) <= c + 1e-12))
            ]
            issue, expiry, _ = s3.card_dates(
                np.array([acc.opened[i]]), np.array([u01(w[2])]), np.array([months]), START, 10
            )
            assert (r["issue_date"], r["expiry_month"]) == (
                EPOCH + dt.timedelta(days=int(issue[0])),
                EPOCH + dt.timedelta(days=int(expiry[0])),
            )
            if slot.type in ("DEBIT_PHYSICAL", "CREDIT_PHYSICAL"):
                c = u01(gen.block(aid, s, 0, 1)[0]) < pol.contactless[REGIONS[acc.region[i]]]
                assert r["contactless"] == c
            else:
                assert r["contactless"] == (slot.type == "DEVICE_TOKEN")
            assert r["token_type"] == {"DEVICE_TOKEN": "DEVICE", "NETWORK_TOKEN": "NETWORK"}.get(
                slot.type, "NONE"
            )
    assert bins_ok > 200


def test_invariants_and_batching(pol: Instruments) -> None:
    acc = accounts(500)
    out, calls = draw(pol, acc)
    again, _ = draw(pol, acc, batch=77)
    assert out.equals(again)  # batches change neither ids nor values
    assert out["instrument_id"].to_list() == list(range(1, out.height + 1))
    assert out.group_by("account_id").len()["len"].max() <= pol.max_per_account
    cards = out.filter(pl.col("instrument_type") != "BANK_ACCOUNT")
    assert (cards["expiry_month"] >= START).all() and (cards["expiry_month"] > cards["issue_date"]).all()
    assert (
        cards.group_by("account_id")
        .agg(pl.col("scheme").n_unique(), pl.col("card_bin").n_unique())
        .select((pl.col("scheme") == 1) & (pl.col("card_bin") == 1))
        .to_series()
        .all()
    )
    assert out["replaces_instrument_id"].null_count() == out.height
    # accounting: one event per (account, slot); card slots read two blocks, bank slots one
    ((args, kw),) = calls
    slots = [s for t in acc.account_type for s in pol.slots[ACCOUNT_TYPES[t]]]
    n_cards = sum(s.type != "BANK_ACCOUNT" for s in slots)
    assert len(args[1][0]) == len(slots) and kw["blocks"].sum() == len(slots) + n_cards
    assert (kw["draws"] == 4 * kw["blocks"]).all()
