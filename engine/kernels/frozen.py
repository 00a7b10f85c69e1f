"""Read-only views of kernel inputs.

numba types an array's read-only flag into a kernel's signature. Whether an input arrives read-only depends on
how it was made: polars hands a column over read-only when it needs no copy and writable when it copies (and
whether it copies follows its chunking, so its thread count), and numpy's broadcast and contiguity helpers
return views or copies by shape. One kernel called both ways compiles twice, and kernels_warm's registry
(signatures.py) holds the signatures of one machine. Inputs passed through `frozen` are read-only whatever
made them, so a kernel has one signature everywhere. A view costs no copy."""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

T = TypeVar("T", bound=tuple[Any, ...])


def frozen(array: np.ndarray) -> np.ndarray:
    """A read-only view of `array` (the array itself is left as it is)."""
    view = array.view()
    view.flags.writeable = False
    return view


def frozen_fields(arrays: T) -> T:
    """A named tuple of inputs with every array field a read-only view."""
    fields = {
        name: frozen(value)
        for name, value in zip(arrays._fields, arrays, strict=True)  # type: ignore[attr-defined]
        if isinstance(value, np.ndarray)
    }
    return arrays._replace(**fields)  # type: ignore[attr-defined, no-any-return]
