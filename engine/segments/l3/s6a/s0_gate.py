"""6A.S0 — verify the 1A, 2A, 2B, 3B and 5A flags per seed; seal 6A's policies, the horizon 2A sealed,
ref_countries, ref_currencies, ref_country_macro (credit limits scale with GDP per head) and the upstream
tables 6A reads; prove before any compute that every demand country has a region (E_6A_REGION_UNMAPPED)
and that every cap is at least what its sampler can produce (E_6A_CAP_INCONSISTENT). Mixes summing to 1
are the policy models' own checks (E_POLICY_INVALID)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import polars as pl

from engine.core.errors import EngineError
from engine.core.gates import UPSTREAM as UPSTREAM_FILE
from engine.core.layout import gate_dir
from engine.core.policy import load_policy_file
from engine.core.sealing import check_inputs, check_same_as_upstream, seal_upstream, write_gate
from engine.segments.l3.s6a.common import country_regions, demand_by_country
from engine.segments.l3.s6a.policy import Accounts, Instruments, Population
from engine.segments.l3.s6a.s4_terminals import check_terminals
from engine.segments.l3.s6a.s5_devices_ips import check_devices, check_ips
from engine.segments.l3.s6a.s6_roles import check_roles

STATE = "6A.S0"
UPSTREAM = {
    "1A": ["merchant_catalogue", "outlet_catalogue"],
    "2A": ["site_timezones"],
    "2B": ["s1_site_weights"],
    "3B": ["virtual_classification"],
    "5A": ["merchant_zone_profile"],
}


def fail(code: str, what: str, where: str, fix: str = "") -> EngineError:
    return EngineError(code, what, where=where, fix=fix, state=STATE)


def check_instrument_caps(inst: Instruments, accounts: Accounts) -> None:
    """An account draws one Bernoulli per slot, so len(slots) bounds its instruments; each issuer's BINs must
    fit in its share of its country's block of the scheme's range."""
    for acct, slots in inst.slots.items():
        if len(slots) > inst.max_per_account:
            raise fail(
                "E_6A_CAP_INCONSISTENT",
                f"{acct} has {len(slots)} slots, above max_per_account {inst.max_per_account}",
                f"6A/instruments.yaml slots.{acct}",
                "drop slots or raise max_per_account",
            )
    for scheme in inst.bin_ranges:
        per_issuer = inst.country_block(scheme) // accounts.issuers.max_issuers
        if per_issuer < inst.bins_per_issuer:
            raise fail(
                "E_6A_CAP_INCONSISTENT",
                f"{scheme}'s range leaves {per_issuer} BINs per issuer for {accounts.issuers.max_issuers} "
                f"issuers, below bins_per_issuer {inst.bins_per_issuer}",
                f"6A/instruments.yaml bin_ranges.{scheme}",
                "widen the range or lower bins_per_issuer",
            )


def demand_countries(root: Path, spec: dict[str, Any], seed: int) -> list[str]:
    """The legal countries with baseline demand in this seed's sealed 5A profile."""
    doc = json.loads((gate_dir(root, "6A", spec["manifest_fingerprint"], seed) / UPSTREAM_FILE).read_text())
    path = root / {i["id"]: i for i in doc["inputs"]}["merchant_zone_profile"]["path"]
    profile = pl.read_parquet(path, columns=["legal_country_iso", "weekly_expected"])
    return demand_by_country(profile)["country_iso"].to_list()


def warn_currencies(countries: set[str], currencies: pl.DataFrame, accounts: Accounts) -> None:
    """Demand currencies without a rate state credit limits at 1 unit per USD: listed, never an error."""
    used = currencies.filter(pl.col("iso2").is_in(sorted(countries)))["currency"].unique().sort().to_list()
    missing = [c for c in used if c not in accounts.units_per_usd]
    if missing:
        print(f"WARNING {STATE}: no units_per_usd for {', '.join(missing)}; taken at 1", file=sys.stderr)


def run(root: Path, spec: dict[str, Any]) -> None:
    inputs, paths = check_inputs(root, spec, STATE)
    check_same_as_upstream(root, spec, inputs, "2A", "CFG/horizon.yaml", "E_HORIZON_MISMATCH", STATE)
    pop: Population = load_policy_file("6A", "population", paths["6A/population.yaml"], state=STATE)
    accounts: Accounts = load_policy_file("6A", "accounts", paths["6A/accounts.yaml"], state=STATE)
    inst: Instruments = load_policy_file("6A", "instruments", paths["6A/instruments.yaml"], state=STATE)
    check_instrument_caps(inst, accounts)
    check_roles(load_policy_file("6A", "roles", paths["6A/roles.yaml"], state=STATE))
    devices = load_policy_file("6A", "devices", paths["6A/devices.yaml"], state=STATE)
    check_terminals(load_policy_file("6A", "terminals", paths["6A/terminals.yaml"], state=STATE))
    check_devices(devices, pop)
    check_ips(load_policy_file("6A", "ips", paths["6A/ips.yaml"], state=STATE), devices, pop)
    seal_upstream(root, spec, spec["seeds"], UPSTREAM, STATE)
    ref_countries = pl.read_parquet(paths["ref_countries"])
    countries: set[str] = set()
    for seed in spec["seeds"]:
        demand = demand_countries(root, spec, seed)
        country_regions(demand, ref_countries, pop, STATE)
        countries.update(demand)
    warn_currencies(countries, pl.read_parquet(paths["ref_currencies"]), accounts)
    checks = ["fingerprint", "policies", "references", "horizon", "caps", "regions"]
    write_gate(root, spec, inputs, checks, STATE)
