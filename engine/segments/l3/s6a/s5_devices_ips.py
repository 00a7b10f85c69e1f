"""6A.S5 — devices and IPs (design §3.7): personal and household devices, operator devices, and their IP
links, with every cap enforced by construction (the IPs themselves: ip_assign.py).

RNG `6A.device` ⟨owner_id, slot, owner_code, d⟩ (owner_code PARTY 0, HOUSEHOLD 1, OPERATOR 2, so party and
household ids never share a counter): ⟨party_id, 0, 0, 0⟩ w0 the personal count (one event per party: 1
draw, 1 block); ⟨household_id, 0, 1, 0⟩ w0 the sharing Bernoulli and w1 the shared count (per household of
≥ min_size members: 2 draws, 1 block); ⟨owner_id, slot ≥ 1, owner_code, d⟩ a device's lane stream
(device_kernels.py): customer devices 3 + 7 lanes (3 blocks), operator devices (owner_id = ordinal, slot 1)
3 + 3 + 1 lanes (2 blocks), the last being its country.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.blocks import block_uniforms
from engine.segments.l3.s6a.device_kernels import ATTR_LANES, device_draws, link_rows
from engine.segments.l3.s6a.draws import cdf_table, truncated_poisson_rows
from engine.segments.l3.s6a.ip_assign import assign_ips
from engine.segments.l3.s6a.policy import (
    ASN_CLASSES,
    CUSTOMER_LINK_KINDS,
    DEVICE_TYPES,
    IP_TYPES,
    OPERATING_SYSTEMS,
    OPERATOR_LINK_KINDS,
    REGIONS,
    SEGMENTS,
    Devices,
    Ips,
    Population,
)

STATE = "6A.S5"
PARTY, HOUSEHOLD, OPERATOR = 0, 1, 2
OWNER_KIND = pl.Enum(["PARTY", "HOUSEHOLD", "OPERATOR"])
DEVICE_TYPE = pl.Enum(list(DEVICE_TYPES))
OS = pl.Enum(list(OPERATING_SYSTEMS))
IP_TYPE = pl.Enum(list(IP_TYPES))
ASN_CLASS = pl.Enum(list(ASN_CLASSES))
LINK_KINDS = (*CUSTOMER_LINK_KINDS, *OPERATOR_LINK_KINDS)
LINK_KIND = pl.Enum(list(LINK_KINDS))
LINK_ROLE = pl.Enum(["OWNER", "HOUSEHOLD_MEMBER"])
CUSTOMER_TYPES = DEVICE_TYPES[:3]
TYPE_ROWS = ("first", "other", "shared")  # type_cdf rows 0..2; operators use row 3
# ASNs of these classes are global providers (country code 0), the others national
GLOBAL_ASN_CLASSES = ("HOSTING", "VPN_PROVIDER")
ASN_BASE = 4_200_000_000  # RFC 6996 private 32-bit range: synthetic, never a real network


def fail(code: str, what: str, where: str, fix: str = "", state: str = STATE) -> EngineError:
    return EngineError(code, what, where=where, fix=fix, state=state)


# --- S0 cross-field checks ----------------------------------------------------------------------------------
def check_devices(pol: Devices, pop: Population) -> None:
    """A party holds ≤ personal_cap personal plus ≤ household.cap shared devices; a shared device is linked to
    every member of a household of ≤ max_size (E_6A_CAP_INCONSISTENT when a cap is below what can occur)."""
    if pol.personal_cap + pol.household.cap > pol.max_devices_per_party:
        raise fail(
            "E_6A_CAP_INCONSISTENT",
            f"personal_cap {pol.personal_cap} + household.cap {pol.household.cap} exceeds "
            f"max_devices_per_party {pol.max_devices_per_party}",
            "6A/devices.yaml max_devices_per_party",
            "lower a sampler cap or raise max_devices_per_party",
            state="6A.S0",
        )
    if pop.households.max_size > pol.max_parties_per_device:
        raise fail(
            "E_6A_CAP_INCONSISTENT",
            f"households of up to {pop.households.max_size} share a device, above max_parties_per_device "
            f"{pol.max_parties_per_device}",
            "6A/devices.yaml max_parties_per_device",
            "raise it or lower population households.max_size",
            state="6A.S0",
        )


def check_ips(pol: Ips, devices: Devices, pop: Population) -> None:
    """A device draws ≤ 1 link per kind, so the kind count bounds its IPs; a HOME IP carries its household's
    devices (≤ max_size·max_devices_per_party) and needs room for one proxy link; a pool's mean size must fit
    under the cap."""
    kinds = max(len(pol.customer_kinds), len(pol.operator_kinds))
    home = pop.households.max_size * devices.max_devices_per_party
    worst = max(pol.mean_devices_per_ip.values())
    for ok, what, where in (
        (
            kinds <= pol.max_ips_per_device,
            f"{kinds} link kinds exceed max_ips_per_device",
            "max_ips_per_device",
        ),
        (home < pol.max_devices_per_ip, f"a household IP may carry {home} devices", "max_devices_per_ip"),
        (worst <= pol.max_devices_per_ip, f"a mean of {worst} devices per IP", "mean_devices_per_ip"),
    ):
        if not ok:
            raise fail(
                "E_6A_CAP_INCONSISTENT",
                f"{what} (max_ips_per_device {pol.max_ips_per_device}, max_devices_per_ip "
                f"{pol.max_devices_per_ip})",
                f"6A/ips.yaml {where}",
                "make the cap at least what the samplers can produce",
                state="6A.S0",
            )


# --- devices ------------------------------------------------------------------------------------------------
def households(parties: pl.DataFrame) -> pl.DataFrame:
    """One row per household: its country, region, the first member's (head's) type, segment and cross-border
    propensity, its member count and earliest onboarding."""
    return (
        parties.group_by("household_id")
        .agg(
            pl.col("country_iso").first(),
            pl.col("region").first(),
            pl.col("party_type").first(),
            pl.col("segment").first(),
            pl.col("cross_border_propensity").first(),
            pl.len().alias("members"),
            pl.col("onboarding_date").min(),
        )
        .sort("household_id")
    )


def personal_counts(key: tuple[int, int], parties: pl.DataFrame, pol: Devices) -> np.ndarray:
    """1 + Poisson(λ_segment) truncated to [0, personal_cap − 1], lane 0 of ⟨party_id, 0, 0, 0⟩."""
    u = block_uniforms(key, parties["party_id"].to_numpy())[:, 0]
    lam = parties["segment"].cast(pl.String).replace_strict(pol.lambdas, return_dtype=pl.Float64).to_numpy()
    return 1 + truncated_poisson_rows(u, lam, pol.personal_cap - 1)


def shared_counts(key: tuple[int, int], homes: pl.DataFrame, pol: Devices) -> np.ndarray:
    """Households of ≥ min_size members share 1 + Poisson(lam) truncated to [0, cap − 1] devices with p_shared
    (⟨household_id, 0, 1, 0⟩: w0 the Bernoulli, w1 the count); 0 for the others (no draw)."""
    u = block_uniforms(key, homes["household_id"].to_numpy(), 0, HOUSEHOLD, lanes=2)
    h = pol.household
    n = 1 + truncated_poisson_rows(u[:, 1], np.full(u.shape[0], h.lam), h.cap - 1)
    return np.where((homes["members"].to_numpy() >= h.min_size) & (u[:, 0] < h.p_shared), n, 0)


def expand(owner: pl.DataFrame, counts: np.ndarray) -> pl.DataFrame:
    """Each owner row repeated counts times, with slot 1..count."""
    idx = np.repeat(np.arange(owner.height), counts)
    slot = np.arange(idx.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    return owner[idx].with_columns(pl.Series("slot", slot.astype(np.uint64)))


def customer_tables(dev: Devices, ips: Ips) -> dict[str, np.ndarray]:
    """The kernels' lookup tables for customer devices."""
    kinds = [ips.customer_kinds[k] for k in CUSTOMER_LINK_KINDS]
    type_cdf = cdf_table([dev.type_mix[r] for r in TYPE_ROWS], DEVICE_TYPES)
    os_cdf = np.stack(
        [
            cdf_table([dev.os_mix[r].get(t, {"ANDROID": 1.0}) for t in DEVICE_TYPES], OPERATING_SYSTEMS)
            for r in REGIONS
        ]
    )
    p = np.array([[k.p.get(t, 0.0) for k in kinds] for t in DEVICE_TYPES])
    factor = np.array([[k.segment_factor.get(s, k.default_factor) for k in kinds] for s in SEGMENTS])
    return {
        "type_cdf": type_cdf,
        "os_cdf": os_cdf,
        "max_age": np.array([dev.max_age_days.get(t, 1) for t in DEVICE_TYPES], dtype=np.float64),
        "p": p,
        "factor": factor,
        "tilt": np.array([k.cross_border_tilt for k in kinds]),
        "weight": np.array([k.weight for k in kinds]),
    }


def operator_tables(dev: Devices, ips: Ips) -> dict[str, np.ndarray]:
    """The kernels' lookup tables for operator devices (no segment, no tilt)."""
    kinds = [ips.operator_kinds[k] for k in OPERATOR_LINK_KINDS]
    op = dev.operator
    return {
        "type_cdf": cdf_table([op.type_mix], DEVICE_TYPES),
        "os_cdf": cdf_table([op.os_mix.get(t, {"ANDROID": 1.0}) for t in DEVICE_TYPES], OPERATING_SYSTEMS)[
            None
        ],
        "max_age": np.full(len(DEVICE_TYPES), float(op.max_age_days)),
        "p": np.array([[k.p for k in kinds]] * len(DEVICE_TYPES)),
        "factor": np.ones((1, len(kinds))),
        "tilt": np.zeros(len(kinds)),
        "weight": np.array([k.weight for k in kinds]),
    }


def coded(name: str, codes: np.ndarray, enum: pl.Enum) -> pl.Series:
    """An Enum column from category indexes (no per-row strings)."""
    return pl.Series(name, codes).replace_strict(dict(enumerate(enum.categories)), return_dtype=enum)


def draw_devices(
    key: tuple[int, int], rows: pl.DataFrame, tables: dict[str, np.ndarray], fallback: np.ndarray
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Attributes and links of devices `rows` (owner_id, slot, owner_code, type_row, os_row, seg, cbp):
    (rows with device_type, os, age_days; links as device row, kind index and usage weight)."""
    c = [rows[col].to_numpy().astype(np.uint64) for col in ("owner_id", "slot", "owner_code")]
    seg, cbp = rows["seg"].to_numpy().astype(np.int64), rows["cbp"].to_numpy().astype(np.float64)
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    t = tables
    dtype, os, age, mask = device_draws(
        k0, k1, *c, rows["type_row"].to_numpy().astype(np.int64), t["type_cdf"],
        rows["os_row"].to_numpy().astype(np.int64), t["os_cdf"], t["max_age"], seg, cbp, t["p"], t["factor"],
        t["tilt"],
    )  # fmt: skip
    per = np.maximum(sum((mask >> k) & 1 for k in range(t["p"].shape[1])), 1)
    offsets = np.concatenate([[0], np.cumsum(per)]).astype(np.int64)
    kind, weight = link_rows(
        k0, k1, *c, dtype, seg, cbp, t["p"], t["factor"], t["tilt"], t["weight"], mask,
        fallback.astype(np.int64), offsets,
    )  # fmt: skip
    attrs = rows.with_columns(
        coded("device_type", dtype, DEVICE_TYPE),
        coded("os", os, OS),
        pl.Series("age_days", age),
    )
    links = pl.DataFrame(
        {
            "row": np.repeat(np.arange(rows.height), per),
            "kind": kind,
            "usage_weight": weight.astype(np.float32),
        }
    )
    return attrs, links


def customer_rows(parties: pl.DataFrame, homes: pl.DataFrame, n_personal: np.ndarray, n_shared: np.ndarray):  # type: ignore[no-untyped-def]
    """Personal devices (party order, slot) then household devices (household order, slot), with the columns
    draw_devices reads and those the devices table keeps."""
    region = pl.col("region").cast(pl.String).replace_strict({r: i for i, r in enumerate(REGIONS)})
    seg = pl.col("segment").cast(pl.String).replace_strict({s: i for i, s in enumerate(SEGMENTS)})
    common = [
        region.cast(pl.Int64).alias("os_row"),
        seg.cast(pl.Int64).alias("seg"),
        pl.col("cross_border_propensity").cast(pl.Float64).alias("cbp"),
        "party_type",
        "country_iso",
        "household_id",
        "onboarding_date",
    ]
    personal = expand(
        parties.select(pl.col("party_id").alias("owner_id"), *common, pl.lit(1, pl.UInt8).alias("n_parties")),
        n_personal,
    ).with_columns(
        pl.lit(PARTY, pl.UInt64).alias("owner_code"),
        pl.when(pl.col("slot") == 1).then(0).otherwise(1).cast(pl.Int64).alias("type_row"),
    )
    shared = expand(
        homes.select(
            pl.col("household_id").alias("owner_id"),
            *common,
            pl.col("members").cast(pl.UInt8).alias("n_parties"),
        ),
        n_shared,
    ).with_columns(pl.lit(HOUSEHOLD, pl.UInt64).alias("owner_code"), pl.lit(2, pl.Int64).alias("type_row"))
    return pl.concat([personal, shared], how="vertical_relaxed")


def operator_rows(
    key: tuple[int, int], n: int, countries: pl.DataFrame, lane: int
) -> tuple[pl.DataFrame, np.ndarray]:
    """n operator devices, ordinals 1..n; each one's country ∝ `countries`' party counts from lane `lane` of
    its stream (⟨ordinal, 1, 2, lane // 4⟩ w(lane % 4)). Returns the rows and that uniform."""
    ordinal = np.arange(1, n + 1, dtype=np.uint64)
    u = block_uniforms(key, ordinal, 1, OPERATOR, lane // 4, lanes=4)[:, lane % 4]
    cdf = np.cumsum(countries["parties"].to_numpy().astype(np.float64))
    pick = np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"), cdf.shape[0] - 1)
    rows = pl.DataFrame(
        {
            "owner_id": ordinal,
            "slot": np.ones(n, dtype=np.uint64),
            "owner_code": np.full(n, OPERATOR, dtype=np.uint64),
            "type_row": np.zeros(n, dtype=np.int64),
            "os_row": np.zeros(n, dtype=np.int64),
            "seg": np.zeros(n, dtype=np.int64),
            "cbp": np.full(n, 0.5),
        }
    ).with_columns(
        pl.Series("country_iso", countries["country_iso"].to_numpy()[pick], dtype=pl.String),
        pl.lit(0, pl.UInt8).alias("n_parties"),
    )
    return rows, u


# --- the state ----------------------------------------------------------------------------------------------
PARTY_COLUMNS = [
    "party_id",
    "country_iso",
    "region",
    "party_type",
    "segment",
    "household_id",
    "onboarding_date",
    "cross_border_propensity",
]
DEVICE_COLUMNS = [
    "device_id",
    "owner_kind",
    "owner_party_id",
    "household_id",
    "device_type",
    "os",
    "country_iso",
    "first_seen_date",
    "n_parties",
]


def stream_blocks(lanes: int) -> int:
    return math.ceil(lanes / 4)


def make_devices(
    ctx: StateContext, parties: pl.DataFrame, dev: Devices, ips: Ips, start: dt.date
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, np.ndarray]]:
    """(devices, device_links, the device–IP links as arrays in device order: device_id, kind (index in
    LINK_KINDS), usage_weight)."""
    key = ctx.family_key("device")
    homes = households(parties)
    n_personal = personal_counts(key, parties, dev)
    ctx.record_draws("device", (parties["party_id"].to_numpy(), 0, 0, 0), draws=1, blocks=1, value=n_personal)
    eligible = homes["members"].to_numpy() >= dev.household.min_size
    n_shared = np.zeros(homes.height, dtype=np.int64)
    n_shared[eligible] = shared_counts(key, homes.filter(pl.Series(eligible)), dev)
    hh_ids = homes["household_id"].to_numpy()[eligible]
    ctx.record_draws("device", (hh_ids, 0, HOUSEHOLD, 0), draws=2, blocks=1, value=n_shared[eligible])
    cust = customer_rows(parties, homes, n_personal, n_shared)
    k_cust = len(CUSTOMER_LINK_KINDS)
    fallback = np.where(
        (cust["party_type"].cast(pl.String) == "RETAIL").to_numpy(),
        CUSTOMER_LINK_KINDS.index(ips.fallback_kinds[0]),
        CUSTOMER_LINK_KINDS.index(ips.fallback_kinds[1]),
    )
    cust, cust_links = draw_devices(key, cust, customer_tables(dev, ips), fallback)
    lanes = ATTR_LANES + k_cust
    c = (cust["owner_id"].to_numpy(), cust["slot"].to_numpy(), cust["owner_code"].to_numpy(), 0)
    ctx.record_draws("device", c, draws=lanes, blocks=stream_blocks(lanes), value=cust["age_days"].to_numpy())
    # operators live where customers have home IPs (their residential proxies), in proportion to parties
    home_rows = cust_links.filter(pl.col("kind") == CUSTOMER_LINK_KINDS.index("HOME"))["row"].unique()
    where = cust[home_rows.to_numpy()]["country_iso"].cast(pl.String).unique()
    countries = (
        parties.filter(pl.col("country_iso").cast(pl.String).is_in(where.to_list()))
        .group_by(pl.col("country_iso").cast(pl.String))
        .agg(pl.len().alias("parties"))
        .sort("country_iso")
    )
    n_op = max(dev.operator.min_count, round(dev.operator.rate * parties.height)) if countries.height else 0
    k_op = len(OPERATOR_LINK_KINDS)
    ops, u_country = operator_rows(key, n_op, countries, ATTR_LANES + k_op)
    ops, op_links = draw_devices(key, ops, operator_tables(dev, ips), np.zeros(n_op, dtype=np.int64))
    lanes = ATTR_LANES + k_op + 1
    ctx.record_draws(
        "device", (ops["owner_id"].to_numpy(), 1, OPERATOR, 0), draws=lanes, blocks=stream_blocks(lanes),
        value=u_country,
    )  # fmt: skip
    start_col = pl.lit(start) - pl.duration(days=pl.col("age_days"))
    kinds = {i: k for i, k in enumerate(("PARTY", "HOUSEHOLD", "OPERATOR"))}
    keep = ["owner_id", "owner_code", "household_id", "device_type", "os", "country_iso", "n_parties"]
    devices = pl.concat(
        [
            cust.select(*keep, pl.max_horizontal("onboarding_date", start_col).alias("first_seen_date")),
            ops.select(
                *keep[:2],
                pl.lit(None, pl.UInt64).alias("household_id"),
                *keep[3:],
                start_col.alias("first_seen_date"),
            ),
        ],
        how="vertical_relaxed",
    ).with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.UInt64).alias("device_id"),
        pl.col("owner_code")
        .replace_strict(kinds, return_dtype=pl.String)
        .cast(OWNER_KIND)
        .alias("owner_kind"),
        pl.when(pl.col("owner_code") == PARTY).then(pl.col("owner_id")).alias("owner_party_id"),
        pl.col("household_id").alias("home_household"),  # a personal device's HOME is its owner's household
        pl.when(pl.col("owner_code") == HOUSEHOLD).then(pl.col("owner_id")).alias("household_id"),
        pl.col("first_seen_date").cast(pl.Date),
    )
    members = parties.select("household_id", "party_id")
    device_links = (
        pl.concat(
            [
                devices.filter(pl.col("owner_code") == PARTY).select(
                    "device_id", pl.col("owner_id").alias("party_id"), pl.lit("OWNER").alias("link_role")
                ),
                devices.filter(pl.col("owner_code") == HOUSEHOLD)
                .join(members, on="household_id", how="inner")
                .select("device_id", "party_id", pl.lit("HOUSEHOLD_MEMBER").alias("link_role")),
            ]
        )
        .with_columns(pl.col("link_role").cast(LINK_ROLE))
        .sort("device_id", "party_id")
    )
    links = {
        "device_id": np.concatenate(
            [cust_links["row"].to_numpy() + 1, op_links["row"].to_numpy() + 1 + cust.height]
        ).astype(np.uint64),
        "kind": np.concatenate([cust_links["kind"].to_numpy(), op_links["kind"].to_numpy() + k_cust]),
        "usage_weight": np.concatenate(
            [cust_links["usage_weight"].to_numpy(), op_links["usage_weight"].to_numpy()]
        ),
    }
    return devices, device_links, links


def most_per_id(ids: pl.Series) -> int:
    """The largest number of rows sharing one id (ids are small positive integers)."""
    return int(np.bincount(ids.to_numpy().astype(np.int64)).max()) if ids.len() else 0


def check_caps(
    devices: pl.DataFrame,
    device_links: pl.DataFrame,
    ips: pl.DataFrame,
    ip_links: pl.DataFrame,
    dev: Devices,
    pol: Ips,
) -> dict[str, int]:
    """The design's caps, re-counted from the tables (E_6A_CAP_VIOLATION: they hold by construction, so a
    breach is a bug, never data). Returns the maxima."""
    linked = np.bincount(ip_links["device_id"].to_numpy().astype(np.int64), minlength=devices.height + 1)
    customer = (devices["owner_kind"] != "OPERATOR").to_numpy()
    found = {
        "devices_per_party": most_per_id(device_links["party_id"]),
        "parties_per_device": most_per_id(device_links["device_id"]),
        "ips_per_device": int(linked.max()) if linked.size else 0,
        "devices_per_ip": int(ips["n_devices"].max() or 0),
        "customer_devices_without_ip": int((linked[1:][customer] == 0).sum()),
    }
    limits = {
        "devices_per_party": dev.max_devices_per_party,
        "parties_per_device": dev.max_parties_per_device,
        "ips_per_device": pol.max_ips_per_device,
        "devices_per_ip": pol.max_devices_per_ip,
        "customer_devices_without_ip": 0,
    }
    for name, value in found.items():
        if value > limits[name]:
            raise fail("E_6A_CAP_VIOLATION", f"{name} reaches {value}, above {limits[name]}", "devices, ips")
    return found


def link_ips(
    ctx: StateContext,
    devices: pl.DataFrame,
    links: dict[str, np.ndarray],
    terminals: pl.DataFrame,
    iso: pl.DataFrame,
    pol: Ips,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(ips, ip_links sorted by (ip_id, device_id)): each link's country and home household come from its
    device."""
    dev_iso = devices.select(pl.col("country_iso").cast(pl.String)).join(
        iso, on="country_iso", how="left", maintain_order="left"
    )["iso_num"]
    d = links["device_id"].astype(np.int64) - 1
    arrays = {
        "kind": links["kind"],
        "iso_num": dev_iso.to_numpy()[d],
        "household_id": devices["home_household"].fill_null(0).to_numpy()[d],
    }
    ip_type = {k: v.ip_type for k, v in (pol.customer_kinds | pol.operator_kinds).items()}
    kind_ip_code = np.array([IP_TYPES.index(ip_type[k]) for k in LINK_KINDS])
    home, proxy = LINK_KINDS.index("HOME"), LINK_KINDS.index("ANON_PROXY")
    ips, ip_id = assign_ips(ctx, arrays, terminals, iso, kind_ip_code, home, proxy, pol)
    order = np.lexsort((links["device_id"], ip_id))
    ip_links = pl.DataFrame(
        {
            "ip_id": ip_id[order],
            "device_id": links["device_id"][order],
            "link_kind": coded("link_kind", links["kind"][order], LINK_KIND),
            "usage_weight": links["usage_weight"][order].astype(np.float32),
        }
    )
    country = iso.select(pl.col("iso_num").cast(pl.Int64), pl.col("country_iso"))
    ips = ips.join(country, on="iso_num", how="left", maintain_order="left")
    return ips, ip_links


def publish(ctx: StateContext, dataset: str, df: pl.DataFrame, batch: int = 1 << 20) -> None:
    """Write a table through the batched stream: a whole-table publish materialises the identity columns (a
    64-character fingerprint per row), which on the large preset costs gigabytes for ip_links alone."""
    with ctx.stream(dataset) as out:
        for start in range(0, df.height, batch):
            out.write(df.slice(start, batch))


def run(ctx: StateContext) -> None:
    dev: Devices = ctx.policy("6A/devices.yaml")
    pol: Ips = ctx.policy("6A/ips.yaml")
    start = ctx.policy("CFG/horizon.yaml").start().date()
    parties = ctx.read("parties").select(PARTY_COLUMNS).sort("party_id")
    devices, device_links, links = make_devices(ctx, parties, dev, pol, start)
    iso = ctx.sealed_table("ref_countries").select(
        pl.col("iso2").alias("country_iso"), pl.col("iso_num").cast(pl.Int64)
    )
    ips, ip_links = link_ips(ctx, devices, links, ctx.read("terminals"), iso, pol)
    ctx.facts["caps"] = check_caps(devices, device_links, ips, ip_links, dev, pol)
    country = pl.Enum(
        sorted(set(devices["country_iso"].cast(pl.String).unique()) | set(ips["country_iso"].unique()))
    )
    devices = devices.with_columns(pl.col("country_iso").cast(pl.String).cast(country))
    ips = ips.with_columns(pl.col("country_iso").cast(country))
    ctx.facts["devices_by_owner"] = {
        k: int(n) for k, n in devices["owner_kind"].cast(pl.String).value_counts().sort("owner_kind").rows()
    }
    ctx.facts["ips_by_type"] = {
        k: int(n) for k, n in ips["ip_type"].cast(pl.String).value_counts().sort("ip_type").rows()
    }
    ctx.facts["links_by_kind"] = {
        k: int(n) for k, n in ip_links["link_kind"].cast(pl.String).value_counts().sort("link_kind").rows()
    }
    publish(ctx, "devices", devices.select(DEVICE_COLUMNS))
    publish(ctx, "device_links", device_links)
    publish(ctx, "ips", ips.select("ip_id", "ip_type", "asn_class", "asn", "country_iso", "n_devices"))
    publish(ctx, "ip_links", ip_links)
