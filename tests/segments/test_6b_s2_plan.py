"""6B.S2's pure plan function on hand-made worlds (no build): amounts replayed in plain Python from numpy's
Philox and scipy's ndtri (known answers for every channel, rounding to the currency step and ATM note, tilts),
the clearing cut-off replayed in merchant local time, decline and $0 shares in their binomial bands, and a
plan that depends on the flow, not on the batch or the row order."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from scipy.special import ndtri

from engine.core.validation import PhiloxBlocks, u01
from engine.segments.l3.s6b.flow_kernel import next_business_day_us, next_cutoff_us, tilted
from engine.segments.l3.s6b.flow_plan import FlowInputs, flow_amounts, plan_flows
from tests.conftest import shipped_policy

KEY = (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321)
US = 1_000_000
HOUR = 3600 * US
DAY = 86400 * US
FLOWS, AMOUNTS, CHANNELS = (shipped_policy("6B", n) for n in ("flows", "amounts", "channels"))
# merchants: 1 grocery (5411), 2 restaurants (5812, a tip MCC), 3 ATM (6011), 4 transfers (4829)
MERCHANTS = pl.DataFrame(
    {
        "merchant_id": [1, 2, 3, 4],
        "sector": ["grocery", "restaurants", "other", "services"],
        "mcc": [5411, 5812, 6011, 4829],
    },
    schema_overrides={"merchant_id": pl.UInt64},
)
COUNTRIES = ["US", "DE", "JP", "ID"]


def tables() -> dict[str, pl.DataFrame]:
    u64 = pl.UInt64
    return {
        "ref_currencies": pl.DataFrame(
            {
                "iso2": [*COUNTRIES, "FR"],
                "currency": ["USD", "EUR", "JPY", "IDR", "EUR"],
                "minor_units": [2, 2, 0, 2, 2],
            }
        ),
        "merchant_catalogue": MERCHANTS,
        "parties": pl.DataFrame(
            {
                "party_id": [1, 2, 3, 4],
                "country_iso": COUNTRIES,
                "region": ["NORTH_AMERICA", "EUROPE", "ASIA_PACIFIC", "ASIA_PACIFIC"],
                "segment": ["RETAIL_AFFLUENT", "RETAIL_STUDENT", "RETAIL_FAMILY", "RETAIL_VALUE"],
            },
            schema_overrides={"party_id": u64},
        ),
        "accounts": pl.DataFrame(
            {"account_id": [1, 2, 3, 4], "issuer_country": COUNTRIES}, schema_overrides={"account_id": u64}
        ),
        "instruments": pl.DataFrame(
            {
                "instrument_id": [1, 2, 3, 4, 5],
                "instrument_type": [
                    "DEBIT_PHYSICAL",
                    "CREDIT_PHYSICAL",
                    "DEVICE_TOKEN",
                    "NETWORK_TOKEN",
                    "BANK_ACCOUNT",
                ],
                "contactless": [True, False, True, False, False],
                "rail": [None, None, None, None, "SEPA_INST"],
            },
            schema_overrides={"instrument_id": u64},
        ),
        "devices": pl.DataFrame({"device_id": [1], "os": ["IOS"]}, schema_overrides={"device_id": u64}),
    }


@pytest.fixture(scope="module")
def inputs() -> FlowInputs:
    return FlowInputs.build(KEY, FLOWS, AMOUNTS, CHANNELS, tables())


def flows(
    n: int, merchant: int, channel: str, country: str, instrument: int, *, start: int = 1
) -> pl.DataFrame:
    """n flows of one kind; ids merchant_idx << 40 | ordinal as 5B writes them; times spread over a week."""
    ids = (merchant << 40) + np.arange(start, start + n, dtype=np.uint64)
    ts = datetime(2026, 3, 2, tzinfo=UTC).timestamp() * US + (np.arange(n) * 7 * DAY // max(n, 1))
    party = {"US": 1, "DE": 2, "JP": 3, "ID": 4}[country]
    return pl.DataFrame(
        {
            "flow_id": pl.Series(ids, dtype=pl.UInt64),
            "merchant_id": pl.Series([merchant] * n, dtype=pl.UInt64),
            "channel": [channel] * n,
            "legal_country_iso": [country] * n,
            "ts_utc": pl.Series(ts.astype(np.int64)).cast(pl.Datetime("us", "UTC")),
            "utc_offset_s": pl.Series([-5 * 3600 if country == "US" else 3600] * n, dtype=pl.Int32),
            "party_id": pl.Series([party] * n, dtype=pl.UInt64),
            "account_id": pl.Series([party] * n, dtype=pl.UInt64),
            "instrument_id": pl.Series([instrument] * n, dtype=pl.UInt64),
            "device_id": pl.Series([1 if instrument == 3 else None] * n, dtype=pl.UInt64),
        }
    )


def lanes(flow_id: int, k: int, d: int, key: tuple[int, int] = KEY) -> list[float]:
    return [u01(w) for w in PhiloxBlocks(key).block(flow_id, k, 0, d)]


def half_up(x: float, step: int) -> int:
    return max(math.floor(x / step + 0.5), 1) * step


def expected_amount(
    flow_id: int,
    sector: str,
    channel: str,
    currency: str,
    exp: int,
    segment: str,
    step: int = 1,
    gamma: float = 1.0,
    up: bool = True,
    key: tuple[int, int] = KEY,
) -> int:
    """amounts.yaml by hand: the point-mass coin, the price point, the lognormal tail, scale, rounding."""
    u0, u1, u2, u3 = lanes(flow_id, 0, 0, key)
    if gamma > 1:
        u1, u2 = ((1 - (1 - u) ** gamma) if up else u**gamma for u in (u1, u2))
    if channel == "ECOM" and gamma <= 1 and u3 < FLOWS.zero_auth_ecom_share:
        return 0
    unit = CHANNELS.currency_price_scale.get(currency, 1.0) * 10**exp
    if channel == "ATM":
        atm = AMOUNTS.atm
        if u0 < atm.point_mass:
            cum = np.cumsum([p.p for p in atm.points])
            major = atm.points[int(np.searchsorted(cum, u1 * cum[-1], side="right"))].major
        else:
            major = min(
                max(atm.tail.median * math.exp(atm.tail.sigma * ndtri(u2)), atm.tail.clip[0]),
                atm.tail.clip[1],
            )
        return half_up(major * unit, step)
    model = AMOUNTS.sectors[sector][channel]
    if u0 < AMOUNTS.point_mass[channel]:
        major = model.price_points[min(int(u1 * len(model.price_points)), len(model.price_points) - 1)]
    else:
        major = model.median * AMOUNTS.income_factor[segment] * math.exp(model.sigma * ndtri(u2))
    return half_up(min(major, AMOUNTS.max_major) * unit, step)


@pytest.mark.parametrize(
    ("merchant", "channel", "country", "sector", "currency", "exp", "segment", "step"),
    [
        (1, "POS", "US", "grocery", "USD", 2, "RETAIL_AFFLUENT", 1),
        (2, "POS", "DE", "restaurants", "EUR", 2, "RETAIL_STUDENT", 1),
        (1, "ECOM", "JP", "grocery", "JPY", 0, "RETAIL_FAMILY", 1),
        (1, "ECOM", "ID", "grocery", "IDR", 2, "RETAIL_VALUE", 10000),  # rupiah prices end in 100s
        (3, "ATM", "US", "other", "USD", 2, "RETAIL_AFFLUENT", 2000),  # $20 notes
        (3, "ATM", "JP", "other", "JPY", 0, "RETAIL_FAMILY", 1000),  # ¥1,000 notes
    ],
)
def test_amounts_replay_in_plain_python(
    inputs: FlowInputs,
    merchant: int,
    channel: str,
    country: str,
    sector: str,
    currency: str,
    exp: int,
    segment: str,
    step: int,
) -> None:
    instrument = 1 if channel != "ECOM" else 2
    frame = flows(300, merchant, channel, country, instrument)
    plan = plan_flows(frame, inputs)
    want = [expected_amount(int(f), sector, channel, currency, exp, segment, step) for f in frame["flow_id"]]
    assert plan["amount_minor"].to_list() == want
    assert set(plan["currency"]) == {currency}
    assert set(plan["currency_exponent"]) == {exp}
    assert (plan["amount_minor"] % step == 0).all()


def test_known_answer_first_grocery_flow(inputs: FlowInputs) -> None:
    """One flow worked through by hand: flow 2^40 + 1 at a US grocer, paid by an affluent party."""
    fid = (1 << 40) + 1
    u0, u1, u2, _ = lanes(fid, 0, 0)
    if u0 < 0.25:  # a price point of [1.99, 3.49, 4.99, 9.99], index ⌊4·u1⌋, in cents
        want = round([1.99, 3.49, 4.99, 9.99][int(4 * u1)] * 100)
    else:  # 35 × 1.6 (affluent) × e^{0.9·Φ⁻¹(u2)} dollars in cents, half up
        want = math.floor(35 * 1.6 * math.exp(0.9 * ndtri(u2)) * 100 + 0.5)
    assert plan_flows(flows(1, 1, "POS", "US", 1), inputs)["amount_minor"][0] == want


def test_atm_point_masses(inputs: FlowInputs) -> None:
    plan = plan_flows(flows(20000, 3, "ATM", "US", 1), inputs)
    # the points in dispensable $20 notes ($50 → $60, half up); tail draws may land on one too
    points = [half_up(p.major * 100, 2000) for p in AMOUNTS.atm.points]
    assert 0.945 <= plan["amount_minor"].is_in(points).mean() <= 0.99
    assert (plan["amount_minor"] % 2000 == 0).all()
    assert plan["amount_minor"].value_counts().sort("count")["amount_minor"][-1] == 10000  # the mode is $100


def test_tilts_move_amounts_and_keep_the_support(inputs: FlowInputs) -> None:
    frame = flows(2000, 1, "POS", "US", 1)
    base = plan_flows(frame, inputs)["amount_minor"].to_numpy()
    up = flow_amounts(frame.with_columns(tilt_gamma=pl.lit(2.0), tilt_up=pl.lit(True)), inputs)
    down = flow_amounts(frame.with_columns(tilt_gamma=pl.lit(3.0), tilt_up=pl.lit(False)), inputs)
    assert (up >= base).all() and (down <= base).all()
    assert np.median(up) > np.median(base) > np.median(down)
    fid = int(frame["flow_id"][7])
    assert up[7] == expected_amount(fid, "grocery", "POS", "USD", 2, "RETAIL_AFFLUENT", gamma=2.0, up=True)
    assert down[7] == expected_amount(fid, "grocery", "POS", "USD", 2, "RETAIL_AFFLUENT", gamma=3.0, up=False)
    # untilted amounts agree with the full plan
    assert (flow_amounts(frame, inputs) == base).all()


def test_zero_auth_and_decline_shares(inputs: FlowInputs) -> None:
    n = 40000
    ecom = plan_flows(flows(n, 1, "ECOM", "DE", 2), inputs)
    pos = plan_flows(flows(n, 1, "POS", "DE", 1), inputs)

    def band(p: float) -> tuple[float, float]:
        sd = math.sqrt(p * (1 - p) / n)
        return p - 5 * sd, p + 5 * sd

    zero = (ecom["amount_minor"] == 0).mean()
    lo, hi = band(FLOWS.zero_auth_ecom_share)
    assert lo <= zero <= hi
    for plan, rate in ((ecom, FLOWS.declines.rate["ECOM"]), (pos, FLOWS.declines.rate["POS"])):
        lo, hi = band(rate)
        assert lo <= plan["nonfraud_decline"].is_not_null().mean() <= hi
    # a PIN reason only where a PIN was entered; ECOM never declines for a PIN
    assert (pos.filter(pl.col("nonfraud_decline") == "INCORRECT_PIN")["cvm"] == "PIN").all()
    assert ecom.filter(pl.col("nonfraud_decline") == "INCORRECT_PIN").height == 0
    # retries follow declines only, after the decline's own latency
    retried = pl.concat([ecom, pos]).filter("retry")
    assert retried["nonfraud_decline"].is_not_null().all()
    assert (retried["retry_delay_us"] > retried["auth_latency_us"]).all()
    assert 0.25 < retried.height / pl.concat([ecom, pos])["nonfraud_decline"].is_not_null().sum() < 0.45


def test_approve_and_probe_rows(inputs: FlowInputs) -> None:
    frame = flows(3000, 1, "ECOM", "US", 2).with_columns(approve=pl.lit(True))
    plan = plan_flows(frame, inputs)
    assert plan["nonfraud_decline"].null_count() == plan.height and not plan["retry"].any()
    # a probe on a non-existent card: no party, account, instrument or device
    probe = frame.with_columns(
        pl.lit(None, dtype=pl.UInt64).alias(c)
        for c in ("party_id", "account_id", "instrument_id", "device_id")
    )
    got = plan_flows(probe, inputs)
    assert got.height == 3000 and (got["avs_result"] == "NOT_SUPPORTED").all()


def test_plan_depends_on_the_flow_not_the_batch(inputs: FlowInputs) -> None:
    frame = pl.concat(
        [flows(500, 1, "POS", "US", 3), flows(500, 2, "POS", "US", 1), flows(500, 4, "TRANSFER", "DE", 5)]
    )
    whole = plan_flows(frame, inputs)
    order = np.random.default_rng(1).permutation(frame.height)
    shuffled = pl.concat([plan_flows(frame[order[:700]], inputs), plan_flows(frame[order[700:]], inputs)])
    assert shuffled.sort("flow_id").equals(whole.sort("flow_id"))


def test_entry_modes_wallets_and_tips(inputs: FlowInputs) -> None:
    token = plan_flows(flows(2000, 1, "POS", "US", 3), inputs)  # device token on an iPhone
    assert (token["pos_entry_mode"] == "CONTACTLESS").all() and (token["cvm"] == "CDCVM").all()
    assert (token["wallet"] == "APPLE_PAY").all()
    chip_only = plan_flows(flows(2000, 1, "POS", "DE", 2), inputs)  # a card that cannot tap
    assert chip_only.filter(pl.col("pos_entry_mode") == "CONTACTLESS").height == 0
    tapped = plan_flows(flows(4000, 1, "POS", "DE", 1), inputs).filter(
        pl.col("pos_entry_mode") == "CONTACTLESS"
    )
    under = tapped["amount_minor"] <= 50 * 100  # the EU no-CVM limit €50
    assert (tapped.filter(under)["cvm"] == "NONE").all()
    assert tapped.filter(~under)["cvm"].is_in(["PIN", "SIGNATURE", "NONE"]).all()
    dining = plan_flows(flows(4000, 2, "POS", "US", 1), inputs)  # a US restaurant: tips
    tipped = dining.filter(pl.col("clearing_adjust_minor") > 0)
    assert tipped.height > 0.6 * dining.height
    assert (tipped["clearing_adjust_minor"] <= 0.2 * tipped["amount_minor"] + 1).all()
    assert plan_flows(flows(2000, 2, "POS", "DE", 1), inputs)["clearing_adjust_minor"].max() == 0
    transfers = plan_flows(flows(500, 4, "TRANSFER", "DE", 5), inputs)
    assert transfers["cvm"].null_count() == 500 and transfers["cvv_result"].null_count() == 500


def test_cutoff_helpers_by_hand() -> None:
    monday = int(datetime(2026, 3, 2).timestamp()) * US  # local wall clock, as naive µs
    local = monday + 21 * HOUR  # 21:00 local: today's 22:00 (+ half the 2 h jitter) is ahead
    assert next_cutoff_us(local, 22.0, 0.5, 2.0) == 2 * HOUR
    assert next_cutoff_us(monday + 23 * HOUR, 22.0, 0.0, 2.0) == 23 * HOUR  # past it: tomorrow 22:00
    friday = monday + 4 * DAY + 15 * HOUR
    assert next_business_day_us(friday, 9.0, 0.0, 6.0) == 3 * DAY - 15 * HOUR + 9 * HOUR  # Monday 09:00


def test_pos_clearing_replays_at_the_local_cutoff(inputs: FlowInputs) -> None:
    """POS clearing = (next local 22:00 + U[0, 2 h]) − local time + lognormal(3 h), from its lanes."""
    frame = flows(400, 1, "POS", "US", 1)
    plan = plan_flows(frame, inputs)
    pol = FLOWS.clearing.pos
    local = frame["ts_utc"].dt.epoch("us").to_numpy() + frame["utc_offset_s"].to_numpy().astype(np.int64) * US
    for i, fid in enumerate(frame["flow_id"].to_list()):
        path, jitter, q, _ = lanes(fid, 1, 1)
        if path < pol.late_share:
            days = (pol.late_days.lo + jitter * (pol.late_days.hi - pol.late_days.lo)) * 86400
            want = max(math.floor(days * US + 0.5), 1)
        else:
            day = local[i] // DAY * DAY
            cut = day + math.floor((pol.cutoff_hour + jitter * pol.cutoff_jitter_h) * HOUR + 0.5)
            cut += DAY if cut <= local[i] else 0
            spec = pol.after_cutoff_h
            hours = min(max(spec.median * math.exp(spec.sigma * ndtri(q)), spec.clip[0]), spec.clip[1])
            want = int(cut - local[i]) + max(math.floor(hours * 3600 * US + 0.5), 1)
        assert plan["clearing_delay_us"][i] == want


def test_an_upward_tilt_stops_at_the_legit_99_5th_percentile() -> None:
    assert tilted(0.5, 2.0, True) == pytest.approx(0.75)  # 1 − 0.5²
    assert tilted(0.99, 2.5, True) == 0.995  # 1 − 0.01^2.5 ≈ 0.99999, capped
    assert tilted(0.999, 2.5, True) == 0.999  # already above the cap: kept, never lowered
    assert tilted(0.5, 3.0, False) == pytest.approx(0.125)  # downward tilts are not capped
    assert tilted(0.7, 1.0, True) == 0.7  # γ ≤ 1: no tilt
