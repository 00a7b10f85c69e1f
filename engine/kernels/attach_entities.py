"""6B.S1's entity kernel (layer2_3 §4.4 steps 4–5, amendment 8): with what and from where each attached
arrival pays. A CONTINUATION copies the entities of the arrival it continues; every other arrival draws from
`6B.attach` block ⟨arrival_id, 1, 0, 0⟩ and, on ECOM/TRANSFER, its continuation ⟨arrival_id, 1, 0, 1⟩:

- w0  account: the party's accounts holding an instrument usable on the channel, primary × primary_weight.
- w1  instrument of that account, by the channel's instrument_weights.
- POS/ATM: w2 a terminal of the arrival's site (uniform); w3 for a DEVICE_TOKEN the party's device (mobile or
      tablet where it has one; device_known true). No IP.
- ECOM/TRANSFER: w2 with u < p_guest_device (or a party without a device) a guest device: v0 (raw) another
      party of the party's (country, channel) pool (the next pool column if it drew the party itself), v1 one
      of its devices, device_known false (true if the party is linked to it too: a shared household device);
      else the party's own device by the rescaled u. IP: u(v2) < p_legit_vpn → a VPN_PROXY IP (uniform,
      rescaled u), else w3 by the device's usage weights. TRANSFER: v3 (raw) the payee party from the same
      pool (not the payer), paid into its first TRANSFER-capable account (a primary one first).

A continuation copies its source's account, instrument, device, IP and payee; on POS/ATM its terminal is one
of its own site's, by u(w2) of its block 0 ⟨arrival_id, 0, 0, 0⟩ (a lane the continuation leaves unused).

Ids are 0 where a value is null (no terminal at the site, no device, no payee); an account or instrument 0 is
6B.S1's no-candidate error. Tables are CSR arrays indexed by the 6A ids (sequential from 1).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from engine.kernels.attach import N_CHANNELS, AliasSlices
from engine.kernels.philox import philox4x64_10, u01

POS, ECOM, ATM, TRANSFER = 0, 1, 2, 3
CNP_CHANNELS = (ECOM, TRANSFER)


class Holdings(NamedTuple):
    """What each party holds, CSR by id."""

    acc_first: np.ndarray  # i64 [P + 2]: party p's account rows acc_first[p]..acc_first[p+1]-1
    acc_id: np.ndarray  # u64 [A]
    acc_primary: np.ndarray  # bool [A]
    acc_w: np.ndarray  # f64 [N_CHANNELS, A]: total instrument weight of the account on the channel
    inst_first: np.ndarray  # i64 [A + 1]: account row a's instrument rows
    inst_id: np.ndarray  # u64 [I]
    inst_w: np.ndarray  # f64 [N_CHANNELS, I]
    inst_token: np.ndarray  # bool [I]: a DEVICE_TOKEN
    dev_first: np.ndarray  # i64 [P + 2]: party p's linked devices
    dev_id: np.ndarray  # u64 [L]
    dev_handheld: np.ndarray  # bool [L]: MOBILE or TABLET (where a wallet token lives)
    ip_first: np.ndarray  # i64 [D + 2]: device d's IP links
    ip_id: np.ndarray  # u64 [K]
    ip_cum: np.ndarray  # f64 [K]: cumulative usage weight within the device
    vpn_ip: np.ndarray  # u64 [V]: VPN_PROXY IPs
    term_first: np.ndarray  # i64 [S + 1]: site row s's terminals
    term_id: np.ndarray  # u64 [T]


class Rows(NamedTuple):
    """One batch after the attachment kernel."""

    flow_id: np.ndarray  # u64
    channel: np.ndarray  # i64
    party: np.ndarray  # u64
    party_country: np.ndarray  # i64
    site_row: np.ndarray  # i64, −1 without a site
    copy_of: np.ndarray  # i64, −1 unless CONTINUATION


class Knobs(NamedTuple):
    primary_weight: float
    p_guest: float
    p_vpn: float


class Entities(NamedTuple):
    account: np.ndarray  # u64
    instrument: np.ndarray  # u64
    terminal: np.ndarray  # u64, 0 = null
    device: np.ndarray  # u64, 0 = null
    ip: np.ndarray  # u64, 0 = null
    payee: np.ndarray  # u64, 0 = null
    known: np.ndarray  # i8: 1 own device, 0 guest, −1 null


@njit(cache=True, nogil=True, inline="always")
def _index(u: float, n: np.int64) -> np.int64:
    return min(np.int64(u * n), n - 1)


@njit(cache=True, nogil=True)
def _account(h, p, ch, u, primary_weight):  # type: ignore[no-untyped-def]
    """Row of the chosen account, −1 when none holds a usable instrument."""
    total = 0.0
    for a in range(h.acc_first[p], h.acc_first[p + 1]):
        if h.acc_w[ch, a] > 0.0:
            total += primary_weight if h.acc_primary[a] else 1.0
    target = u * total
    last = np.int64(-1)
    acc = 0.0
    for a in range(h.acc_first[p], h.acc_first[p + 1]):
        if h.acc_w[ch, a] > 0.0:
            acc += primary_weight if h.acc_primary[a] else 1.0
            last = a
            if target < acc:
                return np.int64(a)
    return last


@njit(cache=True, nogil=True)
def _instrument(h, a, ch, u):  # type: ignore[no-untyped-def]
    lo, hi = h.inst_first[a], h.inst_first[a + 1]
    target = u * h.acc_w[ch, a]
    acc = 0.0
    last = np.int64(-1)
    for j in range(lo, hi):
        w = h.inst_w[ch, j]
        if w > 0.0:
            acc += w
            last = j
            if target < acc:
                return np.int64(j)
    return last


@njit(cache=True, nogil=True)
def _handheld(h, p, u):  # type: ignore[no-untyped-def]
    """The party's wallet device: uniform over its mobiles/tablets, else over all its devices; 0 if none."""
    lo, hi = h.dev_first[p], h.dev_first[p + 1]
    n = 0
    for k in range(lo, hi):
        n += h.dev_handheld[k]
    if n == 0:
        return h.dev_id[lo + _index(u, hi - lo)] if hi > lo else np.uint64(0)
    pick = _index(u, np.int64(n))
    for k in range(lo, hi):
        if h.dev_handheld[k]:
            if pick == 0:
                return h.dev_id[k]
            pick -= 1
    return np.uint64(0)


@njit(cache=True, nogil=True)
def _holds(h, p, device):  # type: ignore[no-untyped-def]
    return (h.dev_id[h.dev_first[p] : h.dev_first[p + 1]] == device).any()


@njit(cache=True, nogil=True)
def _ip(h, device, u):  # type: ignore[no-untyped-def]
    lo, hi = h.ip_first[device], h.ip_first[device + 1]
    if hi <= lo:
        return np.uint64(0)
    base = h.ip_cum[lo - 1] if lo > 0 else 0.0
    target = base + u * (h.ip_cum[hi - 1] - base)
    for k in range(lo, hi):
        if target < h.ip_cum[k]:
            return h.ip_id[k]
    return h.ip_id[hi - 1]


@njit(cache=True, nogil=True)
def _other(pools, key, w, p):  # type: ignore[no-untyped-def]
    """A pool party other than p by raw lane w (the next column if it drew p), 0 if the pool has no other."""
    lo, hi = pools.first[key], pools.first[key + 1]
    if hi - lo < 2:
        return np.uint64(0) if hi <= lo or pools.value[lo] == p else pools.value[lo]
    n = np.uint64(hi - lo)
    j = np.int64(((w >> np.uint64(32)) * n) >> np.uint64(32))
    col = (
        j if (w & np.uint64(0xFFFFFFFF)) < np.uint64(pools.prob_q[lo + j]) else np.int64(pools.alias[lo + j])
    )
    q = pools.value[lo + col]
    return q if q != p else pools.value[lo + (col + 1) % (hi - lo)]


@njit(cache=True, nogil=True)
def _payee_account(h, q):  # type: ignore[no-untyped-def]
    best = np.uint64(0)
    for a in range(h.acc_first[q], h.acc_first[q + 1]):
        if h.acc_w[TRANSFER, a] > 0.0:
            if h.acc_primary[a]:
                return h.acc_id[a]
            if best == 0:
                best = h.acc_id[a]
    return best


@njit(cache=True, nogil=True)
def _row(i, k0, k1, rows, h, pools, knobs, out):  # type: ignore[no-untyped-def]
    """Steps 4–5 for row i (not a continuation)."""
    fid, ch, p = rows.flow_id[i], rows.channel[i], np.int64(rows.party[i])
    w0, w1, w2, w3 = philox4x64_10(fid, np.uint64(1), np.uint64(0), np.uint64(0), k0, k1)
    a = _account(h, p, ch, u01(w0), knobs.primary_weight)
    if a < 0:
        out.account[i] = 0
        out.instrument[i] = 0
        return
    out.account[i] = h.acc_id[a]
    j = _instrument(h, a, ch, u01(w1))
    out.instrument[i] = h.inst_id[j]
    if ch in (POS, ATM):
        out.terminal[i] = _terminal(h, rows.site_row[i], u01(w2))
        out.device[i] = _handheld(h, p, u01(w3)) if h.inst_token[j] else np.uint64(0)
        out.known[i] = 1 if out.device[i] != 0 else -1
        return
    v0, v1, v2, v3 = philox4x64_10(fid, np.uint64(1), np.uint64(0), np.uint64(1), k0, k1)
    key = rows.party_country[i] * N_CHANNELS + ch
    u = u01(w2)
    lo, hi = h.dev_first[p], h.dev_first[p + 1]
    device = np.uint64(0)
    if u >= knobs.p_guest and hi > lo:
        device = h.dev_id[lo + _index((u - knobs.p_guest) / (1.0 - knobs.p_guest), hi - lo)]
        out.known[i] = 1
    else:
        g = np.int64(_other(pools, key, v0, np.uint64(p)))
        g_lo, g_hi = h.dev_first[g], h.dev_first[g + 1]
        if g > 0 and g_hi > g_lo:
            device = h.dev_id[g_lo + _index(u01(v1), g_hi - g_lo)]
            out.known[i] = 1 if _holds(h, p, device) else 0  # a household device the party shares
        elif hi > lo:
            device = h.dev_id[lo + _index(u01(v1), hi - lo)]
            out.known[i] = 1
        else:
            out.known[i] = -1
    out.device[i] = device
    uv = u01(v2)
    if uv < knobs.p_vpn and h.vpn_ip.shape[0] > 0:
        out.ip[i] = h.vpn_ip[_index(uv / knobs.p_vpn, h.vpn_ip.shape[0])]
    elif device != 0:
        out.ip[i] = _ip(h, np.int64(device), u01(w3))
    else:
        out.ip[i] = 0
    if ch == TRANSFER:
        q = _other(pools, rows.party_country[i] * N_CHANNELS + TRANSFER, v3, np.uint64(p))
        out.payee[i] = _payee_account(h, np.int64(q)) if q != 0 else np.uint64(0)


@njit(cache=True, nogil=True, parallel=True)
def _draw(k0, k1, rows, h, pools, knobs, out):  # type: ignore[no-untyped-def]
    for i in prange(rows.flow_id.shape[0]):
        if rows.copy_of[i] < 0:
            _row(i, k0, k1, rows, h, pools, knobs, out)


@njit(cache=True, nogil=True)
def _terminal(h, s, u):  # type: ignore[no-untyped-def]
    """A terminal of site row s, uniform by u; 0 without a site or a terminal there."""
    if s < 0 or h.term_first[s + 1] <= h.term_first[s]:
        return np.uint64(0)
    lo = h.term_first[s]
    return h.term_id[lo + _index(u, h.term_first[s + 1] - lo)]


@njit(cache=True, nogil=True)
def _copy_row(i, s, k0, k1, rows, h, out):  # type: ignore[no-untyped-def]
    """A continuation copies its source's entities (the source is never a continuation), but pays at a
    terminal of its own site: a chain's next outlet is another counter."""
    for arr in (out.account, out.instrument, out.device, out.ip, out.payee):
        arr[i] = arr[s]
    out.known[i] = out.known[s]
    if rows.channel[i] == POS or rows.channel[i] == ATM:
        w2 = philox4x64_10(rows.flow_id[i], np.uint64(0), np.uint64(0), np.uint64(0), k0, k1)[2]
        out.terminal[i] = _terminal(h, rows.site_row[i], u01(w2))


@njit(cache=True, nogil=True, parallel=True)
def _copy(k0, k1, rows, h, out):  # type: ignore[no-untyped-def]
    for i in prange(rows.copy_of.shape[0]):
        if rows.copy_of[i] >= 0:
            _copy_row(i, rows.copy_of[i], k0, k1, rows, h, out)


def draw_entities(
    key: tuple[int, int], rows: Rows, holdings: Holdings, pools: AliasSlices, knobs: Knobs
) -> Entities:
    """Steps 4–5 of §4.4 for one batch (rows of whole merchants; continuation sources inside the batch).

    The draws run in party order: the kernel is bound by random reads of the holdings, which party order turns
    into near-sequential ones (1.4 s → 0.9 s of CPU per 2·10^6 default-world rows, the sort included); each
    row's draws depend on its own keys only, so the order changes no value."""
    n = rows.flow_id.shape[0]
    order = np.argsort(rows.party, kind="stable")
    by_party = Entities(
        *(np.zeros(n, dtype=np.uint64) for _ in range(6)),
        known=np.full(n, -1, dtype=np.int8),
    )
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    _draw(k0, k1, Rows(*(a[order] for a in rows)), holdings, pools, knobs, by_party)
    out = Entities(*(np.empty_like(a) for a in by_party))
    for dst, src in zip(out, by_party, strict=True):
        dst[order] = src
    _copy(k0, k1, rows, holdings, out)
    return out
