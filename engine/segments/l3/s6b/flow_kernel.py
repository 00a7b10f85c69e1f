"""6B's flow-plan kernel (layer2_3 §4.5 with amendments 4, 7, 8, 9): one row's legitimate plan from its seven
`6B.flow` blocks, in parallel over rows. Every row costs the same blocks whatever its branches, so the draw
accounting is PLAN_BLOCKS per flow and a row's plan depends only on its flow_id and attributes.

Counter ⟨flow_id, k, 0, d⟩ (design §4.1: k = 0 amount, 1 timing, 2 branches; d advances within k):

| k d | w0 | w1 | w2 | w3 |
|---|---|---|---|---|
| 0 0 | point-mass coin | price point / ATM point / transfer round-to | tail quantile | ECOM $0 coin |
| 1 0 | auth latency | step-up challenge | step-up user | retry delay |
| 1 1 | clearing path coin | cut-off jitter / late days / batch jitter | clearing quantile | reversal delay |
| 2 0 | decline coin, then reason | retry coin | reversal coin | stand-in coin |
| 2 1 | refund coin | cancellation coin, then its delay | partial coin | partial fraction |
| 2 2 | tip coin | tip fraction | entry mode | chip CVM |
| 2 3 | wallet | recurring coin | CVV result | AVS result |

"coin, then X" lanes are one uniform for two sequential choices: below p the rescaled u/p, above it
(u − p)/(1 − p), are again uniform. Lognormals are median·exp(σ·Φ⁻¹(u)) (engine/kernels/normal.py); the
delayed-capture gamma uses the Wilson–Hilferty cube of Φ⁻¹(u), monotone in u and within 1 % of the gamma
quantile for shape ≥ 1 inside its clip. AMOUNT_SHIFT tilts w1 and w2 of block ⟨flow_id, 0, 0, 0⟩.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from engine.kernels import njit, prange
from engine.kernels.normal import ndtri
from engine.kernels.philox import philox4x64_10, u01

POS, ECOM, ATM, TRANSFER = 0, 1, 2, 3
PLAN_BLOCKS = 7  # blocks per flow (and 4 lanes each)
BLOCKS = ((0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (2, 3))  # (k, d) of each block, as in the table
# instrument kinds: 6A's INSTRUMENT_TYPES order, then 7 = unknown (a probe on a non-existent card)
DEVICE_TOKEN, NETWORK_TOKEN, BANK_ACCOUNT, UNKNOWN_INSTRUMENT = 4, 5, 6, 7
# codes in the contract's enum orders
INCORRECT_PIN = 3
CHIP, CONTACTLESS, MAGSTRIPE, MANUAL, ECOM_ENTRY, COF = 0, 1, 2, 3, 4, 5
PIN, SIGNATURE, NO_CVM, CDCVM = 0, 1, 2, 3
WALLET_NONE, CLICK_TO_PAY = 0, 4
NOT_PRESENT, AVS_NOT_SUPPORTED = 3, 4
NULL = -1
US = 1_000_000
DAY_US = 86_400 * US
HOUR_US = 3_600 * US
CHUNK = 4096  # rows per parallel task
# parallel over the prange loop only: the row body is scalar code, and numba's other parfor passes (array
# expressions, fusion) spent ≈ 10 s of plan_kernel's ≈ 43 s compile on it for nothing
PRANGE_ONLY = {
    "comprehension": False,
    "reduction": False,
    "inplace_binop": False,
    "setitem": False,
    "numpy": False,
    "stencil": False,
    "fusion": False,
}
TILT_CAP = 0.995  # an upward amount tilt stops at the legit law's 99.5th percentile (R07c's upper bound)


class Params(NamedTuple):
    """The policies as arrays (flow_tables.params builds them). A lognormal is [median, sigma, lo, hi] in the
    unit its name carries; cdf arrays are cumulative."""

    point_mass: np.ndarray  # f64 [2] POS, ECOM
    median: np.ndarray  # f64 [sector, 2]
    sigma: np.ndarray  # f64 [sector, 2]
    points: np.ndarray  # f64 [sector, 2, P], padded
    n_points: np.ndarray  # i64 [sector, 2]
    income: np.ndarray  # f64 [segment + 1] (last: unknown party, 1.0)
    atm_points: np.ndarray  # f64 [A] base major
    atm_cdf: np.ndarray  # f64 [A]
    atm_mass: float
    atm_tail: np.ndarray  # lognormal, base major
    tr_median: float
    tr_sigma: float
    tr_round_share: float
    tr_round_cdf: np.ndarray  # f64 [R]
    max_major: float
    zero_share: float
    decline_rate: np.ndarray  # f64 [4]
    reason_w: np.ndarray  # f64 [4, segment + 1, 7] tilted weights (not normalised)
    retry_p: float
    retry_reason: np.ndarray  # bool [7]
    retry_s: np.ndarray  # lognormal s
    auth_s: np.ndarray  # lognormal s
    timeout_s: np.ndarray  # f64 [4]
    stand_in: float
    challenge_s: np.ndarray
    user_s: np.ndarray
    cutoff_h: float
    cutoff_jitter_h: float
    after_cutoff_h: np.ndarray
    late_share: float
    late_d: np.ndarray  # [lo, hi]
    ecom_same: float
    capture_d: np.ndarray  # gamma [shape, scale, lo, hi]
    atm_h: np.ndarray
    instant_s: np.ndarray
    batch_h: float
    batch_jitter_h: float
    refund_p: np.ndarray  # f64 [sector, 2]
    partial_share: float
    partial: np.ndarray  # [lo, hi]
    cancel_share: float
    cancel_s: np.ndarray  # [lo, hi]
    return_d: np.ndarray
    reversal_p: float
    reversal_s: np.ndarray
    tip_p: float
    tip: np.ndarray  # [lo, hi]
    contactless: np.ndarray  # f64 [region]
    magstripe: float
    manual: float
    fraud_magstripe: float
    cof_share: (
        np.ndarray
    )  # f64 [sector]: P(COF | ECOM, not recurring), so a sector's COF share ≥ the policy's
    chip_cvm_cdf: np.ndarray  # f64 [region, 3] PIN, SIGNATURE, NONE
    cvv_cdf: np.ndarray  # f64 [3]
    avs_cdf: np.ndarray  # f64 [4]
    recurring: np.ndarray  # f64 [sector]
    fraud_recurring: float
    wallet_cdf: np.ndarray  # f64 [os + 1, 5] (last: unknown OS, the ANDROID mix)
    click_to_pay: float


class Countries(NamedTuple):
    """Per country code: money units and the merchant region (flow_tables.countries builds them)."""

    scale: np.ndarray  # f64 units per USD
    exp10: np.ndarray  # f64 10^minor_units
    step: np.ndarray  # i64 rounding step (minor units)
    atm_step: np.ndarray  # i64 ATM note step (minor units)
    tr_steps: np.ndarray  # i64 [country, R] transfer round-to steps (minor units)
    cvm_limit: np.ndarray  # f64 no-CVM contactless limit (minor units); < 0: no limit
    region: np.ndarray  # i64
    tip: np.ndarray  # bool: tipping country


class Rows(NamedTuple):
    """Per flow, codes as above; `tilt` ≤ 1 means none."""

    flow_id: np.ndarray  # u64
    channel: np.ndarray  # i64
    country: np.ndarray  # i64
    sector: np.ndarray  # i64
    tip_mcc: np.ndarray  # bool
    segment: np.ndarray  # i64 (len(SEGMENTS) = unknown)
    instrument: np.ndarray  # i64
    contactless: np.ndarray  # bool: the card can tap
    instant: np.ndarray  # bool: a bank account on an instant rail
    os: np.ndarray  # i64
    avs: np.ndarray  # bool: the issuer's country verifies addresses
    local_us: np.ndarray  # i64 merchant local wall clock
    tilt: np.ndarray  # f64 γ
    tilt_up: np.ndarray  # bool
    approve: np.ndarray  # bool
    fraud: np.ndarray  # bool


class Plan(NamedTuple):
    amount: np.ndarray  # i64
    decline: np.ndarray  # i8 (NULL: approves)
    latency: np.ndarray  # i64 µs
    stand_in: np.ndarray  # bool
    challenge: np.ndarray  # i64
    user: np.ndarray  # i64
    clearing: np.ndarray  # i64
    adjust: np.ndarray  # i64
    reversal: np.ndarray  # bool
    reversal_delay: np.ndarray  # i64
    refund: np.ndarray  # bool
    refund_bp: np.ndarray  # u16
    refund_delay: np.ndarray  # i64
    retry: np.ndarray  # bool
    retry_delay: np.ndarray  # i64
    entry: np.ndarray  # i8
    cvm: np.ndarray  # i8
    wallet: np.ndarray  # i8
    recurring: np.ndarray  # bool
    cvv: np.ndarray  # i8
    avs: np.ndarray  # i8


@njit(cache=True, nogil=True, inline="always")
def lognormal(u: float, spec: np.ndarray) -> float:
    """median·exp(σ·Φ⁻¹(u)) clipped to [lo, hi]."""
    x = spec[0] * math.exp(spec[1] * ndtri(u))
    return min(max(x, spec[2]), spec[3])


@njit(cache=True, nogil=True, inline="always")
def gamma_wh(u: float, spec: np.ndarray) -> float:
    """Wilson–Hilferty gamma(shape, scale) quantile clipped to [lo, hi]: shape·scale·(1 − c + z√c)³ with
    c = 1/(9·shape)."""
    c = 1.0 / (9.0 * spec[0])
    base = 1.0 - c + ndtri(u) * math.sqrt(c)
    x = spec[0] * spec[1] * base * base * base if base > 0.0 else 0.0
    return min(max(x, spec[2]), spec[3])


@njit(cache=True, nogil=True, inline="always")
def pick(u: float, cdf: np.ndarray) -> np.int64:
    """Smallest i with u·total < cdf[i] (inverse CDF over a short table)."""
    t = u * cdf[cdf.shape[0] - 1]
    for i in range(cdf.shape[0]):
        if t < cdf[i]:
            return np.int64(i)
    return np.int64(cdf.shape[0] - 1)


@njit(cache=True, nogil=True, inline="always")
def round_step(x: float, step: np.int64) -> np.int64:
    """x rounded half-up to a multiple of step, at least one step."""
    k = math.floor(x / step + 0.5)
    return np.int64(max(k, 1.0)) * step


@njit(cache=True, nogil=True, inline="always")
def tilted(u: float, gamma: float, up: bool) -> float:
    """AMOUNT_SHIFT (§4.7 step 3): u' = 1 − (1−u)^γ up, u^γ down; the support stays the legit one. An upward
    tilt lifts u to at most the legit law's TILT_CAP quantile (a u already above it stays, so the tilt never
    lowers an amount): uncapped, γ = 2.5 puts 1.3 % of tilted flows beyond the legit 99.998th percentile (up
    to the 50,000 cap), so one stolen-card purchase could carry a fifth of a world's card-fraud value; card
    limits and velocity rules keep real fraud amounts in the body."""
    if gamma <= 1.0:
        return u
    return min(1.0 - math.pow(1.0 - u, gamma), max(u, TILT_CAP)) if up else math.pow(u, gamma)


@njit(cache=True, nogil=True, inline="always")
def amount_minor(
    u0: float, u1: float, u2: float, u3: float, i: np.int64, rows: Rows, cty: Countries, p: Params
) -> np.int64:
    """Row i's amount in minor units from the four amount lanes (tilt applied to u1, u2 here)."""
    ch = rows.channel[i]
    g = rows.tilt[i]
    u1 = tilted(u1, g, rows.tilt_up[i])
    u2 = tilted(u2, g, rows.tilt_up[i])
    if ch == ECOM and g <= 1.0 and u3 < p.zero_share:
        return np.int64(0)
    c = rows.country[i]
    unit = cty.scale[c] * cty.exp10[c]
    if ch in (POS, ECOM):
        s = rows.sector[i]
        if u0 < p.point_mass[ch]:
            n = p.n_points[s, ch]
            major = p.points[s, ch, min(np.int64(u1 * n), n - 1)]
        else:
            major = p.median[s, ch] * p.income[rows.segment[i]] * math.exp(p.sigma[s, ch] * ndtri(u2))
        return round_step(min(major, p.max_major) * unit, cty.step[c])
    if ch == ATM:
        major = p.atm_points[pick(u1, p.atm_cdf)] if u0 < p.atm_mass else lognormal(u2, p.atm_tail)
        return round_step(min(major, p.max_major) * unit, cty.atm_step[c])
    major = min(p.tr_median * p.income[rows.segment[i]] * math.exp(p.tr_sigma * ndtri(u2)), p.max_major)
    step = cty.step[c]
    if u0 < p.tr_round_share:
        step = max(step, cty.tr_steps[c, pick(u1, p.tr_round_cdf)])
    return round_step(major * unit, step)


@njit(cache=True, nogil=True, inline="always")
def _us(seconds: float) -> np.int64:
    """Seconds as whole µs, at least 1 (every offset is > 0)."""
    return max(np.int64(math.floor(seconds * US + 0.5)), np.int64(1))


@njit(cache=True, nogil=True, inline="always")
def next_cutoff_us(local_us: np.int64, hour: float, jitter_u: float, jitter_h: float) -> np.int64:
    """µs from local time to the next cut-off at `hour` + U[0, jitter_h] local (today's if still ahead)."""
    day = (local_us // DAY_US) * DAY_US
    cut = day + np.int64(math.floor((hour + jitter_u * jitter_h) * HOUR_US + 0.5))
    if cut <= local_us:
        cut += DAY_US
    return cut - local_us


@njit(cache=True, nogil=True, inline="always")
def next_business_day_us(local_us: np.int64, hour: float, jitter_u: float, jitter_h: float) -> np.int64:
    """µs from local time to `hour` + U[0, jitter_h] of the next Monday–Friday after today (1970-01-01 was
    a Thursday)."""
    day = local_us // DAY_US + 1
    while (day + 3) % 7 >= 5:
        day += 1
    return day * DAY_US + np.int64(math.floor((hour + jitter_u * jitter_h) * HOUR_US + 0.5)) - local_us


@njit(cache=True, nogil=True, inline="always")
def _clearing(i: np.int64, w0: float, w1: float, w2: float, rows: Rows, p: Params) -> np.int64:
    ch = rows.channel[i]
    if ch == ATM:
        return _us(lognormal(w2, p.atm_h) * 3600.0)
    if ch == TRANSFER:
        if rows.instant[i]:
            return _us(lognormal(w2, p.instant_s))
        return next_business_day_us(rows.local_us[i], p.batch_h, w1, p.batch_jitter_h)
    if ch == POS and w0 < p.late_share:
        return _us((p.late_d[0] + w1 * (p.late_d[1] - p.late_d[0])) * 86400.0)
    if ch == ECOM and w0 >= p.ecom_same:
        return _us(gamma_wh(w2, p.capture_d) * 86400.0)
    to_cut = next_cutoff_us(rows.local_us[i], p.cutoff_h, w1, p.cutoff_jitter_h)
    return to_cut + _us(lognormal(w2, p.after_cutoff_h) * 3600.0)


@njit(cache=True, nogil=True, inline="always")
def _entry_cvm(
    i: np.int64,
    amount: np.int64,
    u_entry: float,
    u_cvm: float,
    recurring: bool,
    rows: Rows,
    cty: Countries,
    p: Params,
) -> tuple[np.int64, np.int64]:
    """pos_entry_mode and cvm (NULL on remote channels) of row i."""
    ch = rows.channel[i]
    if ch == ECOM:
        cof = recurring or u_entry < p.cof_share[rows.sector[i]]
        return np.int64(COF if cof else ECOM_ENTRY), np.int64(NULL)
    if ch == TRANSFER:
        return np.int64(ECOM_ENTRY), np.int64(NULL)
    mag = p.magstripe * (p.fraud_magstripe if rows.fraud[i] else 1.0)
    if ch == ATM:
        return np.int64(MAGSTRIPE if u_entry < mag else CHIP), np.int64(PIN)
    if rows.instrument[i] == DEVICE_TOKEN:
        return np.int64(CONTACTLESS), np.int64(CDCVM)
    c = rows.country[i]
    chip_cvm = pick(u_cvm, p.chip_cvm_cdf[cty.region[c]])
    if u_entry < mag:
        return np.int64(MAGSTRIPE), chip_cvm
    if u_entry < mag + p.manual:
        return np.int64(MANUAL), np.int64(SIGNATURE)
    v = (u_entry - mag - p.manual) / (1.0 - mag - p.manual)
    if rows.contactless[i] and v < p.contactless[cty.region[c]]:
        limit = cty.cvm_limit[c]
        return np.int64(CONTACTLESS), np.int64(NO_CVM) if limit < 0 or amount <= limit else chip_cvm
    return np.int64(CHIP), chip_cvm


@njit(cache=True, nogil=True, inline="always")
def _decline(i: np.int64, u: float, pin: bool, rows: Rows, p: Params) -> np.int64:
    """A non-fraud decline reason (code in NONFRAUD_REASONS) or NULL; INCORRECT_PIN only when a PIN was
    entered."""
    rate = p.decline_rate[rows.channel[i]]
    if rows.approve[i] or u >= rate:
        return np.int64(NULL)
    w = p.reason_w[rows.channel[i], rows.segment[i]]
    total = 0.0
    for r in range(w.shape[0]):
        if r != INCORRECT_PIN or pin:
            total += w[r]
    t = (u / rate) * total
    acc = 0.0
    last = np.int64(NULL)
    for r in range(w.shape[0]):
        if (r != INCORRECT_PIN or pin) and w[r] > 0.0:
            acc += w[r]
            last = np.int64(r)
            if t < acc:
                return last
    return last


@njit(cache=True, nogil=True, inline="always")
def _block(
    fid: np.uint64, k: int, d: int, key0: np.uint64, key1: np.uint64
) -> tuple[float, float, float, float]:
    w = philox4x64_10(fid, np.uint64(k), np.uint64(0), np.uint64(d), key0, key1)
    return u01(w[0]), u01(w[1]), u01(w[2]), u01(w[3])


@njit(cache=True, nogil=True, parallel=PRANGE_ONLY)
def plan_kernel(key0: np.uint64, key1: np.uint64, rows: Rows, cty: Countries, p: Params, out: Plan) -> None:
    """Fill `out` row by row (rows are independent: any order, any batch). The output arrays are taken out of
    their NamedTuple (by attribute) before the loop: numba's parfor does not write back through a
    NamedTuple's arrays, nor through arrays unpacked from it as a tuple."""
    amount = out.amount
    decline = out.decline
    latency = out.latency
    stand_in = out.stand_in
    challenge = out.challenge
    user = out.user
    clearing = out.clearing
    adjust = out.adjust
    reversal = out.reversal
    reversal_delay = out.reversal_delay
    refund = out.refund
    refund_bp = out.refund_bp
    refund_delay = out.refund_delay
    retry = out.retry
    retry_delay = out.retry_delay
    entry = out.entry
    cvm = out.cvm
    wallet = out.wallet
    recurring = out.recurring
    cvv = out.cvv
    avs = out.avs
    for i in prange(rows.flow_id.shape[0]):
        r = _plan_row(i, key0, key1, rows, cty, p)
        amount[i] = r[0]
        decline[i] = r[1]
        latency[i] = r[2]
        stand_in[i] = r[3]
        challenge[i] = r[4]
        user[i] = r[5]
        clearing[i] = r[6]
        adjust[i] = r[7]
        reversal[i] = r[8]
        reversal_delay[i] = r[9]
        refund[i] = r[10]
        refund_bp[i] = r[11]
        refund_delay[i] = r[12]
        retry[i] = r[13]
        retry_delay[i] = r[14]
        entry[i] = r[15]
        cvm[i] = r[16]
        wallet[i] = r[17]
        recurring[i] = r[18]
        cvv[i] = r[19]
        avs[i] = r[20]


@njit(cache=True, nogil=True, inline="always")
def _plan_row(
    i: np.int64,
    key0: np.uint64,
    key1: np.uint64,
    rows: Rows,
    cty: Countries,
    p: Params,
) -> tuple:
    """Row i's plan (the lane table of the module docstring)."""
    fid = rows.flow_id[i]
    a0, a1, a2, a3 = _block(fid, 0, 0, key0, key1)
    t_auth, t_chal, t_user, t_retry = _block(fid, 1, 0, key0, key1)
    c_path, c_jit, c_q, t_rev = _block(fid, 1, 1, key0, key1)
    b_decl, b_retry, b_rev, b_stand = _block(fid, 2, 0, key0, key1)
    r_coin, r_kind, r_part, r_frac = _block(fid, 2, 1, key0, key1)
    tip_coin, tip_frac, e_entry, e_cvm = _block(fid, 2, 2, key0, key1)
    m_wallet, m_rec, m_cvv, m_avs = _block(fid, 2, 3, key0, key1)
    ch = rows.channel[i]
    s = rows.sector[i]
    c = rows.country[i]
    amount = amount_minor(a0, a1, a2, a3, i, rows, cty, p)
    amount_ = amount
    # recurring and entry mode first: an INCORRECT_PIN decline needs a PIN
    rec_p = p.recurring[s] * (p.fraud_recurring if rows.fraud[i] else 1.0)
    recurring = ch == ECOM and m_rec < rec_p
    entry, cvm = _entry_cvm(i, amount, e_entry, e_cvm, recurring, rows, cty, p)
    decline = _decline(i, b_decl, cvm == PIN, rows, p)
    approved = decline == NULL
    decline_ = decline
    entry_ = entry
    cvm_ = cvm
    recurring_ = recurring
    # timing: the stand-in answers at the scheme timeout
    timeout = p.timeout_s[ch]
    stand_in = b_stand < p.stand_in
    stand_in_ = stand_in
    latency_ = _us(timeout if stand_in else min(lognormal(t_auth, p.auth_s), timeout))
    challenge_ = _us(lognormal(t_chal, p.challenge_s))
    user_ = _us(lognormal(t_user, p.user_s))
    retry_ = not approved and p.retry_reason[max(decline, 0)] and b_retry < p.retry_p
    retry_delay_ = latency_ + _us(lognormal(t_retry, p.retry_s))
    clearing_ = _clearing(i, c_path, c_jit, c_q, rows, p)
    reversal_delay_ = _us(lognormal(t_rev, p.reversal_s))
    reversal = approved and b_rev < p.reversal_p
    reversal_ = reversal
    # refunds of cleared POS/ECOM purchases: a cancellation within hours, else a return after days
    cleared = approved and not reversal
    refund = False
    if cleared and amount > 0 and ch in (POS, ECOM):
        refund = r_coin < p.refund_p[s, ch]
    refund_ = refund
    if r_kind < p.cancel_share:
        v = r_kind / p.cancel_share
        refund_delay_ = _us(p.cancel_s[0] + v * (p.cancel_s[1] - p.cancel_s[0]))
    else:
        v = (r_kind - p.cancel_share) / (1.0 - p.cancel_share)
        refund_delay_ = _us(lognormal(v, p.return_d) * 86400.0)
    bp = np.int64(10000)
    if r_part < p.partial_share:
        frac = p.partial[0] + r_frac * (p.partial[1] - p.partial[0])
        bp = min(max(np.int64(math.floor(frac * 10000.0 + 0.5)), np.int64(1)), np.int64(9999))
    refund_bp_ = bp
    adjust = np.int64(0)
    if cleared and ch == POS and rows.tip_mcc[i] and cty.tip[c] and tip_coin < p.tip_p:
        frac = p.tip[0] + tip_frac * (p.tip[1] - p.tip[0])
        adjust = np.int64(math.floor(amount * frac / cty.step[c] + 0.5)) * cty.step[c]
    adjust_ = adjust
    # wallet, CVV and AVS
    inst = rows.instrument[i]
    wallet = np.int64(WALLET_NONE)
    if inst == DEVICE_TOKEN:
        wallet = pick(m_wallet, p.wallet_cdf[rows.os[i]])
    elif inst == NETWORK_TOKEN and ch == ECOM and m_wallet < p.click_to_pay:
        wallet = np.int64(CLICK_TO_PAY)
    wallet_ = wallet
    cvv = np.int64(NULL)
    avs = np.int64(NULL)
    if ch == ECOM and inst != BANK_ACCOUNT:
        cvv = np.int64(NOT_PRESENT) if entry == COF else pick(m_cvv, p.cvv_cdf)
        avs = pick(m_avs, p.avs_cdf) if rows.avs[i] else np.int64(AVS_NOT_SUPPORTED)
    cvv_ = cvv
    avs_ = avs
    return (
        amount_,
        decline_,
        latency_,
        stand_in_,
        challenge_,
        user_,
        clearing_,
        adjust_,
        reversal_,
        reversal_delay_,
        refund_,
        refund_bp_,
        refund_delay_,
        retry_,
        retry_delay_,
        entry_,
        cvm_,
        wallet_,
        recurring_,
        cvv_,
        avs_,
    )


@njit(cache=True, nogil=True, parallel=True)
def amount_kernel(
    key0: np.uint64, key1: np.uint64, rows: Rows, cty: Countries, p: Params, out: np.ndarray
) -> None:
    """Amounts only (block ⟨flow_id, 0, 0, 0⟩), for AMOUNT_SHIFT on flows that already have a plan."""
    for i in prange(rows.flow_id.shape[0]):
        w = philox4x64_10(rows.flow_id[i], np.uint64(0), np.uint64(0), np.uint64(0), key0, key1)
        out[i] = amount_minor(u01(w[0]), u01(w[1]), u01(w[2]), u01(w[3]), i, rows, cty, p)
