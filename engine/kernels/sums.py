"""Float sums in a stated order: strict left-to-right addition, which numpy's reductions do not promise
(they add pairwise, in blocks), for sums whose last bit must not depend on the library's grouping."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def segment_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Σ values[starts[i]:starts[i+1]], each segment added left to right."""
    out = np.zeros(starts.size, dtype=np.float64)
    for i in range(starts.size):
        end = starts[i + 1] if i + 1 < starts.size else values.size
        total = 0.0
        for j in range(starts[i], end):
            total += values[j]
        out[i] = total
    return out
