"""What 6B.S5 looks flows up in: the 6A entities as the issuer holds them (hidden roles excluded; the party's
KYC tier is the bank's rating), merchants, sites, account events, collateral anchors and the local clock.
Lookups gather by id (6A ids are sequential from 1, so a position is id − 1; a searchsorted otherwise)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.core.row_order import in_key_order
from engine.core.state import StateContext
from engine.kernels.frozen import frozen  # hits_within's inputs read-only: one signature (frozen.py)
from engine.segments.l3.s6b.bank_columns import nullable
from engine.segments.l3.s6b.events import LocalClock
from engine.segments.l3.s6b.holdings import csr_first
from engine.segments.l3.s6b.policy import ACCOUNT_EVENT_TYPES, CAMPAIGN_TYPES

COLLATERAL_TYPES = ("ACCOUNT_TAKEOVER", "CARD_TESTING")
TYPE_SHIFT = 56  # campaign_id = type_code << 56 | instance


@dataclass(frozen=True)
class Dim:
    """A dimension table keyed by `key` (sorted), gathered row by row for a batch's ids (null id → nulls)."""

    key: str
    ids: np.ndarray
    table: pl.DataFrame
    dense: bool

    @classmethod
    def of(cls, table: pl.DataFrame, key: str) -> Dim:
        table = in_key_order(table, (key,))  # 6A's entity tables come sorted by id: one linear check
        ids = table[key].to_numpy().astype(np.int64)
        dense = bool(ids.size == 0 or (ids[0] == 1 and ids[-1] == ids.size))
        return cls(key, ids, table.drop(key), dense)

    def gather(self, ids: pl.Series) -> pl.DataFrame:
        raw = ids.cast(pl.Int64).fill_null(0).to_numpy()
        last = max(self.ids.size - 1, 0)
        pos = raw - 1 if self.dense else np.minimum(np.searchsorted(self.ids, raw), last)
        found = (raw > 0) & (pos >= 0) & (pos < self.ids.size)
        found &= self.ids[np.clip(pos, 0, last)] == raw if self.ids.size else False
        idx = nullable(np.where(found, pos, 0).astype(np.int64), found)
        return self.table.select(pl.all().gather(idx))


@dataclass(frozen=True)
class EventTimes:
    """One account-event type's times, party-major: party p's events are ts[first[p]:first[p + 1]], in time
    order (party ids are 6A's, 1..N). Built once per run; every batch asks it by binary search."""

    first: np.ndarray  # i64 [max party id + 2]
    ts: np.ndarray  # i64 µs since the epoch

    @classmethod
    def of(cls, events: pl.DataFrame) -> EventTimes:
        """From (party_id, ts_utc) rows in any order."""
        rows = events.select(pl.col("party_id").cast(pl.Int64), pl.col("ts_utc").dt.epoch("us")).sort(
            "party_id", "ts_utc"
        )
        party = rows["party_id"].to_numpy()
        return cls(
            frozen(csr_first(party, int(party.max(initial=0)))),
            frozen(np.ascontiguousarray(rows["ts_utc"].to_numpy(), dtype=np.int64)),
        )

    def within(self, party_id: pl.Series, ts_utc: pl.Series, window_us: int) -> np.ndarray:
        """Per flow, whether its party had an event in [ts − window, ts] (a flow without a party: no)."""
        from engine.kernels.window_hits import hits_within

        owner = party_id.cast(pl.Int64).fill_null(-1).to_numpy()
        out = np.empty(owner.size, dtype=np.bool_)
        at = ts_utc.dt.epoch("us").to_numpy().astype(np.int64)
        owner, at = frozen(np.ascontiguousarray(owner)), frozen(at)
        hits_within(self.first, self.ts, owner, at, np.int64(window_us), out)
        return out


@dataclass(frozen=True)
class BankWorld:
    merchants: Dim  # mcc, sector, home_country_iso, merchant_class
    sites: Dim  # site_country
    parties: Dim  # party_country_iso, party_segment, onboarding_date, kyc_risk_tier
    accounts: Dim  # issuer_id, issuer_country_iso, is_credit
    instruments: Dim  # instrument_type, card_scheme, card_bin, is_tokenised
    devices: Dim  # device_type, device_os, device_n_parties
    ips: Dim  # ip_type, ip_asn_class, ip_country_iso
    probe_issuer: np.ndarray  # per country code (+1 for unknown): the issuer a made-up card number names
    probe_issuer_country: np.ndarray  # that issuer's country code
    countries: pl.Enum
    history: dict[str, EventTimes]  # account-event type → its times per party
    anchors: pl.DataFrame  # (account_id, ts_utc, collateral_type): ATO and card-testing campaign flows
    clock: LocalClock


COUNTRY_COLUMNS = (
    "home",
    "site_country",
    "party_country_iso",
    "issuer_country_iso",
    "ip_country_iso",
    "country",
)


def in_countries(table: pl.DataFrame, countries: pl.Enum) -> pl.DataFrame:
    """The table with its country columns in the world's country Enum (one vocabulary for every batch)."""
    return table.with_columns(pl.col(c).cast(countries) for c in COUNTRY_COLUMNS if c in table.columns)


def probe_issuers(issuers: pl.DataFrame, countries: pl.Enum) -> tuple[np.ndarray, np.ndarray]:
    """Per country code (and a last entry for an unknown country): the issuer a probe on a made-up card
    number is routed to — the country's largest issuer (rank 1), else the world's first rank-1 issuer — and
    that issuer's country code. Card testers enumerate BIN ranges of the big local issuers."""
    names = countries.categories.to_list()
    top = issuers.sort("issuer_rank", "issuer_id").unique("country", keep="first", maintain_order=True)
    default = top.row(0, named=True)
    by_country = {str(r["country"]): r["issuer_id"] for r in top.iter_rows(named=True)}
    issuer = np.array([by_country.get(c, default["issuer_id"]) for c in names] + [default["issuer_id"]])
    home = names.index(str(default["country"]))
    country = np.array([i if c in by_country else home for i, c in enumerate(names)] + [home])
    return issuer.astype(np.uint64), country.astype(np.int64)


def _country(col: str, alias: str) -> pl.Expr:
    return pl.col(col).cast(pl.String).alias(alias)


def bank_world(ctx: StateContext) -> BankWorld:
    """The world of this run: sealed upstream tables, and 6B.S3's account events and inserted flows."""
    assert ctx.scenario is not None
    return build_world(
        lambda name, columns: ctx.sealed_table(name, columns),
        ctx.read("account_events", scenario=ctx.scenario),
        ctx.read("inserted_flows", scenario=ctx.scenario),
    )


def build_world(
    table: Callable[[str, list[str] | None], pl.DataFrame],
    account_events: pl.DataFrame,
    inserted: pl.DataFrame,
) -> BankWorld:
    """The lookups from the upstream tables by input id (`table`, reading only the columns it is given) and
    6B.S3's outputs."""

    def picked(name: str, *exprs: str | pl.Expr) -> pl.DataFrame:
        """`name` read with only the columns `exprs` use, then selected by them."""
        wanted = [pl.col(e) if isinstance(e, str) else e for e in exprs]
        return table(name, sorted({c for e in wanted for c in e.meta.root_names()})).select(wanted)

    profile = (
        picked("merchant_zone_profile", "merchant_id", pl.col("demand_class").alias("merchant_class"))
        .drop_nulls()
        .unique("merchant_id", keep="first", maintain_order=True)
    )
    merchants = picked(
        "merchant_catalogue",
        "merchant_id",
        "mcc",
        pl.col("sector").cast(pl.String),
        _country("home_country_iso", "home"),
    ).join(profile, on="merchant_id", how="left")
    sites = picked("site_timezones", "site_id", _country("legal_country_iso", "site_country"))
    tiers = picked("party_roles", "party_id", "kyc_risk_tier")
    parties = picked(
        "parties",
        "party_id",
        _country("country_iso", "party_country_iso"),
        pl.col("segment").alias("party_segment"),
        "onboarding_date",
    ).join(tiers, on="party_id", how="left")
    accounts = picked(
        "accounts",
        "account_id",
        "issuer_id",
        _country("issuer_country", "issuer_country_iso"),
        (pl.col("account_type").cast(pl.String) == "CREDIT_CARD").alias("is_credit"),
    )
    instruments = picked(
        "instruments",
        "instrument_id",
        "instrument_type",
        pl.col("scheme").alias("card_scheme"),
        "card_bin",
        "is_tokenised",
    )
    devices = picked(
        "devices",
        "device_id",
        "device_type",
        pl.col("os").alias("device_os"),
        pl.col("n_parties").alias("device_n_parties"),
    )
    ips = picked(
        "ips",
        "ip_id",
        "ip_type",
        pl.col("asn_class").alias("ip_asn_class"),
        _country("country_iso", "ip_country_iso"),
    )
    issuers = picked("issuers", "issuer_id", _country("country_iso", "country"), "issuer_rank")
    named = (
        merchants["home"],
        sites["site_country"],
        parties["party_country_iso"],
        accounts["issuer_country_iso"],
        ips["ip_country_iso"],
        issuers["country"],
    )
    countries = pl.Enum(sorted(set().union(*(column.unique().to_list() for column in named))))
    merchants, sites, parties, accounts, ips, issuers = (
        in_countries(t, countries) for t in (merchants, sites, parties, accounts, ips, issuers)
    )
    probe_issuer, probe_country = probe_issuers(issuers, countries)
    events = account_events.select(pl.col("event_type").cast(pl.String), "party_id", "ts_utc")
    history = {
        kind: EventTimes.of(events.filter(pl.col("event_type") == kind)) for kind in ACCOUNT_EVENT_TYPES
    }
    codes = {CAMPAIGN_TYPES.index(t) + 1: t for t in COLLATERAL_TYPES}
    anchors = (
        inserted.select(
            "account_id", "ts_utc", (pl.col("campaign_id") // (1 << TYPE_SHIFT)).alias("type_code")
        )
        .filter(pl.col("type_code").is_in(list(codes)) & pl.col("account_id").is_not_null())
        .select(
            "account_id",
            pl.col("ts_utc").alias("anchor_ts"),
            pl.col("type_code").replace_strict(codes, return_dtype=pl.String).alias("collateral_type"),
        )
        .sort("anchor_ts")
    )
    return BankWorld(
        merchants=Dim.of(merchants, "merchant_id"),
        sites=Dim.of(sites, "site_id"),
        parties=Dim.of(parties, "party_id"),
        accounts=Dim.of(accounts, "account_id"),
        instruments=Dim.of(instruments, "instrument_id"),
        devices=Dim.of(devices, "device_id"),
        ips=Dim.of(ips, "ip_id"),
        probe_issuer=probe_issuer,
        probe_issuer_country=probe_country,
        countries=countries,
        history=history,
        anchors=anchors,
        clock=LocalClock(table("tz_transitions", None)),
    )


def collateral_types(flows: pl.DataFrame, anchors: pl.DataFrame, window_s: int) -> pl.DataFrame:
    """Per flow, the campaign type and time of the nearest ATO / card-testing flow on its account within
    window_s (either side), else nulls: where the bank's response to that fraud may catch genuine flows."""
    probe = (
        flows.select("account_id", "ts_utc")
        .with_row_index("_row")
        .filter(pl.col("account_id").is_not_null())
        .sort("ts_utc")
    )
    out = pl.DataFrame(
        {
            "collateral_type": pl.Series([None] * flows.height, dtype=pl.String),
            "anchor_ts": pl.Series([None] * flows.height, dtype=anchors.schema["anchor_ts"]),
        }
    )
    if probe.height == 0 or anchors.height == 0:
        return out
    joined = probe.join_asof(
        anchors,
        left_on="ts_utc",
        right_on="anchor_ts",
        by="account_id",
        strategy="nearest",
        tolerance=f"{window_s}s",
        check_sortedness=False,
    ).filter(pl.col("collateral_type").is_not_null())
    rows = joined["_row"].to_numpy()
    return out.with_columns(
        out["collateral_type"].scatter(rows, joined["collateral_type"]),
        out["anchor_ts"].scatter(rows, joined["anchor_ts"]),
    )
