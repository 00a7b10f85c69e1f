"""6B.S0 — verify the flags of every upstream segment per seed; seal 6B's policies, the horizon, the
references, 6A's population pack (S1 reshapes 6A's activity weights from its Pareto α) and every upstream
table a 6B state reads; prove before any compute that the campaign catalogue is feasible in this world: each
enabled type finds merchants of the channels it needs and MERCHANT_COLLUSION a COLLUSIVE merchant
(E_6B_CHANNEL_MISSING), every merchant and account currency has an ISO 4217 exponent (E_6B_CURRENCY_MISSING),
and 2A's tz cache reaches past the horizon end by the longest lag that still needs a local time
(E_HORIZON_NOT_COVERED). Mixes, ranks and bands are the policy models' own checks (E_POLICY_INVALID)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import polars as pl

from engine.core.errors import EngineError
from engine.core.gates import SEALED
from engine.core.gates import UPSTREAM as UPSTREAM_FILE
from engine.core.layout import gate_dir
from engine.core.policy import load_policy_file
from engine.core.sealing import check_inputs, check_same_as_upstream, seal_upstream, write_gate
from engine.segments.l2.s5b.upstream import cache_manifest
from engine.segments.l3.s6a.s7_validation import TABLES as SIX_A_TABLES
from engine.segments.l3.s6b.policy import BankView, Campaigns, Channels, Flows

STATE = "6B.S0"
UPSTREAM = {
    "1A": ["merchant_catalogue", "outlet_catalogue"],
    "2A": ["site_timezones", "tz_transitions", "tz_dst_windows"],
    "2B": ["s1_site_weights"],
    "3A": [],  # its flag only: 5A carries its allocation
    "3B": ["virtual_classification", "virtual_settlement", "edge_catalogue"],
    "5A": ["merchant_zone_profile", "scenario_events"],
    "5B": ["arrival_events"],
    "6A": list(SIX_A_TABLES),  # the whole entity world
}
# 6A's population pack, sealed as an upstream policy: S1 reads its activity Pareto α (amendment 8)
UPSTREAM_POLICIES = {"6A": ["6A/population.yaml"]}
# the channels each campaign type's flows use (design §4.2 and amendment 2): the type is feasible only where
# merchants of every one of them have demand in this world
TYPE_CHANNELS: dict[str, tuple[str, ...]] = {
    "CARD_TESTING": ("ECOM",),
    "CNP_STOLEN": ("ECOM",),
    "ACCOUNT_TAKEOVER": ("ECOM", "TRANSFER"),
    "APP_SCAM": ("TRANSFER", "ATM"),
    "BUST_OUT": ("ECOM", "ATM"),
    "LOST_STOLEN": ("POS", "ATM"),
    "COUNTERFEIT": ("POS",),
    "MERCHANT_COLLUSION": ("POS", "ECOM"),
    "REFUND_ABUSE": ("ECOM",),
    "PROMO_ABUSE": ("ECOM",),
}
DAY_S = 86_400.0


def fail(code: str, what: str, where: str, fix: str = "") -> EngineError:
    return EngineError(code, what, where=where, fix=fix, state=STATE)


def channel_expr(channels: Channels) -> pl.Expr:
    """6B channel from a row's channel_group (CP/CNP) and mcc (design §4.1 channels.yaml)."""
    cp = pl.col("channel_group").cast(pl.String) == "CP"
    return (
        pl.when(cp & pl.col("mcc").is_in(channels.atm_mccs))
        .then(pl.lit("ATM"))
        .when(cp)
        .then(pl.lit("POS"))
        .when(pl.col("mcc").is_in(channels.transfer_mccs))
        .then(pl.lit("TRANSFER"))
        .otherwise(pl.lit("ECOM"))
    )


def check_channels(
    profile: pl.DataFrame, roles: pl.DataFrame, channels: Channels, campaigns: Campaigns
) -> None:
    """Every enabled type finds demand at merchants of each channel it needs; collusion a COLLUSIVE
    merchant."""
    present = set(
        profile.filter(pl.col("weekly_expected") > 0).select(channel_expr(channels).alias("c"))["c"].to_list()
    )
    for kind in campaigns.types.enabled():
        missing = [c for c in TYPE_CHANNELS[kind] if c not in present]
        if missing:
            raise fail(
                "E_6B_CHANNEL_MISSING",
                f"{kind} needs {', '.join(missing)} merchants and this world has none with demand",
                f"6B/campaigns.yaml types.{kind}",
                "add merchants of those MCCs to the universe (channels.yaml atm_mccs / transfer_mccs) "
                "or disable the type",
            )
    collusive = roles.filter(pl.col("role").cast(pl.String) == "COLLUSIVE").height
    if "MERCHANT_COLLUSION" in campaigns.types.enabled() and collusive == 0:
        raise fail(
            "E_6B_CHANNEL_MISSING",
            "MERCHANT_COLLUSION needs a COLLUSIVE merchant and 6A's merchant_roles has none",
            "6A merchant_roles",
            "raise 6A roles.yaml's COLLUSIVE cap or disable the type",
        )


def check_currencies(used: set[str], currencies: pl.DataFrame, channels: Channels) -> None:
    """Every currency a flow can carry has an exponent; a missing price scale is 1.0 with a warning."""
    known = set(currencies.filter(pl.col("minor_units").is_not_null())["currency"].to_list())
    missing = sorted(used - known)
    if missing:
        raise fail(
            "E_6B_CURRENCY_MISSING",
            f"no ISO 4217 exponent for {', '.join(missing)}",
            "ref_currencies",
            "rebuild the reference with those currencies",
        )
    unscaled = sorted(used - set(channels.currency_price_scale))
    if unscaled:
        print(
            f"WARNING {STATE}: no currency_price_scale for {', '.join(unscaled)}; taken at 1.0",
            file=sys.stderr,
        )


def longest_local_lag_d(flows: Flows, bank: BankView) -> float:
    """The latest a flow's event still needs a local clock, in days after its authorisation: clearing (next
    cut-off or batch day, late tail, delayed capture) then a refund or reversal; or a detection at the next
    batch hour after its delay."""
    c = flows.clearing
    pos = 1.0 + (c.pos.cutoff_jitter_h + c.pos.after_cutoff_h.clip[1]) / 24.0 + c.pos.late_days.hi
    transfer = 4.0 + (c.transfer.batch_hour + c.transfer.batch_jitter_h) / 24.0  # a Friday night: Tuesday
    clearing = max(pos, c.ecom.delayed_capture_d.clip[1], c.atm_h.clip[1] / 24.0, transfer)
    after = max(
        flows.refunds.return_delay_d.clip[1],
        flows.refunds.cancellation_delay_s.hi / DAY_S,
        flows.reversal.delay_s.clip[1] / DAY_S,
    )
    detection = bank.detection.delay_h.clip[1] / 24.0 + 1.0
    return max(clearing + after, detection)


def check_lag(root: Path, spec: dict[str, Any], seed: int, end: dt.datetime, lag_d: float) -> None:
    doc = cache_manifest(root, spec["upstream"], seed)
    have = dt.datetime.fromisoformat(doc["window_end_utc"])
    need = end + dt.timedelta(days=lag_d)
    if have < need:
        raise fail(
            "E_HORIZON_NOT_COVERED",
            f"the tz cache ends {have:%Y-%m-%d}; 6B's clearing, refund and detection lags need local time "
            f"until {need:%Y-%m-%d} ({lag_d:.1f} d after the horizon end)",
            "2A tz_cache_manifest.json",
            "rebuild 2A with a longer after-margin or shorten the clips of flows.yaml / bank_view.yaml",
        )


def upstream_policies(root: Path, spec: dict[str, Any]) -> list[dict[str, str]]:
    """The upstream packs 6B reads, as the upstream segment sealed them (kind upstream_policy: digest-checked
    on read and by verify; their bytes are already folded into the upstream's fingerprint)."""
    out = []
    for seg, keys in UPSTREAM_POLICIES.items():
        doc = json.loads((gate_dir(root, seg, spec["upstream"][seg]) / SEALED).read_text())
        theirs = {i["id"]: i for i in doc["inputs"]}
        for key in keys:
            if key not in theirs:
                raise fail("E_UNSEALED_READ", f"{seg} did not seal {key}", f"{seg} sealed_inputs.json")
            entry = theirs[key]
            out.append(
                {"id": key, "kind": "upstream_policy", "path": entry["path"], "sha256": entry["sha256"]}
            )
    return out


def sealed_table(root: Path, spec: dict[str, Any], seed: int, name: str, columns: list[str]) -> pl.DataFrame:
    doc = json.loads((gate_dir(root, "6B", spec["manifest_fingerprint"], seed) / UPSTREAM_FILE).read_text())
    paths = [root / i["path"] for i in doc["inputs"] if i["id"] == name or i["id"].startswith(name + "/")]
    return pl.concat([pl.read_parquet(p, columns=columns) for p in paths])


def run(root: Path, spec: dict[str, Any]) -> None:
    inputs, paths = check_inputs(root, spec, STATE)
    for up in ("2A", "5B", "6A"):
        check_same_as_upstream(root, spec, inputs, up, "CFG/horizon.yaml", "E_HORIZON_MISMATCH", STATE)
    horizon = load_policy_file("CFG", "horizon", paths["CFG/horizon.yaml"], state=STATE)
    channels: Channels = load_policy_file("6B", "channels", paths["6B/channels.yaml"], state=STATE)
    campaigns: Campaigns = load_policy_file("6B", "campaigns", paths["6B/campaigns.yaml"], state=STATE)
    flows: Flows = load_policy_file("6B", "flows", paths["6B/flows.yaml"], state=STATE)
    bank: BankView = load_policy_file("6B", "bank_view", paths["6B/bank_view.yaml"], state=STATE)
    inputs += upstream_policies(root, spec)
    seal_upstream(root, spec, spec["seeds"], UPSTREAM, STATE)
    currencies = pl.read_parquet(paths["ref_currencies"])
    lag_d = longest_local_lag_d(flows, bank)
    for seed in spec["seeds"]:
        profile = sealed_table(
            root,
            spec,
            seed,
            "merchant_zone_profile",
            ["merchant_id", "channel_group", "mcc", "weekly_expected"],
        )
        roles = sealed_table(root, spec, seed, "merchant_roles", ["merchant_id", "role"])
        check_channels(profile, roles, channels, campaigns)
        used = set(sealed_table(root, spec, seed, "merchant_catalogue", ["currency"])["currency"].to_list())
        used |= set(sealed_table(root, spec, seed, "accounts", ["currency"])["currency"].cast(pl.String))
        check_currencies(used, currencies, channels)
        check_lag(root, spec, seed, horizon.end(), lag_d)
    checks = ["fingerprint", "policies", "references", "horizon", "channels", "currencies", "cache_lag"]
    write_gate(root, spec, inputs, checks, STATE)
