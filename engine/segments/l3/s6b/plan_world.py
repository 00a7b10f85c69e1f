"""6B.S3's view of the world: merchant demand cells, sites, terminals, edges and the 6A entities a campaign
draws from, as sorted arrays with cumulative weights, so that every pick is one vectorised inverse-CDF lookup
(`searchsorted`) of a uniform (design §4.6 step 3: entities are drawn from 6A as S1 draws them: a
channel-capable instrument of the party with the primary account weighted 3, a device of the party, an IP of
the device by usage weight, a site by 2B weight, a terminal of the site, an edge by 3B weight).

Channel-capable instruments (design §4.4 step 4): POS a physical card or device token; ECOM any card or
network token (cnp_enabled); ATM a physical debit card; TRANSFER a bank account.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.core.group_sums import group_sums
from engine.segments.l3.s6b.policy import Campaigns, Channels

POS, ECOM, ATM, TRANSFER = range(4)
CHANNEL_INSTRUMENTS = {
    POS: ("DEBIT_PHYSICAL", "CREDIT_PHYSICAL", "DEVICE_TOKEN"),
    ECOM: ("DEBIT_PHYSICAL", "DEBIT_VIRTUAL", "CREDIT_PHYSICAL", "CREDIT_VIRTUAL", "NETWORK_TOKEN"),
    ATM: ("DEBIT_PHYSICAL",),
    TRANSFER: ("BANK_ACCOUNT",),
}
PRIMARY_WEIGHT = 3.0  # design §4.1 attachment.yaml: primary-account weight 3
ANON_VPN = (
    "VPN_PROXY",
    "DATACENTRE",
)  # design §4.2 IP_SWAP_ANON: 60 % VPN/datacentre, 40 % residential proxy
ANON_PROXY = ("RESIDENTIAL_PROXY",)


def cumulative(weights: np.ndarray) -> np.ndarray:
    """[0, w0, w0+w1, …]: row i owns [cum[i], cum[i+1]), so a zero weight is never picked."""
    out = np.zeros(weights.shape[0] + 1, dtype=np.float64)
    np.cumsum(np.asarray(weights, dtype=np.float64), out=out[1:])
    return out


def pick_in(cum: np.ndarray, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Row index in [lo, hi) drawn by weight with uniform u (−1 where the range has no weight)."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    total = cum[hi] - cum[lo]
    x = cum[lo] + u * total
    idx = np.searchsorted(cum, x, side="right") - 1
    idx = np.minimum(np.maximum(idx, lo), hi - 1)
    return np.where(total > 0, idx, -1)


def ranges(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi) of each key's run in an ascending key array (empty where the key is absent)."""
    return (
        np.searchsorted(sorted_keys, keys, side="left").astype(np.int64),
        np.searchsorted(sorted_keys, keys, side="right").astype(np.int64),
    )


def pair_key(firsts: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A sortable key of (id, small code): the id's rank among `firsts` (sorted unique) << 16 | code, so ids
    near 2^63 do not overflow; an id not in `firsts` gets a key no row has."""
    first = np.asarray(first, dtype=np.uint64)
    rank = np.searchsorted(firsts, first).astype(np.int64)
    found = (rank < firsts.shape[0]) & (firsts[np.minimum(rank, max(firsts.shape[0] - 1, 0))] == first)
    return np.where(found, (rank << 16) | np.asarray(second, dtype=np.int64), -1)


@dataclass(frozen=True)
class Cells:
    """Merchant demand cells (merchant, legal country, 6B channel) sorted by (channel, country, merchant) with
    weekly weights: `cum` plain, `cash_cum` × cashout_weight at resaleable-goods MCCs (amendment 1)."""

    channel: np.ndarray
    country: np.ndarray
    merchant_id: np.ndarray
    weekly: np.ndarray
    cum: np.ndarray
    cash_cum: np.ndarray
    flat_cum: np.ndarray  # every cell weight 1: testers pick small merchants as readily as large ones
    key: np.ndarray  # channel << 16 | country

    def pick(
        self,
        channel: np.ndarray,
        country: np.ndarray,
        foreign: np.ndarray,
        u: np.ndarray,
        kind: str = "plain",
    ) -> np.ndarray:
        """A cell of `channel`, in `country` or (foreign) outside it, by weight; falls back to the other side
        when one side is empty. −1 where the channel has no cell."""
        cum = {"plain": self.cum, "cash": self.cash_cum, "flat": self.flat_cum}[kind]
        channel = np.asarray(channel, dtype=np.int64)
        c_lo, c_hi = ranges(self.channel, channel)
        k_lo, k_hi = ranges(self.key, (channel << 16) | np.asarray(country, dtype=np.int64))
        total_c = cum[c_hi] - cum[c_lo]
        total_k = cum[k_hi] - cum[k_lo]
        outside = total_c - total_k
        go_foreign = np.where(foreign, outside > 0, total_k <= 0)
        x_dom = cum[k_lo] + u * total_k
        y = cum[c_lo] + u * outside
        x_for = np.where(y >= cum[k_lo], y + total_k, y)
        x = np.where(go_foreign, x_for, x_dom)
        idx = np.searchsorted(cum, x, side="right") - 1
        idx = np.minimum(np.maximum(idx, c_lo), c_hi - 1)
        return np.where(total_c > 0, idx, -1)


@dataclass(frozen=True)
class Places:
    """Sites by (merchant, country) with 2B weights (and the lowest-weight half for SITE_SHIFT), terminals by
    (site, type) and edges by merchant with 3B weights."""

    site_merchants: np.ndarray  # sorted unique merchant ids with sites
    site_key: np.ndarray  # pair_key(merchant, country) per site row, ascending
    site_id: np.ndarray
    site_cum: np.ndarray
    site_low_cum: np.ndarray
    term_sites: np.ndarray  # sorted unique site ids with terminals
    term_site: np.ndarray
    term_key: np.ndarray  # pair_key(site, is ATM) per terminal row, ascending
    term_id: np.ndarray
    edge_merchant: np.ndarray
    edge_id: np.ndarray
    edge_cum: np.ndarray

    def site(self, merchant: np.ndarray, country: np.ndarray, u: np.ndarray, low: np.ndarray) -> np.ndarray:
        lo, hi = ranges(self.site_key, pair_key(self.site_merchants, merchant, country))
        plain = pick_in(self.site_cum, lo, hi, u)
        shifted = pick_in(self.site_low_cum, lo, hi, u)
        idx = np.where(low & (shifted >= 0), shifted, plain)
        return np.where(idx >= 0, self.site_id[np.maximum(idx, 0)], 0).astype(np.uint64)

    def terminal(self, site: np.ndarray, atm: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A terminal of the site of the channel's type (ATM or not), else any of the site; 0 when none."""
        lo, hi = ranges(self.term_key, pair_key(self.term_sites, site, atm.astype(np.int64)))
        alo, ahi = ranges(self.term_site, np.asarray(site, dtype=np.uint64))
        lo, hi = np.where(hi > lo, lo, alo), np.where(hi > lo, hi, ahi)
        idx = lo + np.floor(u * (hi - lo)).astype(np.int64)
        return np.where(hi > lo, self.term_id[np.minimum(idx, self.term_id.shape[0] - 1)], 0).astype(
            np.uint64
        )

    def edge(self, merchant: np.ndarray, u: np.ndarray) -> np.ndarray:
        lo, hi = ranges(self.edge_merchant, np.asarray(merchant, dtype=np.uint64))
        idx = pick_in(self.edge_cum, lo, hi, u)
        return np.where(idx >= 0, self.edge_id[np.maximum(idx, 0)], 0).astype(np.uint64)


@dataclass(frozen=True)
class Entities:
    """6A parties (sorted by id) and, per channel, their channel-capable instruments sorted by party with
    primary-weighted cumulative weights; devices per party; IPs per device by usage weight; the pools the
    swap tactics and the mule and operator roles draw from."""

    party_id: np.ndarray
    country: np.ndarray  # country code per party
    segment: np.ndarray  # str
    activity: np.ndarray
    digital: np.ndarray
    role: np.ndarray  # str (CLEAN where 6A gave no role)
    controller: np.ndarray  # u64, 0 = none
    inst_party: dict[int, np.ndarray]
    inst_id: dict[int, np.ndarray]
    inst_account: dict[int, np.ndarray]
    inst_cum: dict[int, np.ndarray]
    holds: dict[int, np.ndarray]  # per channel, per party (id order): holds a channel-capable instrument
    all_inst: np.ndarray  # every instrument id (sorted), its account and whether it is a device token
    all_account: np.ndarray
    all_token: np.ndarray
    dev_party: np.ndarray
    dev_id: np.ndarray
    ip_device: np.ndarray
    ip_id: np.ndarray
    ip_cum: np.ndarray
    operator_devices: np.ndarray
    anon_vpn: np.ndarray
    anon_proxy: np.ndarray
    mule_account: np.ndarray
    mule_account_party: np.ndarray
    account_id: np.ndarray  # every account (sorted), for legit payees

    def has_instrument(self, channel: int) -> np.ndarray:
        """Per party: does it hold an instrument usable on `channel`?"""
        return self.holds[channel]

    def instrument(
        self, party: np.ndarray, channel: np.ndarray, u: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(instrument_id, account_id) per row, 0 where the party has none for the channel."""
        inst = np.zeros(party.shape[0], dtype=np.uint64)
        acct = np.zeros(party.shape[0], dtype=np.uint64)
        for c in np.unique(channel):
            rows = np.flatnonzero(channel == c)
            lo, hi = ranges(self.inst_party[int(c)], party[rows])
            idx = pick_in(self.inst_cum[int(c)], lo, hi, u[rows])
            ok = idx >= 0
            inst[rows[ok]] = self.inst_id[int(c)][idx[ok]]
            acct[rows[ok]] = self.inst_account[int(c)][idx[ok]]
        return inst, acct

    def device(self, party: np.ndarray, u: np.ndarray) -> np.ndarray:
        lo, hi = ranges(self.dev_party, np.asarray(party, dtype=np.uint64))
        idx = lo + np.floor(u * (hi - lo)).astype(np.int64)
        return np.where(hi > lo, self.dev_id[np.minimum(idx, max(self.dev_id.shape[0] - 1, 0))], 0).astype(
            np.uint64
        )

    def ip(self, device: np.ndarray, u: np.ndarray) -> np.ndarray:
        lo, hi = ranges(self.ip_device, np.asarray(device, dtype=np.uint64))
        idx = pick_in(self.ip_cum, lo, hi, u)
        return np.where(idx >= 0, self.ip_id[np.maximum(idx, 0)], 0).astype(np.uint64)

    def account_of(self, instrument: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(account_id, is a device token) of each instrument id (0, False for 0)."""
        idx = np.minimum(np.searchsorted(self.all_inst, instrument), self.all_inst.shape[0] - 1)
        ok = self.all_inst[idx] == instrument
        return np.where(ok, self.all_account[idx], 0).astype(np.uint64), ok & self.all_token[idx]

    def in_country(self, weights: np.ndarray, country: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Parties by weight among those of each row's country (anywhere when the country has none)."""
        order = np.lexsort((self.party_id, self.country))
        cum = cumulative(weights[order])
        lo, hi = ranges(self.country[order], np.asarray(country, dtype=np.int64))
        idx = pick_in(cum, lo, hi, u)
        anywhere = pick_in(cum, np.zeros_like(lo), np.full_like(hi, order.shape[0]), u)
        return self.party_id[order[np.where(idx >= 0, idx, anywhere)]]

    def party_index(self, party: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.party_id, np.asarray(party, dtype=np.uint64))


@dataclass(frozen=True)
class World:
    """Everything S3 reads, already shaped for vectorised picks."""

    countries: list[str]  # code → ISO2
    merchant_ids: np.ndarray  # sorted: merchant_idx = position + 1
    cells: Cells
    places: Places
    entities: Entities
    minor_per_usd: np.ndarray  # per country code: minor units of its currency per USD-like major unit
    collusive: np.ndarray  # COLLUSIVE merchant ids with demand
    promos: pl.DataFrame  # PROMO events: merchant_id, start_us, end_us
    hour_cdf: np.ndarray  # (2, 25): night-skewed and after-hours local-hour CDFs (plan_draws.hour_cdf)
    tz_offset_s: (
        np.ndarray
    )  # per country code: the UTC offset of its largest demand zone at the horizon start
    channel_share: np.ndarray  # per 6B channel: share of weekly demand

    def merchant_idx(self, merchant: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.merchant_ids, np.asarray(merchant, dtype=np.uint64)).astype(np.uint64) + 1


def channel_codes(mcc: pl.Expr, cp: pl.Expr, channels: Channels) -> pl.Expr:
    """6B channel code (design §4.1: ATM if CP at an ATM MCC, POS if CP, TRANSFER at a transfer MCC, ECOM)."""
    return (
        pl.when(cp & mcc.is_in(channels.atm_mccs))
        .then(ATM)
        .when(cp)
        .then(POS)
        .when(mcc.is_in(channels.transfer_mccs))
        .then(TRANSFER)
        .otherwise(ECOM)
        .cast(pl.Int64)
    )


def build_cells(profile: pl.DataFrame, code: dict[str, int], channels: Channels, pol: Campaigns) -> Cells:
    cash_mcc = pl.col("mcc").is_in(pol.skew.cashout_mccs)
    cash_sector = pl.col("sector").cast(pl.String).is_in(list(pol.skew.cashout_sectors))
    keys = ["merchant_id", "country_iso", "ch"]
    rows = profile.filter(pl.col("weekly_expected") > 0).select(
        "merchant_id",
        pl.col("legal_country_iso").cast(pl.String).alias("country_iso"),
        channel_codes(pl.col("mcc"), pl.col("channel_group").cast(pl.String) == "CP", channels).alias("ch"),
        "weekly_expected",
        "mcc",
        "sector",
    )
    # the cells' weights set every sampled flow, so they are summed in a fixed order (group_sums)
    weekly = group_sums(rows, keys, ["weekly_expected"]).rename({"weekly_expected": "weekly"})
    first = rows.unique(keys, keep="first", maintain_order=True).select(*keys, "mcc", "sector")
    df = (
        weekly.join(first, on=keys, how="left", maintain_order="left")
        .with_columns(
            pl.col("country_iso").replace_strict(code, return_dtype=pl.Int64).alias("cc"),
            pl.when(cash_mcc | cash_sector).then(pol.skew.cashout_weight).otherwise(1.0).alias("cash"),
        )
        .sort("ch", "cc", "merchant_id")
    )
    ch = df["ch"].to_numpy()
    cc = df["cc"].to_numpy()
    weekly = df["weekly"].to_numpy()
    return Cells(
        channel=ch,
        country=cc,
        merchant_id=df["merchant_id"].to_numpy().astype(np.uint64),
        weekly=weekly,
        cum=cumulative(weekly),
        cash_cum=cumulative(weekly * df["cash"].to_numpy()),
        flat_cum=cumulative(np.ones_like(weekly)),
        key=(ch << 16) | cc,
    )


def build_places(
    sites: pl.DataFrame,
    weights: pl.DataFrame,
    terminals: pl.DataFrame,
    edges: pl.DataFrame,
    code: dict[str, int],
) -> Places:
    s = (
        sites.select("site_id", "merchant_id", pl.col("legal_country_iso").cast(pl.String))
        .join(weights.group_by("site_id").agg(pl.col("p_weight").sum()), on="site_id", how="left")
        .with_columns(
            pl.col("p_weight").fill_null(0.0),
            pl.col("legal_country_iso").replace_strict(code, default=255, return_dtype=pl.Int64).alias("cc"),
        )
        .sort("merchant_id", "cc", "site_id")
        .with_columns(
            # SITE_SHIFT (design §4.2): the lowest-weight half of the merchant's sites in that country
            (
                pl.col("p_weight").rank("ordinal").over("merchant_id", "cc")
                <= (pl.len().over("merchant_id", "cc") + 1) // 2
            ).alias("low")
        )
    )
    w = s["p_weight"].to_numpy()
    t = terminals.select(
        "terminal_id", "site_id", (pl.col("terminal_type").cast(pl.String) == "ATM").alias("atm")
    ).sort("site_id", "atm", "terminal_id")
    site_m = s["merchant_id"].to_numpy().astype(np.uint64)
    merchants = np.unique(site_m)
    term_s = t["site_id"].to_numpy().astype(np.uint64)
    sites = np.unique(term_s)
    e = edges.select("edge_id", "merchant_id", "edge_weight").sort("merchant_id", "edge_id")
    return Places(
        site_merchants=merchants,
        site_key=pair_key(merchants, site_m, s["cc"].to_numpy()),
        site_id=s["site_id"].to_numpy().astype(np.uint64),
        site_cum=cumulative(w),
        site_low_cum=cumulative(np.where(s["low"].to_numpy(), w, 0.0)),
        term_sites=sites,
        term_site=term_s,
        term_key=pair_key(sites, term_s, t["atm"].to_numpy().astype(np.int64)),
        term_id=t["terminal_id"].to_numpy().astype(np.uint64),
        edge_merchant=e["merchant_id"].to_numpy().astype(np.uint64),
        edge_id=e["edge_id"].to_numpy().astype(np.uint64),
        edge_cum=cumulative(e["edge_weight"].to_numpy()),
    )


def build_entities(t: dict[str, pl.DataFrame], code: dict[str, int]) -> Entities:
    """`t`: 6A's parties, party_roles, accounts, account_roles, instruments, devices, device_links, ip_links,
    ips."""
    roles = t["party_roles"].select("party_id", pl.col("role").cast(pl.String), "controller_party_id")
    p = (
        t["parties"]
        .select(
            "party_id",
            pl.col("country_iso").cast(pl.String).replace_strict(code, default=255, return_dtype=pl.Int64),
            pl.col("segment").cast(pl.String),
            "activity_weight",
            "digital_affinity",
        )
        .join(roles, on="party_id", how="left")
        .with_columns(pl.col("role").fill_null("CLEAN"), pl.col("controller_party_id").fill_null(0))
        .sort("party_id")
    )
    acc = t["accounts"].select("account_id", "is_primary")
    inst = (
        t["instruments"]
        .select(
            "instrument_id",
            "account_id",
            "party_id",
            "instrument_type",  # 6A's Enum: compared as is, no string per instrument
            "cnp_enabled",
        )
        .join(acc, on="account_id", how="left")
        .with_columns(pl.when(pl.col("is_primary")).then(PRIMARY_WEIGHT).otherwise(1.0).alias("w"))
        .sort("party_id", "instrument_id")
    )
    inst_party, inst_id, inst_account, inst_cum = {}, {}, {}, {}
    for ch, types in CHANNEL_INSTRUMENTS.items():
        ok = pl.col("instrument_type").is_in(list(types))
        if ch == ECOM:
            ok = ok & pl.col("cnp_enabled").fill_null(True)
        sub = inst.filter(ok)
        inst_party[ch] = sub["party_id"].to_numpy().astype(np.uint64, copy=False)
        inst_id[ch] = sub["instrument_id"].to_numpy().astype(np.uint64, copy=False)
        inst_account[ch] = sub["account_id"].to_numpy().astype(np.uint64, copy=False)
        inst_cum[ch] = cumulative(sub["w"].to_numpy())
    links = t["device_links"].select("party_id", "device_id").sort("party_id", "device_id")
    ipl = t["ip_links"].select("device_id", "ip_id", "usage_weight").sort("device_id", "ip_id")
    dev = t["devices"].select("device_id", "owner_kind").sort("device_id")
    ips = t["ips"].select("ip_id", "ip_type").sort("ip_id")
    mules = (
        t["account_roles"]
        .filter(pl.col("role").cast(pl.String) == "MULE_ACCOUNT")
        .join(t["accounts"].select("account_id", "party_id"), on="account_id")
        .sort("account_id")
    )
    by_id = inst.select("instrument_id", "account_id", "instrument_type").sort("instrument_id")
    party_ids = p["party_id"].to_numpy().astype(np.uint64, copy=False)
    return Entities(
        party_id=party_ids,
        country=p["country_iso"].to_numpy(),
        segment=p["segment"].to_numpy(),
        activity=p["activity_weight"].to_numpy().astype(np.float64),
        digital=p["digital_affinity"].to_numpy().astype(np.float64),
        role=p["role"].to_numpy(),
        controller=p["controller_party_id"].to_numpy().astype(np.uint64, copy=False),
        inst_party=inst_party,
        inst_id=inst_id,
        inst_account=inst_account,
        inst_cum=inst_cum,
        holds={c: np.isin(party_ids, np.unique(inst_party[c])) for c in CHANNEL_INSTRUMENTS},
        all_inst=by_id["instrument_id"].to_numpy().astype(np.uint64, copy=False),
        all_account=by_id["account_id"].to_numpy().astype(np.uint64, copy=False),
        all_token=(by_id["instrument_type"] == "DEVICE_TOKEN").to_numpy(),
        dev_party=links["party_id"].to_numpy().astype(np.uint64, copy=False),
        dev_id=links["device_id"].to_numpy().astype(np.uint64, copy=False),
        ip_device=ipl["device_id"].to_numpy().astype(np.uint64, copy=False),
        ip_id=ipl["ip_id"].to_numpy().astype(np.uint64, copy=False),
        ip_cum=cumulative(ipl["usage_weight"].to_numpy()),
        operator_devices=dev.filter(pl.col("owner_kind") == "OPERATOR")["device_id"]
        .to_numpy()
        .astype(np.uint64, copy=False),
        anon_vpn=ips.filter(pl.col("ip_type").is_in(list(ANON_VPN)))["ip_id"]
        .to_numpy()
        .astype(np.uint64, copy=False),
        anon_proxy=ips.filter(pl.col("ip_type").is_in(list(ANON_PROXY)))["ip_id"]
        .to_numpy()
        .astype(np.uint64, copy=False),
        mule_account=mules["account_id"].to_numpy().astype(np.uint64, copy=False),
        mule_account_party=mules["party_id"].to_numpy().astype(np.uint64, copy=False),
        account_id=t["accounts"]["account_id"].sort().to_numpy().astype(np.uint64, copy=False),
    )
