"""6B.S5's bank score: logistic(intercept + Σ weight·feature + noise_sigma·ε), what the issuer's real-time
model would say about a flow from what it sees at authorisation (design §4.8 step 1).

Features, in FEATURES order (bank_view.yaml score.weights), every one AUTH-observable — never truth, campaign
provenance or 6A's hidden roles:
- amount_quantile: Φ((ln a − ln median)/σ) of the amount a in base units (minor units ÷ 10^exponent ÷ the
  currency's price scale) under amounts.yaml's tail law of the flow's (sector, channel) — POS/ECOM by the
  merchant's sector, ATM its tail, TRANSFER the transfer law; a fixed reference instead of an empirical
  quantile, so a flow's score does not depend on which flows share its shard; a $0 verification scores 0;
- anonymiser_ip: the IP's type is VPN_PROXY or DATACENTRE (an IP-intelligence feed tells the issuer);
- unknown_device: device_known is false (a device not linked to the party);
- device_n_parties: parties on the device − 1, capped at 10;
- cross_border; night_hour: merchant-local hour 00–05; session_seq_ge3: session_seq ≥ 3;
- kyc_tier: 6A's party risk tier LOW..HIGH as 0..3 (the bank's own KYC rating);
- magstripe: pos_entry_mode MAGSTRIPE;
- new_device_login_24h / contact_change_24h: an account event of that type for the party in the 24 h before
  the flow (6B.S3's account_events);
- new_payee: a TRANSFER whose party added a payee in the 24 h before.
ε = Φ⁻¹(u) of lane w0 of the flow's `6B.bank` block k = 0.
"""

from __future__ import annotations

import math
from typing import get_args

import numpy as np
import polars as pl
from scipy.special import ndtr

from engine.segments.l3.s6b.bank_columns import codes_of, flag
from engine.segments.l3.s6b.bank_world import EventTimes
from engine.segments.l3.s6b.policy import Amounts, Channels, Score

# the policy's weight keys, in declaration order (policy.Score.weights: dict[Literal[...], Coef])
FEATURES: tuple[str, ...] = get_args(get_args(Score.model_fields["weights"].annotation)[0])
ANONYMISER_IPS = ("VPN_PROXY", "DATACENTRE")
RISK_TIERS = ("LOW", "STANDARD", "ELEVATED", "HIGH")
MAX_EXTRA_PARTIES = 10
NIGHT_END_H = 6
RECENT_US = 24 * 3_600_000_000  # the account-event features look back 24 h
ANY_SECTOR = "*"  # ATM and TRANSFER amounts follow one law whatever the merchant sector


def amount_laws(amounts: Amounts) -> pl.DataFrame:
    """(sector, channel) → (ln median, σ) of the base-unit amount; sector ANY_SECTOR for ATM and TRANSFER."""
    rows = [
        (sector, channel, math.log(law.median), law.sigma)
        for sector, by_channel in amounts.sectors.items()
        for channel, law in by_channel.items()
    ]
    rows.append((ANY_SECTOR, "ATM", math.log(amounts.atm.tail.median), amounts.atm.tail.sigma))
    rows.append((ANY_SECTOR, "TRANSFER", math.log(amounts.transfer.median), amounts.transfer.sigma))
    return pl.DataFrame(
        rows,
        schema={"sector": pl.String, "channel": pl.String, "ln_median": pl.Float64, "sigma": pl.Float64},
        orient="row",
    )


def amount_quantile(
    amount_minor: np.ndarray,
    exponent: np.ndarray,
    price_scale: np.ndarray,
    ln_median: np.ndarray,
    sigma: np.ndarray,
) -> np.ndarray:
    """Φ((ln a − ln median)/σ) of the base-unit amount a (0 for a zero amount)."""
    base = amount_minor / np.power(10.0, exponent) / price_scale
    with np.errstate(divide="ignore"):
        z = (np.log(base) - ln_median) / sigma
    return np.where(amount_minor > 0, ndtr(z), 0.0)


def price_scales(channels: Channels, currency: pl.Series) -> np.ndarray:
    """The price scale of each flow's currency (1.0 where channels.yaml lists none, as S0 warns)."""
    scale = channels.currency_price_scale
    return currency.cast(pl.String).replace_strict(scale, default=1.0, return_dtype=pl.Float64).to_numpy()


def score(features: np.ndarray, policy: Score, eps: np.ndarray) -> np.ndarray:
    """logistic(intercept + features·weights + σ·ε) per row of the (n, len(FEATURES)) feature matrix."""
    weights = np.array([policy.weights.get(name, 0.0) for name in FEATURES], dtype=np.float64)
    logit = policy.intercept + features @ weights + policy.noise_sigma * eps
    return 1.0 / (1.0 + np.exp(-logit))


def recent_events(flows: pl.DataFrame, history: dict[str, EventTimes]) -> dict[str, np.ndarray]:
    """Per account-event type, whether the flow's party had one in the 24 h before the flow (both ends
    included). `flows` holds party_id and ts_utc."""
    party, ts = flows["party_id"], flows["ts_utc"]
    return {kind: times.within(party, ts, RECENT_US) for kind, times in history.items()}


def feature_matrix(view: pl.DataFrame, amount_q: np.ndarray, recent: dict[str, np.ndarray]) -> np.ndarray:
    """The (n, len(FEATURES)) matrix of one batch's joined flows (columns ip_type, device_known,
    device_n_parties, is_cross_border, ts_local, session_seq, kyc_risk_tier, pos_entry_mode, channel)."""
    f = np.zeros((view.height, len(FEATURES)), dtype=np.float64)
    col = {name: i for i, name in enumerate(FEATURES)}
    f[:, col["amount_quantile"]] = amount_q
    f[:, col["anonymiser_ip"]] = codes_of(view["ip_type"], ANONYMISER_IPS) >= 0
    f[:, col["unknown_device"]] = (~view["device_known"]).fill_null(False)
    extra = view["device_n_parties"].cast(pl.Int64).fill_null(1).to_numpy() - 1
    f[:, col["device_n_parties"]] = np.clip(extra, 0, MAX_EXTRA_PARTIES)
    f[:, col["cross_border"]] = view["is_cross_border"].to_numpy()
    f[:, col["night_hour"]] = view["ts_local"].dt.hour().to_numpy() < NIGHT_END_H
    f[:, col["session_seq_ge3"]] = view["session_seq"].to_numpy() >= 3
    f[:, col["kyc_tier"]] = np.maximum(codes_of(view["kyc_risk_tier"], RISK_TIERS), 0)
    f[:, col["magstripe"]] = flag(view["pos_entry_mode"], "MAGSTRIPE")
    f[:, col["new_device_login_24h"]] = recent["NEW_DEVICE_LOGIN"]
    f[:, col["contact_change_24h"]] = recent["CONTACT_DETAIL_CHANGE"]
    transfer = flag(view["channel"], "TRANSFER")
    f[:, col["new_payee"]] = transfer & recent["NEW_PAYEE_ADDED"]
    return f
