"""A flow's legitimate plan as a pure function (layer2_3 §4.5): 6B.S2 plans every arrival with it, and 6B.S4
plans inserted campaign flows and legit retries with it, so a flow gets the same plan whichever shard or
state computes it (every draw is `6B.flow` ⟨flow_id, k, 0, d⟩; flow_kernel.py has the lane table).

Caller's contract (also /tmp/briefs7/h2_api.md): `inputs = FlowInputs.from_ctx(ctx)` once, then
`plan_flows(frame, inputs)` with the columns REQUIRED (and optionally OPTIONAL) returns the s2_flow_plan
columns in contract order, row for row. `flow_amounts` recomputes only the amount, tilted, for AMOUNT_SHIFT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.segments.l1.s1a.policy import SECTORS
from engine.segments.l3.s6a.policy import INSTRUMENT_TYPES, OPERATING_SYSTEMS, SEGMENTS
from engine.segments.l3.s6b.flow_kernel import (
    PLAN_BLOCKS,
    Countries,
    Params,
    Plan,
    Rows,
    amount_kernel,
    plan_kernel,
)
from engine.segments.l3.s6b.flow_tables import countries, params
from engine.segments.l3.s6b.policy import (
    AVS_RESULTS,
    CHANNELS,
    CVMS,
    CVV_RESULTS,
    DECLINE_REASONS,
    POS_ENTRY_MODES,
    WALLETS,
    Amounts,
    Channels,
    Flows,
)

REQUIRED = (
    "flow_id",
    "merchant_id",
    "channel",
    "legal_country_iso",
    "ts_utc",
    "utc_offset_s",
    "party_id",
    "account_id",
    "instrument_id",
    "device_id",
)
OPTIONAL = ("tilt_gamma", "tilt_up", "approve", "fraud")
DECLINE = pl.Enum(list(DECLINE_REASONS))
ENTRY = pl.Enum(list(POS_ENTRY_MODES))
CVM = pl.Enum(list(CVMS))
WALLET = pl.Enum(list(WALLETS))
CVV = pl.Enum(list(CVV_RESULTS))
AVS = pl.Enum(list(AVS_RESULTS))
DRAWS_PER_FLOW = 4 * PLAN_BLOCKS
# the 6A columns FlowInputs.build reads (6A's instruments outgrow one part at the large preset)
ENTITY_COLUMNS = {
    "parties": ["party_id", "country_iso", "region", "segment"],
    "accounts": ["account_id", "issuer_country"],
    "instruments": ["instrument_id", "instrument_type", "contactless", "rail"],
    "devices": ["device_id", "os"],
}


def _codes(values: pl.Series, names: tuple[str, ...] | list[str], default: int) -> np.ndarray:
    """Category texts → their index in `names` (`default` for nulls and unknown texts)."""
    mapping = {n: i for i, n in enumerate(names)}
    if isinstance(values.dtype, pl.Enum):  # map the few categories, then gather by code
        lut = np.array([mapping.get(c, default) for c in values.dtype.categories.to_list()] + [default])
        codes = values.to_physical().fill_null(len(lut) - 1).to_numpy().astype(np.int64)
        return lut[codes]
    return (
        values.cast(pl.String)
        .replace_strict(mapping, default=default, return_dtype=pl.Int64)
        .fill_null(default)
        .to_numpy()
    )


def _by_id(ids: pl.Series, values: np.ndarray, what: str) -> np.ndarray:
    """Per-id lookup where 6A ids run 1..n (index 0 holds the unknown value, for null ids)."""
    idx = ids.fill_null(0).to_numpy().astype(np.int64)
    if idx.size and (idx.max() >= values.size or idx.min() < 0):
        raise EngineError(
            "E_6B_FLOW_COVERAGE",
            f"a flow names {what} {int(idx.max())}, which 6A does not have",
            where=f"6A {what}s",
            fix="rebuild 6B from the same 6A world",
        )
    return values[idx]


def _lookup(ids: pl.Series, values: pl.Series, unknown: object, dtype: type) -> np.ndarray:
    """A dense id-indexed array: position 0 and ids without a row hold `unknown`."""
    idx = ids.to_numpy().astype(np.int64)
    out = np.full(int(idx.max(initial=0)) + 1, unknown, dtype=dtype)
    out[idx] = values.to_numpy()
    return out


@dataclass(frozen=True)
class FlowInputs:
    """What a plan needs besides its rows: the `6B.flow` key, the policy tables, money by country, and
    per-id lookups of the 6A entities and merchants."""

    key: tuple[int, int]
    params: Params
    countries: Countries
    country_iso: list[str]  # sorted; a row's country code is its index here
    currency: pl.Series  # String, per country code
    exponent: np.ndarray  # u8, per country code
    merchant_ids: np.ndarray  # u64 sorted
    merchant_sector: np.ndarray  # i64 index in SECTORS
    merchant_tip: np.ndarray  # bool: a dining MCC of flows.yaml tips
    party_segment: np.ndarray  # i64 by party_id (len(SEGMENTS): unknown)
    account_avs: np.ndarray  # bool by account_id
    instrument_kind: np.ndarray  # i64 by instrument_id (len(INSTRUMENT_TYPES): unknown)
    instrument_contactless: np.ndarray  # bool
    instrument_instant: np.ndarray  # bool: a bank account on an instant rail
    device_os: np.ndarray  # i64 by device_id (len(OPERATING_SYSTEMS): unknown)

    @classmethod
    def build(
        cls,
        key: tuple[int, int],
        flows: Flows,
        amounts: Amounts,
        channels: Channels,
        tables: dict[str, pl.DataFrame],
    ) -> FlowInputs:
        """From the policy models and the tables ref_currencies, merchant_catalogue, parties, accounts,
        instruments and devices (as sealed; extra columns are ignored)."""
        parties = tables["parties"]
        regions = dict(
            parties.select(pl.col("country_iso").cast(pl.String), pl.col("region").cast(pl.String))
            .unique("country_iso")
            .iter_rows()
        )
        iso, money, cty = countries(tables["ref_currencies"], regions, flows, amounts, channels)
        merchants = tables["merchant_catalogue"].sort("merchant_id")
        accounts, instruments, devices = tables["accounts"], tables["instruments"], tables["devices"]
        unknown_kind = len(INSTRUMENT_TYPES)
        return cls(
            key=key,
            params=params(flows, amounts),
            countries=cty,
            country_iso=iso,
            currency=money["currency"].cast(pl.String),
            exponent=money["minor_units"].to_numpy().astype(np.uint8),
            merchant_ids=merchants["merchant_id"].to_numpy().astype(np.uint64),
            merchant_sector=_codes(merchants["sector"], SECTORS, len(SECTORS) - 1),
            merchant_tip=merchants["mcc"].cast(pl.Int64).is_in(flows.tips.mccs).to_numpy(),
            party_segment=_lookup(
                parties["party_id"],
                pl.Series(_codes(parties["segment"], SEGMENTS, len(SEGMENTS))),
                len(SEGMENTS),
                np.int64,
            ),
            account_avs=_lookup(
                accounts["account_id"],
                accounts["issuer_country"].cast(pl.String).is_in(flows.card_checks.avs_countries),
                False,
                np.bool_,
            ),
            instrument_kind=_lookup(
                instruments["instrument_id"],
                pl.Series(_codes(instruments["instrument_type"], INSTRUMENT_TYPES, unknown_kind)),
                unknown_kind,
                np.int64,
            ),
            instrument_contactless=_lookup(
                instruments["instrument_id"], instruments["contactless"], False, np.bool_
            ),
            instrument_instant=_lookup(
                instruments["instrument_id"],
                instruments["rail"]
                .cast(pl.String)
                .is_in(flows.clearing.transfer.instant_rails)
                .fill_null(False),
                False,
                np.bool_,
            ),
            device_os=_lookup(
                devices["device_id"],
                pl.Series(_codes(devices["os"], OPERATING_SYSTEMS, len(OPERATING_SYSTEMS))),
                len(OPERATING_SYSTEMS),
                np.int64,
            ),
        )

    @classmethod
    def from_ctx(cls, ctx: StateContext) -> FlowInputs:
        """The sealed policies and tables of a 6B state, and its `6B.flow` key."""
        tables = {name: ctx.sealed_table(name) for name in ("ref_currencies", "merchant_catalogue")}
        tables.update({name: ctx.sealed_table(name, columns) for name, columns in ENTITY_COLUMNS.items()})
        return cls.build(
            ctx.family_key("flow"),
            ctx.policy("6B/flows.yaml"),
            ctx.policy("6B/amounts.yaml"),
            ctx.policy("6B/channels.yaml"),
            tables,
        )


def rows_of(flows: pl.DataFrame, inputs: FlowInputs) -> Rows:
    """The kernel's per-row view of a flows frame (REQUIRED columns, OPTIONAL ones where given)."""
    missing = [c for c in REQUIRED if c not in flows.columns]
    if missing:
        raise ValueError(f"plan_flows needs columns {missing}")
    n = flows.height
    country = _codes(flows["legal_country_iso"], inputs.country_iso, -1)
    bad = (country < 0) | (inputs.countries.region[np.maximum(country, 0)] < 0)
    if bad.any():
        name = flows["legal_country_iso"].cast(pl.String)[int(np.flatnonzero(bad)[0])]
        raise EngineError(
            "E_6B_COUNTRY_UNKNOWN",
            f"{int(bad.sum())} flows in a country without a currency in ref_currencies or without 6A parties"
            f" (e.g. {name})",
            where="ref_currencies, 6A parties",
            fix="rebuild 6A and 6B from the same world",
        )
    merchant = flows["merchant_id"].to_numpy().astype(np.uint64)
    at = np.minimum(np.searchsorted(inputs.merchant_ids, merchant), inputs.merchant_ids.size - 1)
    if n and (inputs.merchant_ids[at] != merchant).any():
        raise EngineError(
            "E_6B_FLOW_COVERAGE",
            "a flow's merchant is not in merchant_catalogue",
            where="merchant_catalogue",
            fix="rebuild 6B from the same world",
        )
    instrument = flows["instrument_id"]
    local = (
        flows["ts_utc"].dt.epoch("us").to_numpy() + flows["utc_offset_s"].cast(pl.Int64).to_numpy() * 10**6
    )

    def optional(name: str, default: object, dtype: type) -> np.ndarray:
        if name not in flows.columns:
            return np.full(n, default, dtype=dtype)
        return flows[name].fill_null(default).to_numpy().astype(dtype)

    return Rows(
        flow_id=flows["flow_id"].to_numpy().astype(np.uint64),
        channel=_codes(flows["channel"], CHANNELS, -1),
        country=country,
        sector=inputs.merchant_sector[at],
        tip_mcc=inputs.merchant_tip[at],
        segment=_by_id(flows["party_id"], inputs.party_segment, "party"),
        instrument=_by_id(instrument, inputs.instrument_kind, "instrument"),
        contactless=_by_id(instrument, inputs.instrument_contactless, "instrument"),
        instant=_by_id(instrument, inputs.instrument_instant, "instrument"),
        os=_by_id(flows["device_id"], inputs.device_os, "device"),
        avs=_by_id(flows["account_id"], inputs.account_avs, "account"),
        local_us=local.astype(np.int64),
        tilt=optional("tilt_gamma", 1.0, np.float64),
        tilt_up=optional("tilt_up", False, np.bool_),
        approve=optional("approve", False, np.bool_),
        fraud=optional("fraud", False, np.bool_),
    )


def _check_channels(rows: Rows) -> None:
    if (rows.channel < 0).any():
        raise ValueError("channel must be one of " + ", ".join(CHANNELS))


def _enum(codes: np.ndarray, enum: pl.Enum) -> pl.Series:
    """An Enum column from codes; code −1 is null."""
    cats = pl.Series(enum.categories.to_list(), dtype=enum)
    idx = pl.Series(codes.astype(np.int64))
    return cats.gather(idx.set(idx < 0, None))  # type: ignore[arg-type]


def plan_flows(flows: pl.DataFrame, inputs: FlowInputs) -> pl.DataFrame:
    """The s2_flow_plan columns (contract order, no identity columns) of each row of `flows`, in row order."""
    rows = rows_of(flows, inputs)
    _check_channels(rows)
    n = flows.height
    out = Plan(
        *(
            np.empty(n, dtype=dt)
            for dt in (
                np.int64,
                np.int8,
                np.int64,
                np.bool_,
                np.int64,
                np.int64,
                np.int64,
                np.int64,
                np.bool_,
                np.int64,
                np.bool_,
                np.uint16,
                np.int64,
                np.bool_,
                np.int64,
                np.int8,
                np.int8,
                np.int8,
                np.bool_,
                np.int8,
                np.int8,
            )
        )
    )
    plan_kernel(
        np.uint64(inputs.key[0]), np.uint64(inputs.key[1]), rows, inputs.countries, inputs.params, out
    )
    return pl.DataFrame(
        {
            "flow_id": pl.Series(rows.flow_id, dtype=pl.UInt64),
            "amount_minor": out.amount,
            "currency": inputs.currency.gather(rows.country),
            "currency_exponent": pl.Series(inputs.exponent[rows.country], dtype=pl.UInt8),
            "nonfraud_decline": _enum(out.decline, DECLINE),
            "auth_latency_us": out.latency,
            "stand_in": out.stand_in,
            "stepup_challenge_us": out.challenge,
            "stepup_user_us": out.user,
            "clearing_delay_us": out.clearing,
            "clearing_adjust_minor": out.adjust,
            "reversal": out.reversal,
            "reversal_delay_us": out.reversal_delay,
            "refund": out.refund,
            "refund_fraction_bp": pl.Series(out.refund_bp, dtype=pl.UInt16),
            "refund_delay_us": out.refund_delay,
            "retry": out.retry,
            "retry_delay_us": out.retry_delay,
            "pos_entry_mode": _enum(out.entry, ENTRY),
            "cvm": _enum(out.cvm, CVM),
            "wallet": _enum(out.wallet, WALLET),
            "is_recurring": out.recurring,
            "cvv_result": _enum(out.cvv, CVV),
            "avs_result": _enum(out.avs, AVS),
        }
    )


def flow_amounts(flows: pl.DataFrame, inputs: FlowInputs) -> np.ndarray:
    """amount_minor only (i64), with the rows' tilt_gamma/tilt_up: AMOUNT_SHIFT on flows already planned."""
    rows = rows_of(flows, inputs)
    _check_channels(rows)
    out = np.empty(flows.height, dtype=np.int64)
    amount_kernel(
        np.uint64(inputs.key[0]), np.uint64(inputs.key[1]), rows, inputs.countries, inputs.params, out
    )
    return out


def record_plan_draws(ctx: StateContext, plan: pl.DataFrame) -> None:
    """Account a planned batch: PLAN_BLOCKS blocks (4 lanes each) of `6B.flow` per flow."""
    ctx.record_draws(
        "flow",
        (plan["flow_id"].to_numpy(), 0, 0, 0),
        draws=DRAWS_PER_FLOW,
        blocks=PLAN_BLOCKS,
        value=plan["amount_minor"].to_numpy(),
    )
