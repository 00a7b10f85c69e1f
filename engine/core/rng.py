"""RNG laws on the Python side: family keys, per-family accounting, and one-draw-per-entity uniforms.

Keys, not streams (design README §4): a family's key comes from (seed, the segment's parameter_hash, label)
only, and the counter carries entity ids, so results never depend on shard, worker or row order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.core.canonical import hash_parts

_U64_MAX = (1 << 64) - 1


def family_key(seed: int, parameter_hash: str, label: str) -> tuple[int, int]:
    """Philox key: the first 128 bits of hash_parts("engine", seed, parameter_hash, label) as two LE u64."""
    if isinstance(seed, bool) or not 0 <= seed <= _U64_MAX:
        raise ValueError(f"seed must be an integer in [0, 2^64), got {seed!r}")
    digest = hash_parts("engine", seed, parameter_hash, label)
    return int.from_bytes(digest[0:8], "little"), int.from_bytes(digest[8:16], "little")


@dataclass(slots=True)
class _FamilyTally:
    draws: int
    blocks: int
    streams: int
    counter_lo: int
    counter_hi: int

    def add(self, other: _FamilyTally) -> None:
        self.draws += other.draws
        self.blocks += other.blocks
        self.streams += other.streams
        self.counter_lo = min(self.counter_lo, other.counter_lo)
        self.counter_hi = max(self.counter_hi, other.counter_hi)


class RngLedger:
    """Per-family totals a state writes to rng_accounting.json and validation recomputes from its outputs."""

    def __init__(self) -> None:
        self._families: dict[str, _FamilyTally] = {}

    def record(
        self, family: str, draws: int, blocks: int, counter_lo: int, counter_hi: int, streams: int = 1
    ) -> None:
        """Add `streams` counters' usage (default one); counter_lo/hi bound their first counter word."""
        for name, value in (("draws", draws), ("blocks", blocks), ("streams", streams)):
            if value < 0:
                raise ValueError(f"{family}: {name} must be >= 0, got {value}")
        if not 0 <= counter_lo <= counter_hi <= _U64_MAX:
            raise ValueError(
                f"{family}: need 0 <= counter_lo <= counter_hi < 2^64, got {counter_lo}, {counter_hi}"
            )
        self._add(family, _FamilyTally(draws, blocks, streams, counter_lo, counter_hi))

    def merge(self, other: RngLedger) -> None:
        """Fold another ledger (e.g. a shard's) into this one; the result does not depend on merge order."""
        for family, tally in other._families.items():
            self._add(family, replace(tally))

    @classmethod
    def from_dict(cls, doc: dict[str, dict[str, Any]]) -> RngLedger:
        """The ledger `as_dict` wrote (a run report's rng_accounting), to merge shards' reports."""
        ledger = cls()
        for family, t in doc.items():
            ledger.record(
                family,
                int(t["draws"]),
                int(t["blocks"]),
                int(t["counter_lo"]),
                int(t["counter_hi"]),
                streams=int(t["streams"]),
            )
        return ledger

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """JSON-ready, sorted by family; counter bounds as decimal strings (JSON numbers stop at 2^53)."""
        return {
            family: {
                "draws": t.draws,
                "blocks": t.blocks,
                "streams": t.streams,
                "counter_lo": str(t.counter_lo),
                "counter_hi": str(t.counter_hi),
            }
            for family, t in sorted(self._families.items())
        }

    def _add(self, family: str, tally: _FamilyTally) -> None:
        current = self._families.get(family)
        if current is None:
            self._families[family] = tally
        else:
            current.add(tally)


def uniforms_for_ids(
    k0: int, k1: int, ids: np.ndarray, c1: int = 0, c2: int = 0, c3: int = 0, lane: int = 0
) -> np.ndarray:
    """u01 of lane `lane` of block ⟨id, c1, c2, c3⟩ for each id: one block and one draw per entity."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype != np.uint64:
        raise TypeError(f"ids must be a 1-d uint64 array, got {ids.dtype} with shape {ids.shape}")
    from engine.kernels.philox import uniforms_by_id  # numba loads only in the states that draw

    out = np.empty(ids.shape[0], dtype=np.float64)
    uniforms_by_id(k0, k1, ids, c1, c2, c3, lane, out)
    return out


CounterWord = np.ndarray | int


def counter_words(n: int, counter: tuple[CounterWord, ...]) -> tuple[np.ndarray, ...]:
    """⟨c0, c1, c2, c3⟩ as four u64 arrays of length n (a missing or scalar word is broadcast)."""
    if not 1 <= len(counter) <= 4:
        raise ValueError(f"a counter has 1 to 4 words, got {len(counter)}")
    words = (*counter, *(0,) * (4 - len(counter)))
    return tuple(np.ascontiguousarray(np.broadcast_to(np.asarray(w, dtype=np.uint64), (n,))) for w in words)


@dataclass(frozen=True)
class SampleRule:
    """How many draw events a replay (and the sampled event log) covers: every one of a family with fewer
    than `full_below` events, else max(min_rows, ⌈share·n⌉) (layer1 §0 "RNG": 1 %, at least 100, 10^5)."""

    share: float = 0.01
    min_rows: int = 100
    full_below: int = 100_000

    @classmethod
    def of(cls, chosen: Any) -> SampleRule:
        """The rule of a validation policy's `replay_sample` (share, min_rows); the default without one."""
        return cls() if chosen is None else cls(chosen.share, chosen.min_rows)

    def size(self, n: int) -> int:
        if n < self.full_below:
            return n
        return min(n, max(self.min_rows, math.ceil(self.share * n)))


def keyed_sample(family: str, counter: tuple[CounterWord, ...], n: int, rule: SampleRule) -> np.ndarray:
    """Row positions (ascending) of a family's keyed sample: the `rule.size(n)` events whose start counter
    hashes lowest under the family's sample key. Depends only on the counters, never on row order or seed."""
    k = rule.size(n)
    if k in (0, n):
        return np.arange(k, dtype=np.int64)
    c0, c1, c2, c3 = counter_words(n, counter)
    digest = hash_parts("replay-sample", family)
    key = (int.from_bytes(digest[0:8], "little"), int.from_bytes(digest[8:16], "little"))
    from engine.kernels.blocks import block_raw_lane0  # numba loads only in the states that sample

    rank = block_raw_lane0(key, c0, c1, c2, c3)
    # the k lowest of (rank, c0, c1, c2, c3) in linear time: every row ranked below the k-th rank, then the
    # rows tied at it by their counters (a 64-bit tie falls back to the counter itself, then to the position)
    kth = np.partition(rank, k - 1)[k - 1]
    below = np.flatnonzero(rank < kth)
    tied = np.flatnonzero(rank == kth)
    tied = tied[np.lexsort((c3[tied], c2[tied], c1[tied], c0[tied]))[: k - below.size]]
    return np.sort(np.concatenate((below, tied)))
