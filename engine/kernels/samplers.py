"""Samplers over a Philox lane stream (design README §4): every draw is one lane of a counter-addressed block.

Lane consumption is fixed per try so validation can recompute `draws` from stored attempt counts:
std_normal 2; gamma (α ≥ 1) 3 per Marsaglia–Tsang try; gamma (α < 1) 3 per try + 1 for the boost;
poisson 1 (λ < 10) or 2 per PTRS try (λ ≥ 10); discrete power law 1; dirichlet the sum of its gammas.

The rejection loops (Marsaglia–Tsang, PTRS) stop after MAX_TRIES tries (layer2_3 §0.4). numba cannot raise
an EngineError, so a bounded draw returns a sentinel instead: NaN from gamma (and from dirichlet's
components), −1 from poisson; a NaN rate passes the bound on through poisson. The caller turns sentinels into
E_SAMPLER_BOUND with `check_sampler_bound`. A bound hit has probability below 1e-90 per draw, so in practice
it flags a broken parameter (NaN), never a value the engine may silently replace.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.core.errors import EngineError
from engine.kernels.philox import stream_next_u01

_TWO_PI = 2.0 * math.pi
_POISSON_INVERSION_MAX_LAM = 10.0
MAX_TRIES = 64
POISSON_BOUND = -1


@njit(cache=True, nogil=True)
def normal_from_u(u1: float, u2: float) -> float:
    """Box–Muller, cos branch: radius from u1, angle from u2 (both open uniforms, so the log is finite)."""
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)


@njit(cache=True, nogil=True)
def std_normal(st: np.ndarray) -> float:
    """One standard normal from the next 2 lanes (the sin branch is discarded so each draw is addressable)."""
    u1 = stream_next_u01(st)
    u2 = stream_next_u01(st)
    return normal_from_u(u1, u2)


@njit(cache=True, nogil=True)
def _gamma_ge1(st: np.ndarray, alpha: float, max_tries: int) -> float:
    """Marsaglia–Tsang for α ≥ 1; always 3 lanes per try (the uniform is drawn even when v ≤ 0); NaN after
    max_tries rejections."""
    d = alpha - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    for _ in range(max_tries):
        x = std_normal(st)
        u = stream_next_u01(st)
        t = 1.0 + c * x
        if t <= 0.0:
            continue
        v = t * t * t
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2:
            return d * v
        if math.log(u) < 0.5 * x2 + d * (1.0 - v + math.log(v)):
            return d * v
    return math.nan


@njit(cache=True, nogil=True)
def _log_gamma_variate(st: np.ndarray, alpha: float, max_tries: int) -> float:
    """log of a Gamma(α, 1) variate; for α < 1 the boost G(α+1)·u^(1/α) in logs so tiny α cannot underflow.
    A bounded G stays NaN through the logs."""
    if alpha >= 1.0:
        return math.log(_gamma_ge1(st, alpha, max_tries))
    g = _gamma_ge1(st, alpha + 1.0, max_tries)
    return math.log(g) + math.log(stream_next_u01(st)) / alpha


@njit(cache=True, nogil=True)
def gamma(st: np.ndarray, alpha: float, max_tries: int = MAX_TRIES) -> float:
    """Gamma(α, scale 1) by Marsaglia–Tsang, with the α < 1 boost (one extra lane, drawn after the tries);
    NaN when the tries hit the bound (max_tries is lowered by tests only)."""
    if alpha >= 1.0:
        return _gamma_ge1(st, alpha, max_tries)
    return math.exp(_log_gamma_variate(st, alpha, max_tries))


@njit(cache=True, nogil=True)
def _poisson_inversion(u: float, lam: float, zero_truncated: bool) -> int:
    """Smallest k ≥ k0 with t ≤ Σ_{j=k0..k} pmf(j), where k0 = 1 if zero_truncated else 0 and
    t = u·Σ_{j≥k0} pmf(j). The search stops once a term no longer changes the sum (the tail is below
    rounding), which bounds it for λ < 10 without an arbitrary term cap."""
    p = math.exp(-lam)
    k = 0
    t = u
    if zero_truncated:
        k = 1
        t = u * -math.expm1(-lam)
        p *= lam
    f = p
    while t > f:
        k += 1
        p *= lam / k
        f_next = f + p
        if f_next == f:
            break
        f = f_next
    return k


@njit(cache=True, nogil=True)
def _poisson_ptrs(st: np.ndarray, lam: float, max_tries: int) -> int:
    """Hörmann (1993) transformed rejection with squeeze (PTRS) for λ ≥ 10; 2 lanes per try; POISSON_BOUND
    after max_tries rejections."""
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    log_invalpha = math.log(1.1239 + 1.1328 / (b - 3.4))
    vr = 0.9277 - 3.6224 / (b - 2.0)
    for _ in range(max_tries):
        u = stream_next_u01(st) - 0.5
        v = stream_next_u01(st)
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return np.int64(k)
        if k < 0.0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + log_invalpha - math.log(a / (us * us) + b) <= -lam + k * loglam - math.lgamma(
            k + 1.0
        ):
            return np.int64(k)
    return np.int64(POISSON_BOUND)


@njit(cache=True, nogil=True)
def poisson(st: np.ndarray, lam: float, max_tries: int = MAX_TRIES) -> int:
    """Poisson(λ): inversion on one lane for λ < 10, PTRS (2 lanes per try) for λ ≥ 10; POISSON_BOUND when
    PTRS hits the bound or, without drawing, when λ is NaN (an NB2 rate whose gamma hit it)."""
    if math.isnan(lam):
        return np.int64(POISSON_BOUND)
    if lam < _POISSON_INVERSION_MAX_LAM:
        return _poisson_inversion(stream_next_u01(st), lam, False)
    return _poisson_ptrs(st, lam, max_tries)


@njit(cache=True, nogil=True)
def poisson_zero_truncated_inversion(u: float, lam: float) -> int:
    """K ≥ 1 from Poisson(λ) given K ≥ 1, λ < 10, by inversion without rejection.

    Equivalent to inverting u' = e^-λ + u·(1 − e^-λ) on the full CDF, but searches the truncated CDF directly
    (1 − e^-λ via expm1) so small λ loses no precision to cancellation and K = 0 is impossible.
    For λ ≥ 10 the caller uses poisson() and redraws on 0 (layer1 1A.S4).
    """
    if not lam < _POISSON_INVERSION_MAX_LAM:
        raise ValueError("poisson_zero_truncated_inversion needs lam < 10")
    return _poisson_inversion(u, lam, True)


@njit(cache=True, nogil=True)
def discrete_power_law(u: float, lo: int, hi: int, alpha: float) -> int:
    """K on [lo, hi] with P(K ≥ k) = (k^−α − (hi+1)^−α) / (lo^−α − (hi+1)^−α): the floor of a Pareto(α, lo)
    variate truncated to [lo, hi + 1), by inversion of one uniform (so a tail draw costs exactly one lane)."""
    r = (lo / (hi + 1.0)) ** alpha
    x = lo * (1.0 - u * (1.0 - r)) ** (-1.0 / alpha)
    return min(max(np.int64(math.floor(x)), lo), hi)


@njit(cache=True, nogil=True)
def gumbel_from_u(u: float) -> float:
    """Standard Gumbel −ln(−ln u), for Gumbel top-K selection keys."""
    return -math.log(-math.log(u))


@njit(cache=True, nogil=True)
def dirichlet(st: np.ndarray, alpha: np.ndarray, out: np.ndarray) -> None:
    """Dirichlet(α) into `out` as normalised gammas, components in order; normalised in log space so the sum
    stays positive even when every gamma of a tiny α underflows. A gamma that hits the bound leaves NaN."""
    n = alpha.shape[0]
    top = -np.inf
    for i in range(n):
        out[i] = _log_gamma_variate(st, alpha[i], MAX_TRIES)
        top = max(top, out[i])
    total = 0.0
    for i in range(n):
        out[i] = math.exp(out[i] - top)
        total += out[i]
    for i in range(n):
        out[i] /= total


@njit(cache=True, nogil=True)
def categorical_inverse_cdf(u: float, cdf: np.ndarray) -> int:
    """Smallest i with u·cdf[-1] < cdf[i]: cdf[-1] is the total, so a cdf summing to 1 ± rounding is fine.

    Zero-weight categories are never chosen; if rounding puts the target at the total, the answer is the first
    index that reaches the total (never a zero-weight tail).
    """
    total = cdf[cdf.shape[0] - 1]
    t = u * total
    lo = 0
    hi = cdf.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if t < cdf[mid] or cdf[mid] >= total:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, nogil=True)
def normals_from_u(u: np.ndarray) -> np.ndarray:
    """Box–Muller (cos branch) per row of u = (u(w0), u(w1)) with libm's log and cos, as a plain-Python
    replay computes them (numpy's vectorised log/cos may differ in the last bit)."""
    out = np.empty(u.shape[0], dtype=np.float64)
    for i in range(u.shape[0]):
        out[i] = normal_from_u(u[i, 0], u[i, 1])
    return out


@njit(cache=True, nogil=True)
def lognormal_mean1(z: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """exp(σZ − σ²/2) per row with libm's exp: a lognormal of mean 1."""
    out = np.empty(z.shape[0], dtype=np.float64)
    for i in range(z.shape[0]):
        out[i] = math.exp(sigma[i] * z[i] - sigma[i] * sigma[i] / 2.0)
    return out


def check_sampler_bound(hit: np.ndarray, family: str, *, state: str = "") -> None:
    """E_SAMPLER_BOUND if any row of `hit` (a kernel's sentinel mask: NaN gamma, POISSON_BOUND) is set."""
    if hit.any():
        first = int(np.flatnonzero(hit)[0])
        raise EngineError(
            "E_SAMPLER_BOUND",
            f"{int(hit.sum())} draws of {family} (first at batch row {first}) hit the {MAX_TRIES}-try bound "
            "of a rejection sampler or got a NaN rate",
            where=f"RNG family {family}",
            fix="a bound hit has probability below 1e-90: check the sampler's parameters (NaN shape or rate)",
            state=state,
        )
