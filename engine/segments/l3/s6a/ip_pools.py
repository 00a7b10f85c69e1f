"""IP pool sizing for 6A.S5 (design §3.7 step 3): how many IPs a pool of L links gets, their lognormal target
sizes by largest remainder, and the O(n) water-filling that caps sizes at max_devices_per_ip.

Sizes are exact integers after the weights: they sum to L, each IP holds ≥ 1 link and none exceeds its cap;
`pool_sizes` refuses a pool whose caps cannot hold its links (never silent). Pools number in the hundreds
(countries × IP types), so the loop over pools is Python and the work inside each is numpy."""

from __future__ import annotations

import math

import numpy as np

from engine.segments.l3.s6a.common import largest_remainder


def n_ips(links: int, mean: float, cap: int) -> int:
    """max(⌈L/mean⌉, ⌈L/cap⌉): the pool's mean size, and never more than the cap allows."""
    if links <= 0:
        return 0
    return max(math.ceil(links / mean), -(-links // cap))


def water_fill(target: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Sizes ≤ cap with the same sum: each entry keeps min(target, cap) and the overflow fills, in index
    order, the entries with headroom (a cumulative sum: one O(n) pass). Needs Σcap ≥ Σtarget."""
    target = np.asarray(target, dtype=np.int64)
    cap = np.broadcast_to(np.asarray(cap, dtype=np.int64), target.shape)
    out = np.minimum(target, cap)
    over = int((target - out).sum())
    room = cap - out
    if over > int(room.sum()):
        raise ValueError(f"caps hold {int(cap.sum())} links, fewer than {int(target.sum())}")
    before = np.cumsum(room) - room
    return out + np.clip(over - before, 0, room)


def pool_sizes(links: int, weights: np.ndarray, cap: np.ndarray | int) -> np.ndarray:
    """Sizes of a pool's n = len(weights) IPs: 1 each, plus the largest remainder of the other L − n links by
    weight, water-filled at the cap (a scalar or one per IP)."""
    n = weights.shape[0]
    if n > links or (np.asarray(cap) < 1).any():
        raise ValueError(f"{n} IPs for {links} links, or a cap below 1")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    return water_fill(1 + largest_remainder(links - n, weights), cap)


def runs(sizes: np.ndarray) -> np.ndarray:
    """The run index of each of Σsizes consecutive positions (run i covers sizes[i] positions)."""
    return np.repeat(np.arange(sizes.shape[0]), sizes)
