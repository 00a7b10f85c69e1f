"""Kernel inputs as read-only views (engine/kernels/frozen.py): no copy, the caller's array untouched, and one
numba signature for a kernel whatever the flags of the arrays it was handed."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from engine.kernels.blocks import _block_uniforms, block_uniforms
from engine.kernels.frozen import frozen, frozen_fields


def test_frozen_is_a_read_only_view_of_the_same_memory() -> None:
    a = np.arange(4, dtype=np.int64)
    v = frozen(a)
    assert not v.flags.writeable and a.flags.writeable
    assert np.shares_memory(a, v)
    a[0] = 9
    assert v[0] == 9


class _Pair(NamedTuple):
    ids: np.ndarray
    n: int


def test_frozen_fields_freezes_only_the_arrays() -> None:
    pair = frozen_fields(_Pair(np.zeros(3, np.uint64), 3))
    assert isinstance(pair, _Pair) and not pair.ids.flags.writeable and pair.n == 3


def test_block_uniforms_compiles_one_signature_for_any_input_flags() -> None:
    """Writable and read-only counters, a polars column handed over without a copy, scalar and array words,
    one row and many: all one signature of the kernel (the same answers for the same counters)."""
    ids = np.arange(1, 6, dtype=np.uint64)
    read_only = ids.copy()
    read_only.flags.writeable = False
    column = pl.Series(ids).to_numpy()  # zero-copy: read-only
    assert not column.flags.writeable
    runs = [
        block_uniforms((1, 2), ids),
        block_uniforms((1, 2), read_only),
        block_uniforms((1, 2), column, 0, 0, 0),
        block_uniforms((1, 2), ids, ids.copy(), 0, np.uint64(0)),
        block_uniforms((1, 2), ids[:1]),
    ]
    # every signature the process compiled holds read-only counters, so all of these are one signature
    assert _block_uniforms.signatures
    for sig in _block_uniforms.signatures:
        assert not any(t.mutable for t in sig[2:6]), sig
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])
    np.testing.assert_array_equal(runs[0][:1], runs[4])
    assert not np.array_equal(runs[0], runs[3])  # another c1: other blocks
