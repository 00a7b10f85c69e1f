"""Points of compromise (amendment 3): breached merchants, the cards they captured, and which card-fed
instance (CARD_TESTING, CNP_STOLEN, COUNTERFEIT) spends which breach's cards.

About 1 merchant in 2,000 per 28 days is breached (POS skimmers, web skimming) over the horizon and the
look-back before it from which captured cards are still spent (the 95 % quantile of the spend delay). The
card-fed instances, in start order, are spread over the breaches (stratified: instance r of R takes breach
⌊r·B/R⌋), and each breach ends at least its instances' drawn spend delay (lognormal median 21 d, clipped
[2, 180] d) before the earliest of them starts, so every delay lies in the clip. A breach captures
p_capture of
the cards its merchant saw in the window (weekly demand × window / 7 flows, one card each), at least the
cards its instances spend; the captured cards are those of parties drawn by activity from the merchant's
country (the domestic draw S1 makes most often), each with a card usable online.

Draws: `6B.plan` ⟨0, breach, BREACH, 0⟩ lanes merchant, window length; ⟨0, breach, BREACH, 1 + c⟩ lane 0 the
c-th captured party, lane 1 its card; the instance's delay is its INSTANCE j=1 lane 3 — see plan_draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.kernels.normal import ndtri_array
from engine.segments.l3.s6b.plan_draws import BREACH, DAY_US, Draws, int_draw
from engine.segments.l3.s6b.plan_world import ECOM, POS, World, cumulative, pick_in
from engine.segments.l3.s6b.policy import Compromise

BREACH_CHANNELS = {"POS": POS, "ECOM": ECOM}


@dataclass(frozen=True)
class Pools:
    """Captured cards: flat arrays with each breach's [lo, lo + size) run; `of` maps a fed instance (by its
    position in the fed list) to its breach."""

    table: pl.DataFrame  # breaches rows (breach_id, merchant_id, channel, start_ts, end_ts, n_captured)
    card: np.ndarray
    party: np.ndarray
    lo: np.ndarray
    size: np.ndarray

    def gather(self, breach: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(card, party) at position pos (mod the pool size) of each row's breach."""
        b = np.asarray(breach, dtype=np.int64)
        idx = self.lo[b] + np.asarray(pos, dtype=np.int64) % np.maximum(self.size[b], 1)
        return self.card[idx], self.party[idx]


def spend_delay_us(pol: Compromise, u: np.ndarray) -> np.ndarray:
    d = pol.spend_delay_d
    days = np.clip(np.exp(np.log(d.median) + d.sigma * ndtri_array(np.asarray(u, dtype=np.float64))), *d.clip)
    return np.floor(days * DAY_US).astype(np.int64)


def breach_count(pol: Compromise, n_merchants: int, horizon_days: float, fed: int) -> int:
    """Breaches over the horizon and its look-back, at least one when an instance needs cards and at most one
    per fed instance."""
    lookback = pol.spend_delay_d.median * float(np.exp(1.645 * pol.spend_delay_d.sigma))
    days = horizon_days + min(lookback, pol.spend_delay_d.clip[1])
    n = round(pol.breach_rate_per_merchant_28d * n_merchants * days / 28.0)
    return 0 if fed == 0 else max(1, min(n, fed))


def plan_breaches(
    world: World,
    pol: Compromise,
    draws: Draws,
    starts: np.ndarray,
    delays: np.ndarray,
    cards_needed: np.ndarray,
    horizon_days: float,
) -> tuple[Pools, np.ndarray]:
    """Breaches for the fed instances (their starts, drawn delays and card needs, in any order); returns the
    pools and each fed instance's breach index."""
    fed = starts.shape[0]
    cells = world.cells
    channels = np.array([BREACH_CHANNELS[c] for c in pol.channels])
    eligible = np.flatnonzero(np.isin(cells.channel, channels))
    n_b = breach_count(pol, np.unique(cells.merchant_id[eligible]).shape[0], horizon_days, fed)
    order = np.argsort(starts, kind="stable")
    of = np.empty(fed, dtype=np.int64)
    of[order] = (np.arange(fed) * n_b) // max(fed, 1)
    ub = draws.u(0, np.arange(n_b), BREACH, 0)
    cum = cumulative(cells.weekly[eligible])
    cell = eligible[
        pick_in(cum, np.zeros(n_b, np.int64), np.full(n_b, eligible.shape[0], np.int64), ub[:, 0])
    ]
    latest = np.full(n_b, np.iinfo(np.int64).max)
    np.minimum.at(latest, of, starts - delays)
    window_d = int_draw(ub[:, 1], pol.window_days.lo, pol.window_days.hi)
    end = latest
    start = end - window_d * DAY_US
    seen = cells.weekly[cell] * window_d / 7.0
    need = np.zeros(n_b, dtype=np.int64)
    np.maximum.at(need, of, cards_needed)
    n_cap = np.maximum(np.maximum(np.round(pol.p_capture * seen).astype(np.int64), need), 1)
    # only the cards the instances spend are materialised (the rest of the capture is only counted)
    kept = np.maximum(need, 1)
    card, party = capture(world, draws, cells.country[cell], kept)
    lo = np.cumsum(kept) - kept
    table = pl.DataFrame(
        {
            "breach_id": pl.Series(np.arange(1, n_b + 1), dtype=pl.UInt64),
            "merchant_id": pl.Series(cells.merchant_id[cell], dtype=pl.UInt64),
            "channel_code": cells.channel[cell],
            "start_us": start,
            "end_us": end,
            "n_captured": pl.Series(n_cap, dtype=pl.UInt32),
        }
    )
    return Pools(table, card, party, lo, kept), of


def capture(
    world: World, draws: Draws, country: np.ndarray, n_cap: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """n_cap[b] (card, party) per breach: parties of the breached merchant's country by activity among those
    holding a card usable online (anywhere when the country has none), then one of their cards."""
    ent = world.entities
    b = np.repeat(np.arange(n_cap.shape[0]), n_cap)
    c = np.arange(b.shape[0]) - np.repeat(np.cumsum(n_cap) - n_cap, n_cap)
    u = draws.u(0, b, BREACH, 1 + c)
    party = ent.in_country(np.where(ent.has_instrument(ECOM), ent.activity, 0.0), country[b], u[:, 0])
    card, _ = ent.instrument(party, np.full(party.shape[0], ECOM), u[:, 1])
    return card, party
