"""A state process's fixed cost (issue 9 item 6): numba loads only in states that draw, and without
scipy.linalg; nothing outside engine/kernels imports numba directly, so that guard always runs first."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.states import STATES

REPO = Path(__file__).resolve().parents[2]

# states that draw nothing: they must start without numba (1A.S5/S7/S8/S9 read 1A.S3/S6 laws from common.py)
NO_NUMBA = [
    *("1A.S0", "1A.S5", "1A.S7", "1A.S8", "1A.S9", "1B.S0", "1B.S8", "2A.S0", "2A.S2", "2A.S4"),
    *("2B.S0", "2B.S4", "2B.S8", "3A.S0", "3A.S2", "3A.S4", "3A.S5", "3A.S6", "3B.S0", "3B.S4"),
]


def _loaded_after(imports: str) -> set[str]:
    code = f"import sys\n{imports}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO)
    return set(out.stdout.split())


@pytest.mark.parametrize("state", NO_NUMBA)
def test_states_that_draw_nothing_start_without_numba(state: str) -> None:
    loaded = _loaded_after(f"import engine.cli, engine.core.state, {STATES[state].module}")
    assert "numba" not in loaded and "scipy" not in loaded


@pytest.mark.parametrize("state", ["1A.S2", "1B.S5", "ING"])
def test_states_that_draw_load_numba_without_scipy_linalg(state: str) -> None:
    loaded = _loaded_after(f"import engine.cli, engine.core.state, {STATES[state].module}")
    assert "numba" in loaded and "scipy.linalg" not in loaded


def test_kernels_needing_blas_still_compile_and_scipy_still_imports() -> None:
    """np.dot in a kernel asks for scipy.linalg at compile time, after the guard is gone."""
    code = (
        "import numpy as np\n"
        "from engine.kernels import njit\n"
        "f = njit(lambda a, b: np.dot(a, b))\n"
        "from scipy import stats\n"
        "print(f(np.arange(3.0), np.arange(3.0)), stats.norm.cdf(0.0))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO)
    assert out.stdout.split() == ["5.0", "0.5"]


def test_nothing_outside_engine_kernels_imports_numba_directly() -> None:
    pattern = re.compile(r"^\s*(from numba\b|import numba\b)", re.MULTILINE)
    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "engine").rglob("*.py")
        if "kernels" not in p.relative_to(REPO / "engine").parts and pattern.search(p.read_text())
    ]
    assert offenders == []
