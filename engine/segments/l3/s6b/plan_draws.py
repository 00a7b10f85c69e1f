"""The `6B.plan` draws of 6B.S3 and the time primitive every campaign flow is placed with.

Family `6B.plan`, counter ⟨type_code, instance, k, j⟩ (design §4.1: (type_code, instance, k, 0); the last
word is used as the flow, card or event index j inside the instance), four lanes per block:
  k = INSTANCE   j = 0: start, start hour, size, gamma; j = 1: mode, share, cross-border coin, burst length
  k = TARGET     j = target (card or party) index: party, window, coins; j = 2^20 the instance's operator
                 device and anonymous IPs
  k = PLACE      j = flow: merchant, foreign coin, site or edge, terminal
  k = TIME       j = flow: the planner's coins (offset in a burst, delays, channel and cross-border coins)
  k = TACTIC     j = flow: AMOUNT_SHIFT, IP_SWAP_ANON, DEVICE_SWAP_SHARED, SITE_SHIFT
  k = TACTIC2    j = flow: BURST_TIMING, CLEARING_SUPPRESSION, REFUND_INJECTION, the IP kind (VPN or proxy)
  k = WHEN       j = flow: day, local hour, instant in the hour, instant in a short span (weighted_time)
  k = PRECURSOR  j = event type: occurs coin, lead time, device, IP
Breaches use type_code 0: ⟨0, breach, BREACH, 0⟩ (merchant, start, window, delay). Every block is recorded
(one event per block, its four lanes) so 6B.S7 can account for the family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.kernels.blocks import block_uniforms

INSTANCE, TARGET, PLACE, TIME, TACTIC, TACTIC2, WHEN, PRECURSOR, BREACH = range(9)
LANES = 4
US = 1_000_000
DAY_US = 86_400 * US
HOUR_US = 3_600 * US

Recorder = Callable[[tuple[np.ndarray, ...], np.ndarray], None]


@dataclass
class Draws:
    """Uniform blocks of `6B.plan` under one key; `record` (the state's ledger) sees every block drawn."""

    key: tuple[int, int]
    record: Recorder | None = None

    def u(self, type_code: int, instance: np.ndarray | int, k: int, j: np.ndarray | int) -> np.ndarray:
        inst = np.asarray(instance, dtype=np.uint64)
        jj = np.asarray(j, dtype=np.uint64)
        n = max(inst.size, jj.size)
        c0 = np.full(n, type_code, dtype=np.uint64)
        c1 = np.broadcast_to(inst, (n,)).astype(np.uint64)
        c3 = np.broadcast_to(jj, (n,)).astype(np.uint64)
        out = block_uniforms(self.key, c0, c1, k, c3, lanes=LANES)
        if self.record is not None and n:
            self.record((c0, c1, np.full(n, k, dtype=np.uint64), c3), out[:, 0])
        return out


def hour_cdf(profile: np.ndarray, boost_hours: tuple[int, int], factor: float) -> np.ndarray:
    """Cumulative local-hour weights: the legit profile × factor on hours [lo, hi] (amendment 1: fraud 2–3×
    likelier at night), normalised; 25 entries from 0 to 1."""
    w = np.asarray(profile, dtype=np.float64).copy()
    w[boost_hours[0] : boost_hours[1] + 1] *= factor
    cdf = np.zeros(25)
    np.cumsum(w / w.sum(), out=cdf[1:])
    cdf[-1] = 1.0
    return cdf


def weighted_time(
    lo_us: np.ndarray, hi_us: np.ndarray, offset_s: np.ndarray, u: np.ndarray, cdf: np.ndarray
) -> np.ndarray:
    """A time in [lo, hi) per row from a TIME block `u` (n, 4). Spans of a day or more: a whole day drawn
    uniformly (lane 0), then a local hour from `cdf` (lane 1) and a uniform instant inside it (lane 2), in
    the local clock `offset_s` (UTC offset); shorter spans: uniform (lane 3). Stays inside [lo, hi)."""
    lo = np.asarray(lo_us, dtype=np.int64)
    span = np.maximum(np.asarray(hi_us, dtype=np.int64) - lo, 1)
    days = span // DAY_US
    base = lo + np.floor(u[:, 0] * days).astype(np.int64) * DAY_US
    hour = np.minimum(np.searchsorted(cdf, u[:, 1], side="right") - 1, 23)
    local_s = (base // US + np.asarray(offset_s, dtype=np.int64)) % 86_400
    delta = ((hour * 3_600 - local_s) % 86_400) * US + np.floor(u[:, 2] * HOUR_US).astype(np.int64)
    day_time = base + np.minimum(delta, DAY_US - 1)
    plain = lo + np.floor(u[:, 3] * span).astype(np.int64)
    return np.where(days >= 1, day_time, plain)


def range_draw(u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return lo + np.asarray(u) * (hi - lo)


def int_draw(u: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Uniform integer in [lo, hi]."""
    return np.minimum(lo + np.floor(np.asarray(u) * (hi - lo + 1)).astype(np.int64), hi)
