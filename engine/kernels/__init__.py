"""The engine's numba kernels: Philox lane streams, samplers, alias tables and count models.

Importing numba costs a state process 0.1–0.4 s more when scipy is installed beside it, because
`numba.np.arraymath` imports scipy.linalg at import time only to learn whether np.convolve and np.correlate
may call BLAS. No kernel here uses those two, so the first import of this package loads numba with
scipy.linalg hidden (np.convolve/np.correlate would then use numba's own loop). Anything that does need
scipy.linalg — np.dot or np.linalg in a kernel, which ask for it at compile time, or scipy.stats — imports it
normally afterwards: it is hidden only while numba itself loads. Code outside this package takes numba's
decorators from here (`from engine.kernels import njit, prange`), so the guarded import always comes first.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType


class _HideScipyLinalg(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "scipy.linalg" or fullname.startswith("scipy.linalg."):
            raise ModuleNotFoundError(f"{fullname} is hidden while numba loads", name=fullname)
        return None


def _import_numba() -> None:
    if "numba" in sys.modules or "scipy.linalg" in sys.modules:
        return
    finder = _HideScipyLinalg()
    sys.meta_path.insert(0, finder)
    try:
        import numba.np.arraymath  # noqa: F401  (the module that probes for BLAS; numba loads it lazily)
    finally:
        sys.meta_path.remove(finder)


_import_numba()

from numba import njit, prange  # noqa: E402  (after the guarded import, on purpose)

__all__ = ["njit", "prange"]
