"""The flow-plan kernel's tables from 6B's policies and sealed references: policies → Params, countries →
money units and region (Countries). Kept apart from the kernel so tests can build them from hand-made
policies."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from engine.segments.l1.s1a.policy import SECTORS
from engine.segments.l3.s6a.policy import OPERATING_SYSTEMS, REGIONS, SEGMENTS
from engine.segments.l3.s6b.flow_kernel import Countries, Params
from engine.segments.l3.s6b.policy import (
    AVS_RESULTS,
    CHANNELS,
    CVV_RESULTS,
    NONFRAUD_REASONS,
    POS_ECOM,
    WALLETS,
    Amounts,
    Channels,
    Flows,
    LogNormal,
)


def lognormal_spec(spec: LogNormal) -> np.ndarray:
    return np.array([spec.median, spec.sigma, spec.clip[0], spec.clip[1]], dtype=np.float64)


def cdf(weights: list[float]) -> np.ndarray:
    return np.cumsum(np.asarray(weights, dtype=np.float64))


def nice_step(x: float) -> float:
    """The 1-2-5 value (…, 1, 2, 5, 10, 20, …) nearest x on a log scale: a round note or amount step."""
    k = math.floor(math.log10(x))
    candidates = [m * 10.0**k for m in (1, 2, 5, 10)]
    return min(candidates, key=lambda c: abs(math.log(c / x)))


def params(flows: Flows, amounts: Amounts) -> Params:
    """The kernel's Params from the flows.yaml and amounts.yaml models."""
    n_points = max(len(m.price_points) for by_ch in amounts.sectors.values() for m in by_ch.values())
    points = np.zeros((len(SECTORS), 2, n_points))
    count = np.zeros((len(SECTORS), 2), dtype=np.int64)
    median = np.zeros((len(SECTORS), 2))
    sigma = np.zeros((len(SECTORS), 2))
    for s, sector in enumerate(SECTORS):
        for c, channel in enumerate(POS_ECOM):
            model = amounts.sectors[sector][channel]  # type: ignore[index]
            points[s, c, : len(model.price_points)] = model.price_points
            count[s, c] = len(model.price_points)
            median[s, c] = model.median
            sigma[s, c] = model.sigma
    income = np.array([amounts.income_factor[g] for g in SEGMENTS] + [1.0])  # type: ignore[index]
    dec = flows.declines
    reason_w = np.zeros((len(CHANNELS), len(SEGMENTS) + 1, len(NONFRAUD_REASONS)))
    for c, channel in enumerate(CHANNELS):
        for g, segment in enumerate((*SEGMENTS, None)):
            tilt = dec.segment_tilt.get(segment, {}) if segment else {}  # type: ignore[call-overload]
            for r, reason in enumerate(NONFRAUD_REASONS):
                base = dec.reasons[channel].get(reason, 0.0)  # type: ignore[index, call-overload]
                reason_w[c, g, r] = base * tilt.get(reason, 1.0)
    lat, clr, ref, em = flows.latency, flows.clearing, flows.refunds, flows.entry_modes
    recurring = np.array([flows.recurring.ecom_p[s] for s in SECTORS])  # type: ignore[index]
    cof = em.ecom_credential_on_file_share
    android = flows.wallets.device_token["ANDROID"]
    wallet_rows = [flows.wallets.device_token.get(o, android) for o in OPERATING_SYSTEMS] + [android]
    return Params(
        point_mass=np.array([amounts.point_mass[c] for c in POS_ECOM]),  # type: ignore[index]
        median=median,
        sigma=sigma,
        points=points,
        n_points=count,
        income=income,
        atm_points=np.array([float(p.major) for p in amounts.atm.points]),
        atm_cdf=cdf([p.p for p in amounts.atm.points]),
        atm_mass=amounts.atm.point_mass,
        atm_tail=lognormal_spec(amounts.atm.tail),
        tr_median=amounts.transfer.median,
        tr_sigma=amounts.transfer.sigma,
        tr_round_share=amounts.transfer.round_share,
        tr_round_cdf=cdf([p.p for p in amounts.transfer.round_to]),
        max_major=amounts.max_major,
        zero_share=flows.zero_auth_ecom_share,
        decline_rate=np.array([dec.rate[c] for c in CHANNELS]),  # type: ignore[index]
        reason_w=reason_w,
        retry_p=flows.retry.p,
        retry_reason=np.array([r in flows.retry.reasons for r in NONFRAUD_REASONS]),
        retry_s=lognormal_spec(flows.retry.delay_s),
        auth_s=lognormal_spec(lat.auth_s),
        timeout_s=np.array([lat.timeout_s[c] for c in CHANNELS], dtype=np.float64),  # type: ignore[index]
        stand_in=lat.stand_in_share,
        challenge_s=lognormal_spec(lat.step_up_challenge_s),
        user_s=lognormal_spec(lat.step_up_user_s),
        cutoff_h=clr.pos.cutoff_hour,
        cutoff_jitter_h=clr.pos.cutoff_jitter_h,
        after_cutoff_h=lognormal_spec(clr.pos.after_cutoff_h),
        late_share=clr.pos.late_share,
        late_d=np.array([clr.pos.late_days.lo, clr.pos.late_days.hi]),
        ecom_same=clr.ecom.same_as_pos_share,
        capture_d=np.array(
            [
                clr.ecom.delayed_capture_d.shape,
                clr.ecom.delayed_capture_d.scale,
                *clr.ecom.delayed_capture_d.clip,
            ]
        ),
        atm_h=lognormal_spec(clr.atm_h),
        instant_s=lognormal_spec(clr.transfer.instant_s),
        batch_h=clr.transfer.batch_hour,
        batch_jitter_h=clr.transfer.batch_jitter_h,
        refund_p=np.array([[ref.p[s][c] for c in POS_ECOM] for s in SECTORS]),  # type: ignore[index]
        partial_share=ref.partial_share,
        partial=np.array([ref.partial_fraction.lo, ref.partial_fraction.hi]),
        cancel_share=ref.cancellation_share,
        cancel_s=np.array([ref.cancellation_delay_s.lo, ref.cancellation_delay_s.hi]),
        return_d=lognormal_spec(ref.return_delay_d),
        reversal_p=flows.reversal.p,
        reversal_s=lognormal_spec(flows.reversal.delay_s),
        tip_p=flows.tips.p_tip,
        tip=np.array([flows.tips.fraction.lo, flows.tips.fraction.hi]),
        contactless=np.array([em.pos_contactless_share[r] for r in REGIONS]),  # type: ignore[index]
        magstripe=em.pos_magstripe_share,
        manual=em.pos_manual_share,
        fraud_magstripe=em.fraud_magstripe_factor,
        cof_share=np.maximum(0.0, (cof - recurring) / np.maximum(1.0 - recurring, 1e-12)),
        chip_cvm_cdf=np.array(
            [
                cdf([flows.cvm.chip_cvm[r][m] for m in ("PIN", "SIGNATURE", "NONE")])  # type: ignore[index]
                for r in REGIONS
            ]
        ),
        cvv_cdf=cdf([flows.card_checks.cvv[k] for k in CVV_RESULTS[:3]]),  # type: ignore[index]
        avs_cdf=cdf([flows.card_checks.avs[k] for k in AVS_RESULTS[:4]]),  # type: ignore[index]
        recurring=recurring,
        fraud_recurring=flows.recurring.fraud_factor,
        wallet_cdf=np.array([cdf([mix.get(w, 0.0) for w in WALLETS]) for mix in wallet_rows]),  # type: ignore[attr-defined]
        click_to_pay=flows.wallets.network_token_click_to_pay,
    )


def countries(
    currencies: pl.DataFrame, regions: dict[str, str], flows: Flows, amounts: Amounts, channels: Channels
) -> tuple[list[str], pl.DataFrame, Countries]:
    """Per country of ref_currencies (sorted iso2): its legal tender and exponent (a frame: iso2, currency,
    minor_units) and the kernel's money units; `regions` maps iso2 → 6A region (a country without parties
    gets region −1 and is refused when a flow names it)."""
    money = (
        currencies.select("iso2", "currency", pl.col("minor_units").cast(pl.UInt8))
        .unique("iso2")
        .sort("iso2")
    )
    iso = money["iso2"].to_list()
    codes = money["currency"].to_list()
    exp10 = 10.0 ** money["minor_units"].to_numpy().astype(np.float64)
    scale = np.array([channels.currency_price_scale.get(c, 1.0) for c in codes])
    step = np.array([channels.rounding_step_minor.get(c, 1) for c in codes], dtype=np.int64)
    note = [
        channels.atm_note_step_major.get(c) or nice_step(10.0 * s) for c, s in zip(codes, scale, strict=True)
    ]
    atm_step = np.maximum(np.round(np.array(note, dtype=np.float64) * exp10).astype(np.int64), step)
    round_to = [pt.major for pt in amounts.transfer.round_to]
    tr_steps = np.array(
        [[round(nice_step(m * s) * e) for m in round_to] for s, e in zip(scale, exp10, strict=True)],
        dtype=np.int64,
    ).reshape(len(iso), len(round_to))
    cvm = flows.cvm
    limit = np.array(
        [
            -1.0
            if c in cvm.no_limit_currencies
            else cvm.contactless_limit_major.get(c, cvm.default_limit_usd * s) * e
            for c, s, e in zip(codes, scale, exp10, strict=True)
        ]
    )
    region = np.array([REGIONS.index(regions[i]) if i in regions else -1 for i in iso], dtype=np.int64)
    tip = np.array([i in flows.tips.countries for i in iso])
    table = Countries(scale, exp10, step, atm_step, np.maximum(tr_steps, step[:, None]), limit, region, tip)
    return iso, money, table
