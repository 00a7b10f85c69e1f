"""The inverse normal CDF for draws whose quantile is tilted (layer2_3 §0.4): amounts and latencies.

Wichura's AS241 (PPND16, Appl. Statist. 1988, 37(3) 477–484): three rational approximations of degree 7 —
the centre |u − ½| ≤ 0.425, then r = √(−ln min(u, 1−u)) ≤ 5 and beyond — accurate to about 1e-16. One uniform
gives one normal, monotone in u (to a few ulps of rounding), so a tilt of the uniform tilts the variate
(Box–Muller needs two lanes and is not monotone). Only +, ×, ÷, log and sqrt: a plain-Python replay gives the
same bits. Agreement with scipy.special.ndtri is pinned in tests/core/test_normal_quantile.py.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_SPLIT1 = 0.425
_SPLIT2 = 5.0
_CONST1 = 0.180625  # SPLIT1²
_CONST2 = 1.6

_A = (
    3.3871328727963666080e0,
    1.3314166789178437745e2,
    1.9715909503065514427e3,
    1.3731693765509461125e4,
    4.5921953931549871457e4,
    6.7265770927008700853e4,
    3.3430575583588128105e4,
    2.5090809287301226727e3,
)
_B = (
    1.0,
    4.2313330701600911252e1,
    6.8718700749205790830e2,
    5.3941960214247511077e3,
    2.1213794301586595867e4,
    3.9307895800092710610e4,
    2.8729085735721942674e4,
    5.2264952788528545610e3,
)
_C = (
    1.42343711074968357734e0,
    4.63033784615654529590e0,
    5.76949722146069140550e0,
    3.64784832476320460504e0,
    1.27045825245236838258e0,
    2.41780725177450611770e-1,
    2.27238449892691845833e-2,
    7.74545014278341407640e-4,
)
_D = (
    1.0,
    2.05319162663775882187e0,
    1.67638483018380384940e0,
    6.89767334985100004550e-1,
    1.48103976427480074590e-1,
    1.51986665636164571966e-2,
    5.47593808499534494600e-4,
    1.05075007164441684324e-9,
)
_E = (
    6.65790464350110377720e0,
    5.46378491116411436990e0,
    1.78482653991729133580e0,
    2.96560571828504891230e-1,
    2.65321895265761230930e-2,
    1.24266094738807843860e-3,
    2.71155556874348757815e-5,
    2.01033439929228813265e-7,
)
_F = (
    1.0,
    5.99832206555887937690e-1,
    1.36929880922735805310e-1,
    1.48753612908506148525e-2,
    7.86869131145613259100e-4,
    1.84631831751005468180e-5,
    1.42151175831644588870e-7,
    2.04426310338993978564e-15,
)


@njit(cache=True, nogil=True)
def _ratio(num: tuple, den: tuple, x: float) -> float:  # type: ignore[type-arg]
    """P(x)/Q(x) by Horner, coefficients lowest degree first (numba unrolls the tuples)."""
    p = num[7]
    q = den[7]
    for k in range(6, -1, -1):
        p = p * x + num[k]
        q = q * x + den[k]
    return p / q


@njit(cache=True, nogil=True)
def ndtri(u: float) -> float:
    """Φ⁻¹(u): −inf at 0, +inf at 1, NaN outside [0, 1] or for NaN (as scipy.special.ndtri)."""
    if not 0.0 < u < 1.0:
        if u == 0.0:
            return -math.inf
        if u == 1.0:
            return math.inf
        return math.nan
    q = u - 0.5
    if abs(q) <= _SPLIT1:
        return q * _ratio(_A, _B, _CONST1 - q * q)
    r = math.sqrt(-math.log(u if q < 0.0 else 1.0 - u))
    x = _ratio(_C, _D, r - _CONST2) if r <= _SPLIT2 else _ratio(_E, _F, r - _SPLIT2)
    return -x if q < 0.0 else x


@njit(cache=True, nogil=True, parallel=True)
def ndtri_array(u: np.ndarray) -> np.ndarray:
    """ndtri per element of a 1-d array."""
    out = np.empty(u.shape[0], dtype=np.float64)
    for i in prange(u.shape[0]):
        out[i] = ndtri(u[i])
    return out


@njit(cache=True, nogil=True)
def lognormal_quantile(u: float, median: float, sigma: float) -> float:
    """The u-quantile of a lognormal with this median and log-sd: median·exp(σ·Φ⁻¹(u))."""
    return median * math.exp(sigma * ndtri(u))
