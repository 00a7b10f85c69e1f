"""6A.S3 — cards, tokens and bank-account instruments (design §3.5, amendment 5).

Each account type has a fixed slot list (instruments.yaml); one Bernoulli per (account, slot) decides whether
the slot holds an instrument, so an account never holds more than its slot count (≤ max_per_account, S0).
An account's cards and tokens share one scheme (the region's mix) and one BIN of its issuer's block of the
scheme's range (country block by iso_num, issuer sub-block by rank). A card's first issue day is uniform
over the last validity period before the horizon start, not before the account opened; expiry is the first
day of the month `validity` months after the issue month, and a card whose expiry month begins before the
horizon start is reissued from it (at most max_reissues times: a bounded loop). `replaces_instrument_id` is
null here; 6B's block-and-reissue sets it on the replacements it creates.

RNG `6A.instrument` ⟨account_id, slot, 0, d⟩ (slot = position in the account type's list): d 0 for every
slot, w0 → presence, w1 → validity, w2 → issue day, w3 → last4; d 1 for a card or token slot only, w0 →
contactless, and on the account's first card slot w1 → scheme, w2 → BIN within the issuer's BINs. Every lane
of a block counts as read (a card slot: 8 draws, 2 blocks; a bank-account slot: 4 draws, 1 block)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, fields

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels import njit, prange
from engine.kernels.philox import philox4x64_10, u01
from engine.segments.l3.s6a.common import INSTRUMENT_TYPE, RAIL, SCHEME, TOKEN_TYPE, enum_of
from engine.segments.l3.s6a.policy import (
    ACCOUNT_TYPES,
    INSTRUMENT_TYPES,
    RAILS,
    REGIONS,
    SCHEMES,
    Instruments,
)

BANK = INSTRUMENT_TYPES.index("BANK_ACCOUNT")
TOKEN_OF = {"DEVICE_TOKEN": "DEVICE", "NETWORK_TOKEN": "NETWORK"}
PHYSICAL = ("DEBIT_PHYSICAL", "CREDIT_PHYSICAL")
BATCH = 1 << 20  # accounts per batch: ≈ 2.4 M instruments, ≈ 0.5 GiB of working arrays


def slot_table(pol: Instruments) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per account type (ACCOUNT_TYPES order) and slot: instrument type code (−1 = no slot), p, digital tilt;
    and the index of the type's first card slot (−1 if it has none)."""
    width = max((len(s) for s in pol.slots.values()), default=0)
    kind = np.full((len(ACCOUNT_TYPES), max(width, 1)), -1, dtype=np.int64)
    prob = np.zeros(kind.shape)
    tilt = np.zeros(kind.shape, dtype=bool)
    first_card = np.full(len(ACCOUNT_TYPES), -1, dtype=np.int64)
    for a, acct in enumerate(ACCOUNT_TYPES):
        for s, slot in enumerate(pol.slots.get(acct, [])):
            kind[a, s] = INSTRUMENT_TYPES.index(slot.type)
            prob[a, s], tilt[a, s] = slot.p, slot.digital_tilt
            if kind[a, s] != BANK and first_card[a] < 0:
                first_card[a] = s
    return kind, prob, tilt, first_card


@njit(cache=True, nogil=True, parallel=True)
def _slot_lanes(k0, k1, aid, slot, card, out):  # type: ignore[no-untyped-def]
    """Per (account, slot) event: u of w0..w3 of d 0, and for card slots u of w0..w2 of d 1 (else 0)."""
    for i in prange(aid.shape[0]):
        w0, w1, w2, w3 = philox4x64_10(aid[i], np.uint64(slot[i]), np.uint64(0), np.uint64(0), k0, k1)
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = u01(w0), u01(w1), u01(w2), u01(w3)
        if card[i]:
            v0, v1, v2, _ = philox4x64_10(aid[i], np.uint64(slot[i]), np.uint64(0), np.uint64(1), k0, k1)
            out[i, 4], out[i, 5], out[i, 6] = u01(v0), u01(v1), u01(v2)
        else:
            out[i, 4], out[i, 5], out[i, 6] = 0.0, 0.0, 0.0


def pick(u: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Categorical by inverse CDF per row: the first index whose cumulative mass reaches u (rows of `cdf`)."""
    return np.minimum((u[:, None] > cdf).sum(axis=1), cdf.shape[1] - 1)


@njit(cache=True, nogil=True)
def civil(z: int) -> tuple[int, int, int]:
    """(year, month, day) of day z since 1970-01-01 (H. Hinnant's civil_from_days, proleptic Gregorian)."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


@njit(cache=True, nogil=True)
def day_number(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil)."""
    y -= 1 if m <= 2 else 0
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


@njit(cache=True, nogil=True)
def month_start(month_index: int) -> int:
    """Day number of the first day of month `year·12 + month − 1`."""
    return day_number(month_index // 12, month_index % 12 + 1, 1)


@njit(cache=True, nogil=True, parallel=True)
def _card_dates(opened, u, months, day0, max_reissues, issue, expiry, reissues):  # type: ignore[no-untyped-def]
    y0, m0, d0 = civil(day0)
    for i in prange(opened.shape[0]):
        v = months[i]
        back = y0 * 12 + m0 - 1 - v
        period = day0 - day_number(back // 12, back % 12 + 1, min(d0, 28))
        span = max(min(period, day0 - opened[i]), 1)
        day = day0 - 1 - np.int64(math.floor(u[i] * span))
        y, m, _ = civil(day)
        end = month_start(y * 12 + m - 1 + v)
        r = 0
        while end < day0 and r < max_reissues:
            day = end
            y, m, _ = civil(end)
            end = month_start(y * 12 + m - 1 + v)
            r += 1
        issue[i], expiry[i], reissues[i] = day, end, r


def card_dates(
    opened: np.ndarray, u_issue: np.ndarray, months: np.ndarray, start: dt.date, max_reissues: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Issue day uniform over [max(opened, start − validity), start − 1] (day numbers since 1970; the start's
    day of month taken at most 28 when stepping back); expiry month = issue month + validity. A card whose
    expiry month begins before the start (issued early in the window's first month) is reissued from it, at
    most max_reissues times. Returns (issue, expiry_month, reissues) as day numbers and counts."""
    n = opened.size
    issue, expiry, reissues = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    day0 = (start - dt.date(1970, 1, 1)).days
    _card_dates(
        opened.astype(np.int64), u_issue, months.astype(np.int64), day0, max_reissues, issue, expiry, reissues
    )
    return issue, expiry, reissues


def dates(days: np.ndarray) -> pl.Series:
    """A Date column from day numbers since 1970-01-01."""
    return pl.Series(days.astype(np.int32)).cast(pl.Date)


@dataclass(frozen=True)
class Accounts:
    """A batch of accounts (account_id order) with what S3 reads of their party, issuer and country."""

    account_id: np.ndarray
    party_id: np.ndarray
    account_type: np.ndarray  # code in ACCOUNT_TYPES
    opened: np.ndarray  # day number since 1970-01-01
    region: np.ndarray  # code in REGIONS
    digital: np.ndarray
    iso_num: np.ndarray
    rail: np.ndarray  # code in RAILS
    rank: np.ndarray  # issuer rank

    def __getitem__(self, part: slice) -> Accounts:
        return Accounts(**{f.name: getattr(self, f.name)[part] for f in fields(self)})


def instruments(
    ctx: StateContext, acc: Accounts, pol: Instruments, start: dt.date, max_issuers: int, first_id: int
) -> tuple[pl.DataFrame, int]:
    """Draw every (account, slot) of a batch and build its instruments in (account_id, slot) order, ids from
    first_id. Returns (instruments, reissues)."""
    kind_t, prob_t, tilt_t, first_card = slot_table(pol)
    n_slots = (kind_t >= 0).sum(axis=1)[acc.account_type]
    row = np.repeat(np.arange(acc.account_id.size), n_slots)
    slot = np.arange(row.size) - np.repeat(np.cumsum(n_slots) - n_slots, n_slots)
    a_type = acc.account_type[row]
    kind = kind_t[a_type, slot]
    card = kind != BANK
    key = ctx.family_key("instrument")
    lanes = np.empty((row.size, 7))
    _slot_lanes(np.uint64(key[0]), np.uint64(key[1]), acc.account_id[row], slot, card, lanes)
    ctx.record_draws(
        "instrument", (acc.account_id[row], slot, 0, 0), draws=np.where(card, 8, 4),
        blocks=np.where(card, 2, 1), value=lanes[:, 0],
    )  # fmt: skip
    p = prob_t[a_type, slot]
    p = np.where(tilt_t[a_type, slot], np.minimum(1.0, 2.0 * p * acc.digital[row]), p)
    # the account's scheme and BIN: lanes w1, w2 of d 1 at its first card slot
    lead = np.flatnonzero(slot == first_card[a_type])
    scheme_cdf = np.array([np.cumsum([pol.schemes[r].get(s, 0.0) for s in SCHEMES]) for r in REGIONS])
    scheme_of = np.zeros(acc.account_id.size, dtype=np.int64)
    scheme_of[row[lead]] = pick(lanes[lead, 5], scheme_cdf[acc.region[row[lead]]])
    bin_of = np.zeros(acc.account_id.size, dtype=np.int64)
    bin_of[row[lead]] = np.floor(lanes[lead, 6] * pol.bins_per_issuer).astype(np.int64)
    rows = np.flatnonzero(lanes[:, 0] < p)
    owner = row[rows]
    is_card = card[rows]
    scheme = scheme_of[owner]
    lo = np.array([pol.bin_ranges[s].lo if s in pol.bin_ranges else 0 for s in SCHEMES])[scheme]
    block = np.array([pol.country_block(s) if s in pol.bin_ranges else 0 for s in SCHEMES])[scheme]
    card_bin = (
        lo + acc.iso_num[owner] * block + (acc.rank[owner] - 1) * (block // max_issuers) + bin_of[owner]
    )
    months_t = np.array([v.months for v in pol.validity])
    validity_cdf = np.cumsum([v.p for v in pol.validity])
    months = months_t[np.minimum(np.searchsorted(validity_cdf, lanes[rows, 1]), months_t.size - 1)]
    opened = acc.opened[owner]
    issue, expiry, reissues = card_dates(opened, lanes[rows, 2], months, start, pol.max_reissues)
    kind_k = kind[rows]
    contactless_p = np.array([pol.contactless[r] for r in REGIONS])[acc.region[owner]]
    physical = np.isin(kind_k, [INSTRUMENT_TYPES.index(t) for t in PHYSICAL])
    token = np.select(
        [kind_k == INSTRUMENT_TYPES.index("DEVICE_TOKEN"), kind_k == INSTRUMENT_TYPES.index("NETWORK_TOKEN")],
        [1, 2],
        0,
    )
    out = pl.DataFrame(
        {
            "instrument_id": np.arange(first_id, first_id + rows.size, dtype=np.uint64),
            "account_id": acc.account_id[owner],
            "party_id": acc.party_id[owner],
            "instrument_type": enum_of(kind_k, INSTRUMENT_TYPE),
            "scheme": enum_of(scheme, SCHEME),
            "rail": enum_of(acc.rail[owner], RAIL),
            "card_bin": card_bin.astype(np.uint32),
            "last4": np.floor(lanes[rows, 3] * 10_000).astype(np.uint16),
            "issue_date": dates(np.where(is_card, issue, opened)),
            "expiry_month": dates(expiry),
            "is_tokenised": token > 0,
            "token_type": enum_of(token, TOKEN_TYPE),
            "contactless": (token == 1) | (physical & (lanes[rows, 4] < contactless_p)),
            "cnp_enabled": is_card,
        }
    )
    card_only = [
        pl.when("cnp_enabled").then(pl.col(c)).alias(c)
        for c in ("scheme", "card_bin", "last4", "expiry_month")
    ]
    out = out.with_columns(
        *card_only,
        pl.when(~pl.col("cnp_enabled")).then(pl.col("rail")).alias("rail"),
        pl.lit(None, dtype=pl.UInt64).alias("replaces_instrument_id"),
    )
    return out, int(reissues[is_card].sum())


def read_accounts(ctx: StateContext, pol: Instruments) -> Accounts:
    """Accounts with their party's region, digital affinity and country, and their issuer's rank; party and
    issuer ids are sequential from 1, so both lookups are array gathers."""
    parties = ctx.read("parties").select("country_iso", "region", "digital_affinity")
    countries = parties["country_iso"].dtype.categories.to_list()  # type: ignore[union-attr]
    ref = ctx.sealed_table("ref_countries").select("iso2", "iso_num")
    iso_num = pl.DataFrame({"iso2": countries}).join(ref, on="iso2", how="left")["iso_num"].to_numpy()
    rail = np.array([RAILS.index(pol.rails.get(c, pol.default_rail)) for c in countries])
    rank = ctx.read("issuers")["issuer_rank"].to_numpy().astype(np.int64)
    acc = ctx.read("accounts").select("account_id", "party_id", "account_type", "opened_date", "issuer_id")
    who = acc["party_id"].to_numpy().astype(np.int64) - 1
    country = parties["country_iso"].to_physical().to_numpy()[who]
    return Accounts(
        account_id=acc["account_id"].to_numpy(),
        party_id=acc["party_id"].to_numpy(),
        account_type=acc["account_type"].to_physical().to_numpy().astype(np.int64),
        opened=acc["opened_date"].to_physical().to_numpy().astype(np.int64),
        region=parties["region"].to_physical().to_numpy().astype(np.int64)[who],
        digital=parties["digital_affinity"].to_numpy().astype(np.float64)[who],
        iso_num=iso_num.astype(np.int64)[country],
        rail=rail[country],
        rank=rank[acc["issuer_id"].to_numpy().astype(np.int64) - 1],
    )


def run(ctx: StateContext) -> None:
    pol: Instruments = ctx.policy("6A/instruments.yaml")
    max_issuers = ctx.policy("6A/accounts.yaml").issuers.max_issuers
    start = ctx.policy("CFG/horizon.yaml").start().date()
    acc = read_accounts(ctx, pol)
    n_acc = acc.account_id.size
    first, reissues, cards, valid, most = 1, 0, 0, 0, 0
    with ctx.stream("instruments") as sink:
        for lo in range(0, n_acc, BATCH):
            out, again = instruments(ctx, acc[lo : lo + BATCH], pol, start, max_issuers, first)
            first += out.height
            reissues += again
            expiry = out["expiry_month"].drop_nulls()
            cards += expiry.len()
            valid += int((expiry >= start).sum())
            most = max(
                most, int(np.bincount(out["account_id"].to_numpy().astype(np.int64) - lo - 1).max(initial=0))
            )
            sink.write(out)
    if most > pol.max_per_account:
        raise EngineError(
            "E_6A_CAP_VIOLATION",
            f"an account holds {most} instruments, above max_per_account {pol.max_per_account}",
            where="instruments",
            state=ctx.state,
        )
    ctx.facts["instruments"] = {
        "n": first - 1,
        "per_account": (first - 1) / max(n_acc, 1),
        "cards_and_tokens": cards,
        "valid_at_start": valid / max(cards, 1),
        "reissued": reissues,
    }
