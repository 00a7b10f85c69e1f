"""Hashed ids: u64 in [1, 2^63) from SHA-256 over length-prefixed parts; collisions probed, counted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from engine.core.canonical import hash_parts

MASK63 = (1 << 63) - 1
_SPLITMIX_M1 = np.uint64(0xBF58476D1CE4E5B9)
_SPLITMIX_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (Steele, Lea & Flood 2014) of each uint64, wrapping: it spreads sequential
    or structured ids evenly, so `splitmix64(merchant_id) mod shards` balances shards."""
    z = np.asarray(x, dtype=np.uint64).copy()
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= _SPLITMIX_M1
        z ^= z >> np.uint64(27)
        z *= _SPLITMIX_M2
        z ^= z >> np.uint64(31)
    return z


def shard_of(merchant_id: np.ndarray, shards: int) -> np.ndarray:
    """The shard of each merchant (layer2_3.md §0.3): splitmix64(merchant_id) mod shards, as uint16."""
    return (splitmix64(merchant_id) % np.uint64(shards)).astype(np.uint16)


def hid(tag: str, *parts: str | int) -> int:
    """`LE64(SHA-256(lp(tag) ‖ lp(part) ‖ …)[0:8]) & (2^63 − 1)`; may be 0 (callers probe)."""
    return int.from_bytes(hash_parts(tag, *parts)[:8], "little") & MASK63


def assign_ids(tag: str, keys: Iterable[Sequence[str | int]]) -> tuple[np.ndarray, int]:
    """Ids for rows given in PK order; a zero or an id already taken gets a probe counter j = 1, 2, ….

    Returns (ids as uint64, number of probes), so the caller can count them in its run report.
    """
    taken: set[int] = set()
    out: list[int] = []
    probes = 0
    for key in keys:
        value = hid(tag, *key)
        j = 0
        while value == 0 or value in taken:
            j += 1
            probes += 1
            value = hid(tag, *key, j)
        taken.add(value)
        out.append(value)
    return np.asarray(out, dtype=np.uint64), probes
