"""Hashed ids: u64 in [1, 2^63) from SHA-256 over length-prefixed parts; collisions probed, counted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from engine.core.canonical import hash_parts

MASK63 = (1 << 63) - 1


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
