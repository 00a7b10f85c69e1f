"""6A.S7 — re-validate the entity world (design layer2_3.md §3.9): contracts and keys of every table, every
foreign key, every cap re-counted from the rows, the role invariants (one role per entity, caps, organisers,
quantile tiers), RNG accounting with plain-Python replays of 6A.risk and 6A.role, and the realism bands
6A.R01–R11; then summary.json, the bundle and its flag."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from engine.core.policy_model import Validation
from engine.core.rng import SampleRule
from engine.core.state import StateContext
from engine.core.validation import (
    CheckBook,
    PhiloxBlocks,
    Replay,
    apply_checks,
    check_schema_streamed,
    finish_segment,
    run_replays,
    state_reports,
)
from engine.segments.l3.s6a import audit, links, replay
from engine.segments.l3.s6a import rng_accounting as acct
from engine.segments.l3.s6a.common import demand_by_country
from engine.segments.l3.s6a.policy import (
    Accounts,
    Devices,
    Instruments,
    Ips,
    Population,
    Roles,
    Terminals,
    World,
)

PRODUCERS = ["6A.S1", "6A.S2", "6A.S3", "6A.S4", "6A.S5", "6A.S6"]
TABLES = (
    "parties",
    "accounts",
    "issuers",
    "instruments",
    "terminals",
    "devices",
    "device_links",
    "ips",
    "ip_links",
    "party_roles",
    "account_roles",
    "device_roles",
    "ip_roles",
    "merchant_roles",
)
# the columns kept after the schema check (the rest are the contract's alone; a table not listed keeps all)
KEEP = {
    "accounts": ["account_id", "party_id", "account_type", "issuer_id", "issuer_country"],
    "instruments": ["account_id", "party_id", "instrument_type", "scheme", "issue_date", "expiry_month"],
    "terminals": ["merchant_id", "site_id", "terminal_type", "site_ip_id"],
    "devices": ["device_id", "owner_kind", "owner_party_id", "household_id", "device_type", "n_parties"],
    "device_links": ["device_id", "party_id"],
    "ips": ["ip_id", "ip_type", "country_iso", "n_devices"],
    "ip_links": ["ip_id", "device_id", "link_kind"],
}
CARD_TYPES = ("DEBIT_PHYSICAL", "DEBIT_VIRTUAL", "CREDIT_PHYSICAL", "CREDIT_VIRTUAL")
PHYSICAL_CARDS = ("DEBIT_PHYSICAL", "CREDIT_PHYSICAL")
MIN_REGION_PARTIES = 2000  # R04: a region's type/segment JSD is measured from this many parties on
MIN_REGION_CARDS = 1000  # R09b: a region's scheme shares from this many cards on
MIN_REGION_LINKS = 2000  # R06a: a region's link-kind shares from this many customer links on


class Findings:
    """Structural checks counting offending rows: each is REQUIRED, and cap findings add up to 6A.R01."""

    def __init__(self, book: CheckBook) -> None:
        self.book = book
        self.cap_total = 0

    def count(self, check_id: str, n: int, what: str, code: str, *, cap: bool = False) -> None:
        self.book.structural(check_id, n == 0, f"{n} {what}", code)
        if cap:
            self.cap_total += n


def foreign_keys(
    f: Findings, t: dict[str, pl.DataFrame], countries: pl.DataFrame, sites: pl.DataFrame
) -> None:
    """Every reference joins (E_6A_ORPHAN), and denormalised copies agree with what they copy."""
    fk = [
        ("parties.country_iso", t["parties"], "country_iso", countries, "iso2"),
        ("accounts.party_id", t["accounts"], "party_id", t["parties"], "party_id"),
        ("accounts.issuer_id", t["accounts"], "issuer_id", t["issuers"], "issuer_id"),
        ("instruments.account_id", t["instruments"], "account_id", t["accounts"], "account_id"),
        ("devices.owner_party_id", t["devices"], "owner_party_id", t["parties"], "party_id"),
        ("device_links.device_id", t["device_links"], "device_id", t["devices"], "device_id"),
        ("device_links.party_id", t["device_links"], "party_id", t["parties"], "party_id"),
        ("ip_links.ip_id", t["ip_links"], "ip_id", t["ips"], "ip_id"),
        ("ip_links.device_id", t["ip_links"], "device_id", t["devices"], "device_id"),
        ("terminals.site_id", t["terminals"], "site_id", sites, "site_id"),
        ("terminals.site_ip_id", t["terminals"], "site_ip_id", t["ips"], "ip_id"),
    ]
    for name, child, col, parent, pcol in fk:
        f.count(
            f"fk.{name}", audit.orphans(child, col, parent, pcol), f"{name} values join no row", "E_6A_ORPHAN"
        )
    copies = [
        (
            "instruments.party_id",
            t["instruments"].select("account_id", "party_id"),
            t["accounts"].select("account_id", "party_id"),
            "account_id",
        ),
        (
            "accounts.issuer_country",
            t["accounts"].select("party_id", pl.col("issuer_country").alias("country_iso")),
            t["parties"].select("party_id", "country_iso"),
            "party_id",
        ),
        (
            "accounts.issuer",
            t["accounts"].select("issuer_id", pl.col("issuer_country").alias("country_iso")),
            t["issuers"].select("issuer_id", "country_iso"),
            "issuer_id",
        ),
        (
            "terminals.merchant_id",
            t["terminals"].select("site_id", "merchant_id"),
            sites.select("site_id", "merchant_id"),
            "site_id",
        ),
    ]
    for name, child, parent, key in copies:
        value = next(c for c in child.columns if c != key)
        j = audit.cast_keys(child, [value]).join(
            audit.cast_keys(parent, [value]).unique(key), on=key, how="inner", suffix="_p"
        )
        f.count(
            f"fk.{name}",
            j.filter(pl.col(value) != pl.col(f"{value}_p")).height,
            "rows disagree",
            "E_6A_ORPHAN",
        )


def caps(
    f: Findings,
    t: dict[str, pl.DataFrame],
    accounts: Accounts,
    inst: Instruments,
    dev: Devices,
    ips: Ips,
    term: Terminals,
) -> None:
    """Every cap of S2–S5 re-counted from the rows (E_6A_CAP_VIOLATION; each adds to 6A.R01)."""
    kmax = pl.DataFrame(
        [
            {"party_type": p, "account_type": a, "k_max": prod.k_max}
            for p, by_type in accounts.products.items()
            for a, prod in by_type.items()
        ]
    )
    per_type = (
        audit.cast_keys(t["accounts"], ["account_type"])
        .join(audit.cast_keys(t["parties"].select("party_id", "party_type"), ["party_type"]), on="party_id")
        .group_by("party_id", "party_type", "account_type")
        .agg(pl.len().alias("n"))
        .join(kmax, on=["party_type", "account_type"], how="left")
    )
    f.count(
        "cap.accounts_per_type",
        per_type.filter(pl.col("k_max").is_null() | (pl.col("n") > pl.col("k_max"))).height,
        "(party, account type) pairs above k_max",
        "E_6A_CAP_VIOLATION",
        cap=True,
    )
    current = t["accounts"].filter(pl.col("account_type").cast(pl.String) == "CURRENT")
    f.count(
        "cap.current_account",
        t["parties"].join(current, on="party_id", how="anti").height,
        "parties without a CURRENT account",
        "E_6A_CAP_VIOLATION",
        cap=True,
    )
    counted = [
        ("instruments_per_account", t["instruments"], ["account_id"], inst.max_per_account),
        ("devices_per_party", t["device_links"], ["party_id"], dev.max_devices_per_party),
        ("parties_per_device", t["device_links"], ["device_id"], dev.max_parties_per_device),
        ("ips_per_device", t["ip_links"], ["device_id"], ips.max_ips_per_device),
        ("devices_per_ip", t["ip_links"], ["ip_id"], ips.max_devices_per_ip),
    ]
    for name, df, key, cap in counted:
        f.count(
            f"cap.{name}",
            audit.per_key_over(df, key, cap),
            f"{key[0]}s above {cap}",
            "E_6A_CAP_VIOLATION",
            cap=True,
        )
    site_cap = pl.when(pl.col("terminal_type") == "ATM").then(term.atm.cap).otherwise(term.pos.cap)
    f.count(
        "cap.terminals_per_site",
        audit.per_key_over(
            audit.cast_keys(t["terminals"], ["terminal_type"]), ["site_id", "terminal_type"], site_cap
        ),
        "sites above their terminal cap",
        "E_6A_CAP_VIOLATION",
        cap=True,
    )
    for table, key, column, linked in (
        ("devices", "device_id", "n_parties", "device_links"),
        ("ips", "ip_id", "n_devices", "ip_links"),
    ):
        f.count(
            f"counts.{table}.{column}",
            audit.mismatched_counts(t[table], key, column, t[linked]),
            f"{table} whose {column} is not their link count",
            "E_6A_CAP_VIOLATION",
            cap=True,
        )


def role_invariants(
    f: Findings, t: dict[str, pl.DataFrame], merchants: pl.DataFrame, pol: Roles
) -> dict[str, int]:
    """One role per entity, role caps (E_6A_ROLE_CAP), organisers and quantile tiers; returns role counts."""
    pairs = [
        ("party_roles", "parties", "party_id"),
        ("account_roles", "accounts", "account_id"),
        ("device_roles", "devices", "device_id"),
        ("ip_roles", "ips", "ip_id"),
    ]
    for roles, entities, key in pairs:
        f.count(
            f"roles.{roles}",
            audit.one_role_each(t[roles], t[entities], key),
            "entities without exactly one role",
            "E_6A_ORPHAN",
        )
    f.count(
        "roles.merchant_roles",
        audit.one_role_each(t["merchant_roles"], merchants, "merchant_id"),
        "merchants without exactly one role",
        "E_6A_ORPHAN",
    )
    n = t["parties"].height
    counts = dict(t["party_roles"]["role"].cast(pl.String).value_counts().iter_rows())
    for role, share in pol.caps.items():
        cap = math.floor(share * n + 1e-9)
        f.count(
            f"cap.role.{role}",
            max(0, counts.get(role, 0) - cap),
            f"{role} holders above ⌊{share}·N⌋ = {cap}",
            "E_6A_ROLE_CAP",
            cap=True,
        )
    m = pol.merchants
    collusive = int((t["merchant_roles"]["role"].cast(pl.String) == "COLLUSIVE").sum())
    m_cap = max(1, math.floor(m.collusive_cap * merchants.height + 1e-9))
    f.count(
        "cap.role.COLLUSIVE",
        max(0, collusive - m_cap),
        f"COLLUSIVE merchants above {m_cap}",
        "E_6A_ROLE_CAP",
        cap=True,
    )
    high = merchants.select("merchant_id", pl.col("mcc").is_in(m.high_risk_mccs).alias("listed")).join(
        t["merchant_roles"].select("merchant_id", pl.col("role").cast(pl.String)), on="merchant_id"
    )
    f.count(
        "roles.high_risk_mcc",
        high.filter(
            (pl.col("role") != "COLLUSIVE") & ((pl.col("role") == "HIGH_RISK_MCC") != pl.col("listed"))
        ).height,
        "merchants whose HIGH_RISK_MCC role disagrees with the MCC list",
        "E_6A_ROLE_CAP",
    )
    for name, n_bad in audit.organiser_findings(
        t["party_roles"], t["parties"], pol.max_mules_per_organiser
    ).items():
        f.count(f"organisers.{name}", n_bad, "parties", "E_6A_ROLE_CAP", cap=name == "organiser_over_load")
    scored = t["party_roles"].join(t["parties"].select("party_id", "party_type"), on="party_id")
    for name, score, tier in (
        ("party_roles", "risk_score", "risk_tier"),
        ("party_kyc", "kyc_score", "kyc_risk_tier"),
    ):
        tiers = audit.quantile_tiers(
            scored.select(
                pl.col(score).alias("score"),
                pl.col("party_id").alias("id"),
                pl.col("party_type").cast(pl.String).alias("group"),
            ),
            pol.tier_cutoffs,
        )
        f.count(
            f"tiers.{name}",
            int((tiers != scored[tier].to_physical().cast(pl.Int64)).sum()),
            "tiers off their score quantile",
            "E_6A_ROLE_CAP",
        )
    mr = t["merchant_roles"]
    mt = audit.quantile_tiers(
        mr.select(
            pl.col("risk_score").alias("score"), pl.col("merchant_id").alias("id"), pl.lit(0).alias("group")
        ),
        pol.tier_cutoffs,
    )
    f.count(
        "tiers.merchant_roles",
        int((mt != mr["risk_tier"].to_physical().cast(pl.Int64)).sum()),
        "tiers off their score quantile",
        "E_6A_ROLE_CAP",
    )
    top = mr.sort(pl.col("risk_score"), pl.col("merchant_id"), descending=[True, False]).head(collusive)
    f.count(
        "roles.collusive_top_scores",
        int((top["role"].cast(pl.String) != "COLLUSIVE").sum()),
        "COLLUSIVE merchants outside the top scores",
        "E_6A_ROLE_CAP",
    )
    return counts


def region_mix_jsd(parties: pl.DataFrame, pop: Population) -> tuple[float, int]:
    """6A.R04: the largest JSD, over regions of at least MIN_REGION_PARTIES parties, between the published
    (type, segment) counts and the policy's type × segment mix."""
    counts = parties.group_by(pl.col("region").cast(pl.String), pl.col("segment").cast(pl.String)).agg(
        pl.len().alias("n")
    )
    worst, support = float("nan"), 0
    for (region,), g in counts.group_by(["region"], maintain_order=True):
        total = int(g["n"].sum())
        if total < MIN_REGION_PARTIES or region not in pop.type_mix:
            continue
        want = {
            seg: pop.type_mix[region].get(ptype, 0.0) * share
            for ptype, mix in pop.segment_mix[region].items()
            for seg, share in mix.items()
        }
        have = dict(g.select("segment", "n").iter_rows())
        segs = sorted(set(want) | set(have))
        d = audit.jsd(
            np.array([have.get(s, 0) for s in segs], float), np.array([want.get(s, 0.0) for s in segs])
        )
        worst = d if math.isnan(worst) else max(worst, d)
        support += total
    return worst, support


def scheme_gap(t: dict[str, pl.DataFrame], inst: Instruments) -> tuple[float, int]:
    """6A.R09b: the largest |published − policy| scheme share of physical cards, over regions with at least
    MIN_REGION_CARDS cards (the card's region is its holder's)."""
    cards = t["instruments"].filter(pl.col("instrument_type").cast(pl.String).is_in(PHYSICAL_CARDS))
    by = (
        cards.join(t["parties"].select("party_id", "region"), on="party_id")
        .group_by(pl.col("region").cast(pl.String), pl.col("scheme").cast(pl.String))
        .agg(pl.len().alias("n"))
    )
    worst, support = float("nan"), 0
    for (region,), g in by.group_by(["region"], maintain_order=True):
        total = int(g["n"].sum())
        if total < MIN_REGION_CARDS:
            continue
        have = {s: n / total for s, n in g.select("scheme", "n").iter_rows()}
        want = inst.schemes[region]
        gap = max(abs(have.get(s, 0.0) - want.get(s, 0.0)) for s in set(have) | set(want))
        worst = gap if math.isnan(worst) else max(worst, gap)
        support += total
    return worst, support


def odds_ratios(t: dict[str, pl.DataFrame]) -> dict[str, tuple[float, int]]:
    """6A.R08: P(risky account | risky owner) and P(risky device | linked to a risky party) as odds ratios
    (operator devices, which have no party, are left out)."""
    risky_party = t["party_roles"].select(
        "party_id", (pl.col("role").cast(pl.String) != "CLEAN").alias("exposed")
    )
    acc = (
        t["account_roles"]
        .join(t["accounts"].select("account_id", "party_id"), on="account_id")
        .join(risky_party, on="party_id")
    )
    dev_exposed = (
        t["device_links"].join(risky_party, on="party_id").group_by("device_id").agg(pl.col("exposed").any())
    )
    dev = t["device_roles"].join(dev_exposed, on="device_id")
    return {
        "account_odds_ratio": audit.odds_ratio(
            acc["exposed"].to_numpy(), (acc["role"].cast(pl.String) != "CLEAN").to_numpy()
        ),
        "device_odds_ratio": audit.odds_ratio(
            dev["exposed"].to_numpy(), (dev["role"].cast(pl.String) != "CLEAN").to_numpy()
        ),
    }


def valid_cards(t: dict[str, pl.DataFrame], start: Any) -> tuple[float, int]:
    """6A.R09a: cards issued by the horizon start whose expiry month has not ended before it."""
    cards = t["instruments"].filter(pl.col("instrument_type").cast(pl.String).is_in(CARD_TYPES))
    month = pl.date(start.year, start.month, 1)
    ok = cards.filter((pl.col("issue_date") <= pl.lit(start)) & (pl.col("expiry_month") >= month)).height
    return (ok / cards.height if cards.height else float("nan")), cards.height


def realism(
    t: dict[str, pl.DataFrame],
    merchants: pl.DataFrame,
    pols: dict[str, Any],
    cap_total: int,
    counts: dict[str, int],
    world: tuple[float, int],
    link_gap: tuple[float, int],
    start: Any,
) -> dict[str, tuple[float, int]]:
    """6A.R01–R11 as (value, support)."""
    pop: Population = pols["population"]
    roles: Roles = pols["roles"]
    parties = t["parties"]
    n = parties.height
    ref_region = pols["region_of"]
    mapped = parties.select(
        pl.col("subregion").cast(pl.String).replace_strict(pop.region_map, default=None).alias("want"),
        pl.col("region").cast(pl.String),
        pl.col("country_iso").cast(pl.String).replace_strict(ref_region, default=None).alias("sub"),
        pl.col("subregion").cast(pl.String),
    )
    region_ok = int(
        ((mapped["want"] == mapped["region"]) & (mapped["sub"] == mapped["subregion"])).fill_null(False).sum()
    )
    cards = t["instruments"].filter(pl.col("instrument_type").cast(pl.String).is_in(CARD_TYPES))
    card_holders = cards["party_id"].n_unique()
    linked = t["device_links"]["party_id"].n_unique()
    customer = t["devices"].filter(pl.col("owner_kind").cast(pl.String) != "OPERATOR")
    with_ip = customer.join(t["ip_links"].select("device_id").unique(), on="device_id").height
    per_ip = t["ips"].filter(pl.col("n_devices") > 0)["n_devices"].cast(pl.Float64).to_numpy()
    non_clean = n - counts.get("CLEAN", 0)
    over = [counts.get(r, 0) / max(math.floor(s * n + 1e-9), 1) for r, s in roles.caps.items()]
    collusive = int((t["merchant_roles"]["role"].cast(pl.String) == "COLLUSIVE").sum())
    households = parties.filter(pl.col("party_type").cast(pl.String) == "RETAIL").unique("household_id")
    kinds = t["devices"]["owner_kind"].cast(pl.String)
    return {
        "cap_violations": (float(cap_total), n),
        "region_mapped_share": (region_ok / n if n else float("nan"), n),
        "world_size_ok": world,
        "max_mix_jsd": region_mix_jsd(parties, pop),
        "card_capable_share": (card_holders / n if n else float("nan"), n),
        "device_coverage": (linked / n if n else float("nan"), n),
        "ip_coverage": (with_ip / customer.height if customer.height else float("nan"), customer.height),
        "max_link_kind_gap": link_gap,
        "devices_per_ip_p99": (
            float(np.quantile(per_ip, 0.99)) if per_ip.size else float("nan"),
            per_ip.size,
        ),
        "non_clean_share": (non_clean / n if n else float("nan"), n),
        "max_role_share_over_cap": (max(over), n),
        "collusive_merchants": (float(collusive), 1 if roles.merchants.collusive_enabled else 0),
        **odds_ratios(t),
        "valid_card_share": valid_cards(t, start),
        "max_scheme_gap": scheme_gap(t, pols["instruments"]),
        "top1pct_activity_share": (
            audit.top_share(parties["activity_weight"].cast(pl.Float64).to_numpy(), 0.01),
            n,
        ),
        "retail_mean_household_size": (
            float(households["household_size"].cast(pl.Float64).mean())
            if households.height
            else float("nan"),
            households.height,
        ),
        "shared_device_share": (
            float((kinds == "HOUSEHOLD").mean()) if kinds.len() else float("nan"),
            kinds.len(),
        ),
    }


def demand_countries(profile: pl.DataFrame, countries: pl.DataFrame) -> pl.DataFrame:
    """country_iso, iso_num, weekly: Σ baseline weekly_expected per legal country with demand, sorted (as
    6A.S1 sums it)."""
    iso = countries.select(pl.col("iso2").alias("country_iso"), "iso_num")
    return demand_by_country(profile).join(iso, on="country_iso", how="left", maintain_order="left")


def world_size(parties: pl.DataFrame, demand: pl.DataFrame, world: World, m: float) -> tuple[float, int]:
    """6A.R03 (1 = holds): N = max(⌊W/(f·a)·m + ½⌋, Σ floors) with m (replayed) in size_clip, the party
    countries are exactly the demand countries, and each holds at least its floor."""
    n = parties.height
    weekly = demand["weekly"].to_numpy()
    n_raw = math.floor(
        float(weekly.sum()) / (world.flows_per_active_party_week * world.active_fraction) * m + 0.5
    )
    floor = max(world.min_parties_per_country, math.ceil(world.min_country_share * n_raw))
    per = parties.group_by(pl.col("country_iso").cast(pl.String)).agg(pl.len().alias("n"))
    same = set(per["country_iso"].to_list()) == set(demand["country_iso"].to_list())
    lo, hi = world.size_clip
    ok = same and bool((per["n"] >= floor).all()) and lo <= m <= hi and n == max(n_raw, floor * demand.height)
    return float(ok), n


def shares(series: pl.Series) -> dict[str, float]:
    counts = series.cast(pl.String).value_counts().sort(series.name)
    total = counts["count"].sum() or 1
    return {k: round(v / total, 9) for k, v in counts.iter_rows()}


def summary(t: dict[str, pl.DataFrame], metrics: dict[str, tuple[float, int]]) -> dict[str, Any]:
    """Key figures 6B may read as sealed evidence: entity counts, role shares, per-region mixes."""
    by_region = t["parties"].join(t["party_roles"].select("party_id", "role"), on="party_id")
    regions = {}
    for (region,), g in by_region.group_by([pl.col("region").cast(pl.String)], maintain_order=True):
        regions[region] = {
            "parties": g.height,
            "party_type": shares(g["party_type"]),
            "segment": shares(g["segment"]),
            "role": shares(g["role"]),
        }
    return {
        "entities": {name: df.height for name, df in t.items() if not name.endswith("_roles")},
        "roles": {name: shares(t[name]["role"]) for name in t if name.endswith("_roles")},
        "regions": dict(sorted(regions.items())),
        "metrics": {
            k: [None if isinstance(v, float) and math.isnan(v) else v, s] for k, (v, s) in metrics.items()
        },
    }


def replays(t: dict[str, pl.DataFrame], merchants: pl.DataFrame, pol: Roles, start: Any) -> list[Replay]:
    """6A.risk and 6A.role as replay.py re-derives them, from the published tables."""
    cards = (
        t["accounts"]
        .group_by("party_id")
        .agg((pl.col("account_type").cast(pl.String) == "CREDIT_CARD").sum().alias("credit_cards"))
    )
    parties = t["parties"].join(cards, on="party_id", how="left").join(t["party_roles"], on="party_id")
    m = merchants.select(
        "merchant_id",
        pl.col("mcc").is_in(pol.merchants.high_risk_mccs).alias("high_risk"),
        (pl.col("channel").cast(pl.String) == "card_not_present").alias("cnp"),
    ).join(t["merchant_roles"], on="merchant_id")
    owner = t["party_roles"].select("party_id", pl.col("role").alias("owner_role"))
    accounts = t["accounts"].join(owner, on="party_id", how="left").join(t["account_roles"], on="account_id")
    accounts = accounts.with_columns(
        (pl.col("account_type").cast(pl.String) == "CURRENT").alias("is_current")
    )
    risky = (
        t["device_links"]
        .join(t["party_roles"].select("party_id", "role"), on="party_id")
        .group_by("device_id")
        .agg((pl.col("role").cast(pl.String) != "CLEAN").any().alias("risky_link"))
    )
    devices = t["devices"].join(risky, on="device_id", how="left").join(t["device_roles"], on="device_id")
    devices = devices.with_columns(
        (pl.col("owner_kind").cast(pl.String) == "OPERATOR").alias("operator"),
        pl.col("risky_link").fill_null(False),
    )
    return [
        replay.risk(parties.with_columns(pl.col("credit_cards").fill_null(0)), m, pol, start),
        replay.role(parties, accounts, devices, pol),
    ]


def run(ctx: StateContext) -> None:
    val: Validation = ctx.policy("6A/validation.yaml")
    names = ("world", "population", "accounts", "instruments", "terminals", "devices", "ips", "roles")
    pols: dict[str, Any] = {name: ctx.policy(f"6A/{name}.yaml") for name in names}
    start = ctx.policy("CFG/horizon.yaml").start().date()
    book = CheckBook()
    t: dict[str, pl.DataFrame] = {}
    for name in TABLES:  # checked batch by batch, then only the columns the checks below read are loaded
        paths = ctx.part_files(name)
        check_schema_streamed(ctx, book, name, paths)
        columns = KEEP.get(name) or pq.read_schema(paths[0]).names[2:]
        t[name] = pl.concat([pl.read_parquet(p, columns=columns) for p in paths])
    merchants = ctx.sealed_table("merchant_catalogue").sort("merchant_id")
    countries = ctx.sealed_table("ref_countries")
    pols["region_of"] = dict(countries.select("iso2", "subregion").iter_rows())
    pols["iso_num"] = dict(countries.select("iso2", pl.col("iso_num").cast(pl.Int64)).iter_rows())
    f = Findings(book)
    foreign_keys(f, t, countries, ctx.sealed_table("site_timezones"))
    caps(f, t, pols["accounts"], pols["instruments"], pols["devices"], pols["ips"], pols["terminals"])
    counts = role_invariants(f, t, merchants, pols["roles"])

    reports, recorded = state_reports(ctx, PRODUCERS)
    demand = demand_countries(ctx.sealed_table("merchant_zone_profile"), countries)
    published = t["parties"].group_by(pl.col("country_iso").cast(pl.String)).agg(pl.len().alias("n"))
    specs = [*replays(t, merchants, pols["roles"], start), replay.world(demand, published, pols["world"])]
    mine = {r.family for r in specs}
    expected = run_replays(
        ctx,
        book,
        specs,
        {k: v for k, v in recorded.items() if k in mine},
        code="E_6A_REPLAY",
        rule=SampleRule.of(val.replay_sample),
    )
    expected |= acct.check(book, recorded, mine, t, pols)
    m = replay.size_noise(PhiloxBlocks(ctx.family_key("world")), pols["world"])
    world = world_size(t["parties"], demand, pols["world"], m)
    link_gap = links.kind_gap(t, pols["ips"], MIN_REGION_LINKS)
    metrics = realism(t, merchants, pols, f.cap_total, counts, world, link_gap, start)
    apply_checks(book, val, metrics)
    finish_segment(
        ctx,
        book,
        {
            "rng_accounting": {"recorded": recorded, "expected": expected},
            "state_reports": reports,
            "extra": {"summary": summary(t, metrics)},
        },
    )
