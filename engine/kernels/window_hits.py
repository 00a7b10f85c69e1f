"""Whether an owner has an event in a trailing time window: the per-row binary search 6B.S5's score features
need (a new device login, contact change or payee in the 24 h before a flow), over events held once per run in
owner-major CSR form. A polars asof join re-sorted and re-hashed millions of events for every batch."""

from __future__ import annotations

import numpy as np

from engine.kernels import njit


@njit(cache=True, nogil=True)
def hits_within(
    first: np.ndarray, ts: np.ndarray, owner: np.ndarray, at: np.ndarray, window: np.int64, out: np.ndarray
) -> None:
    """out[i] = owner[i]'s event times ts[first[o]:first[o + 1]] (ascending) hold one in [at[i] − window,
    at[i]]; an owner below 0 or past the CSR has none."""
    for i in range(owner.shape[0]):
        o = owner[i]
        out[i] = False
        if o < 0 or o + 1 >= first.shape[0]:
            continue
        lo = first[o]
        j = lo + np.searchsorted(ts[lo : first[o + 1]], at[i], side="right")
        out[i] = j > lo and at[i] - ts[j - 1] <= window
