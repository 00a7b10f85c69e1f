"""The registry of what exists: every segment (its policy models and what its plan seals) and every state.

engine/core names no segment: the plan (engine/core/plan.py), the config's `policy_overrides` check and the
policy validator (engine/core/config.py, engine/core/policy.py) read the segments from here, and the CLI and
state contexts read the states. So adding a segment adds its package under engine/segments/, its shipped
policies under config/policies/<SEG>/, one `SegmentDef` and its `StateDef`s below, and touches no file in
engine/core (tests/core/test_registry.py keeps it so).

The registry lives here, beside the states, rather than in engine/segments/: core may import this module
(it imports nothing heavy and no segment), never a package under engine.segments. A segment's policy models
are named by dotted path and imported on first use, so importing the registry, or engine.core.config, loads
no segment's models until a policy is validated or an override named.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from engine.core.layout import LAYER

if TYPE_CHECKING:
    from pydantic import BaseModel


@dataclass(frozen=True)
class PolicyField:
    """A reference named by a field of a policy the segment seals (1B's population raster is the resolved
    tiles policy's `raster`: its resolution is a preset choice)."""

    seg: str
    name: str
    field: str


@dataclass(frozen=True)
class SegmentDef:
    """One segment of the world plan; SEGMENTS lists them in dependency order (upstream first)."""

    id: str
    # the module whose POLICIES maps each pack shipped as config/policies/<id>/<name>.yaml to its pydantic
    # model (contracts/policies/<id>/<name>.schema.json is generated from it)
    policy_module: str
    # the policy files its S0 seals, as (owning segment, name); "CFG" packs are resolved from the run config
    policies: tuple[tuple[str, str], ...]
    # the references its S0 seals, by reference id (engine/refdata/registry.py) or named by a sealed policy
    references: tuple[str | PolicyField, ...]
    # the segments whose manifest_fingerprints (and flags) it chains to
    upstream: tuple[str, ...] = ()
    # its S0 seals its upstream's data per seed, so its spec lists the run's seeds
    per_seed_upstream: bool = False
    # its identity covers the merchant universe's source (config merchant_universe)
    seals_universe: bool = False
    # it builds partitions per scenario and shard, so its spec lists the run's scenarios and shard count
    # (names of partitions, never values: neither enters the fingerprint)
    per_scenario: bool = False

    def policy_models(self) -> dict[str, type[BaseModel]]:
        """Policy name → pydantic model (imports the segment's policy module on first use)."""
        models: dict[str, type[BaseModel]] = importlib.import_module(self.policy_module).POLICIES
        return models


SEGMENTS: dict[str, SegmentDef] = {
    s.id: s
    for s in (
        SegmentDef(
            "ING",
            "engine.segments.l1.ingress.policy",
            policies=(("ING", "merchant_universe"), ("1A", "sectors"), ("1A", "hurdle_nb")),
            references=("ref_countries", "ref_country_macro", "ref_mcc"),
            seals_universe=True,
        ),
        SegmentDef(
            "1A",
            "engine.segments.l1.s1a.policy",
            policies=(
                ("1A", "sectors"),
                ("1A", "hurdle_nb"),
                ("1A", "crossborder"),
                ("1A", "currency_weights"),
                ("1A", "validation"),
            ),
            references=("ref_countries", "ref_country_macro", "ref_currencies", "ref_mcc"),
            upstream=("ING",),
        ),
        SegmentDef(
            "1B",
            "engine.segments.l1.s1b.policy",
            policies=(("1B", "tiles"), ("1B", "tile_weights"), ("1B", "placement"), ("1B", "validation")),
            references=(
                "ref_country_polygons",
                "ref_countries",
                "ref_cities",
                PolicyField("1B", "tiles", "raster"),
            ),
            upstream=("1A",),
            per_seed_upstream=True,
        ),
        SegmentDef(
            "2A",
            "engine.segments.l1.s2a.policy",
            policies=(
                ("2A", "tz_resolution"),
                ("2A", "tz_overrides"),
                ("CFG", "horizon"),
                ("2A", "validation"),
            ),
            references=("ref_tz_polygons", "ref_tz_country", "ref_tzdb", "ref_countries"),
            upstream=("1A", "1B"),
            per_seed_upstream=True,
        ),
        SegmentDef(
            "2B",
            "engine.segments.l1.s2b.policy",
            policies=(
                ("2B", "site_weights"),
                ("2B", "alias_layout"),
                ("2B", "day_effects"),
                ("2B", "router"),
                ("CFG", "horizon"),
                ("2B", "validation"),
            ),
            references=(),
            upstream=("1B", "2A"),
            per_seed_upstream=True,
        ),
        SegmentDef(
            "3A",
            "engine.segments.l1.s3a.policy",
            policies=(
                ("3A", "zone_escalation"),
                ("3A", "zone_priors"),
                ("2A", "tz_resolution"),
                ("2A", "tz_overrides"),
                ("CFG", "horizon"),
                ("3A", "validation"),
            ),
            references=("ref_tz_polygons", "ref_tz_country", "ref_tzdb", "ref_countries"),
            upstream=("1A", "1B", "2A"),
            per_seed_upstream=True,
        ),
        SegmentDef(
            "3B",
            "engine.segments.l1.s3b.policy",
            policies=(
                ("3B", "virtual_rules"),
                ("3B", "settlement"),
                ("3B", "edges"),
                ("3B", "alias_layout"),
                ("3B", "virtual_routing"),
                ("3B", "validation"),
                ("1A", "sectors"),
                ("2A", "tz_resolution"),
                ("2A", "tz_overrides"),
                ("CFG", "horizon"),
            ),
            references=(
                "ref_cities",
                "ref_country_macro",
                "ref_countries",
                "ref_country_polygons",
                "ref_tz_polygons",
                "ref_tz_country",
            ),
            upstream=("1A", "1B", "2A"),
            per_seed_upstream=True,
        ),
        SegmentDef(
            "5A",
            "engine.segments.l2.s5a.policy",
            policies=(
                ("5A", "merchant_class"),
                ("5A", "demand_scale"),
                ("5A", "shapes"),
                ("5A", "overlays"),
                ("5A", "scenarios/baseline"),
                ("5A", "scenarios/holiday_peak"),
                ("5A", "validation"),
                ("CFG", "horizon"),
            ),
            references=("ref_countries", "ref_holidays"),
            upstream=("1A", "2A", "3A", "3B"),
            per_seed_upstream=True,
            per_scenario=True,
        ),
        SegmentDef(
            "5B",
            "engine.segments.l2.s5b.policy",
            policies=(
                ("5B", "grouping"),
                ("5B", "latent"),
                ("5B", "counts"),
                ("5B", "arrivals"),
                ("5B", "validation"),
                ("5A", "scenarios/baseline"),
                ("5A", "scenarios/holiday_peak"),
                ("2B", "alias_layout"),
                ("CFG", "horizon"),
            ),
            references=(),
            upstream=("1A", "2A", "2B", "3A", "3B", "5A"),
            per_seed_upstream=True,
            per_scenario=True,
        ),
        SegmentDef(
            "6A",
            "engine.segments.l3.s6a.policy",
            policies=(
                ("6A", "world"),
                ("6A", "population"),
                ("6A", "accounts"),
                ("6A", "instruments"),
                ("CFG", "horizon"),
                ("6A", "terminals"),
                ("6A", "devices"),
                ("6A", "ips"),
                ("6A", "roles"),
                ("6A", "validation"),
            ),
            references=("ref_countries", "ref_currencies", "ref_country_macro"),
            upstream=("1A", "2A", "2B", "3B", "5A"),
            per_seed_upstream=True,
        ),
        SegmentDef(
            "6B",
            "engine.segments.l3.s6b.policy",
            policies=(
                ("6B", "channels"),
                ("6B", "attachment"),
                ("6B", "sessions"),
                ("6B", "flows"),
                ("6B", "amounts"),
                ("6B", "campaigns"),
                ("6B", "truth"),
                ("6B", "bank_view"),
                ("6B", "cases"),
                ("6B", "validation"),
                ("CFG", "horizon"),
            ),
            references=("ref_countries", "ref_currencies", "ref_mcc", "ref_country_macro"),
            upstream=("1A", "2A", "2B", "3A", "3B", "5A", "5B", "6A"),
            per_seed_upstream=True,
            per_scenario=True,
        ),
    )
}


@dataclass(frozen=True)
class StateDef:
    id: str
    segment: str
    name: str
    module: str
    per_seed: bool
    kind: str = "state"  # "ingress" and "gate" take a spec; "state" runs in a StateContext
    per_scenario: bool = False  # one run per scenario (layer2_3.md §0.2)
    sharded: bool = False  # one run per (scenario, shard) (layer2_3.md §0.3)

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


def _state(
    seg: str,
    n: int | str,
    name: str,
    *,
    per_seed: bool = True,
    kind: str = "state",
    scenario: bool = False,
    sharded: bool = False,
) -> StateDef:
    """A state of `seg`, its module in engine/segments/l<layer>/s<seg>/<name>.py; `n` is its number (with a
    letter for a pass between two numbered states, e.g. 6B.S5a)."""
    module = f"engine.segments.l{LAYER[seg]}.s{seg.lower()}.{name}"
    return StateDef(f"{seg}.S{n}", seg, name, module, per_seed, kind, scenario or sharded, sharded)


STATES: dict[str, StateDef] = {
    s.id: s
    for s in (
        StateDef(
            "ING",
            "ING",
            "merchant_universe",
            "engine.segments.l1.ingress.merchant_universe",
            False,
            "ingress",
        ),
        _state("1A", 0, "s0_gate", per_seed=False, kind="gate"),
        _state("1A", 1, "s1_hurdle"),
        _state("1A", 2, "s2_nb_outlets"),
        _state("1A", 3, "s3_candidates"),
        _state("1A", 4, "s4_ztp"),
        _state("1A", 5, "s5_currency_weights", per_seed=False),
        _state("1A", 6, "s6_foreign_set"),
        _state("1A", 7, "s7_integerise"),
        _state("1A", 8, "s8_outlet_catalogue"),
        _state("1A", 9, "s9_validation"),
        _state("1B", 0, "s0_gate", per_seed=False, kind="gate"),
        _state("1B", 1, "s1_tile_index", per_seed=False),
        _state("1B", 2, "s2_tile_weights", per_seed=False),
        _state("1B", 3, "s3_requirements"),
        _state("1B", 4, "s4_tile_sampler", per_seed=False),
        _state("1B", 5, "s5_site_tile"),
        _state("1B", 6, "s6_jitter"),
        _state("1B", 7, "s7_synthesis"),
        _state("1B", 8, "s8_site_locations"),
        _state("1B", 9, "s9_validation"),
        _state("2A", 0, "s0_gate", per_seed=False, kind="gate"),
        _state("2A", 1, "s1_tz_lookup"),
        _state("2A", 2, "s2_site_timezones"),
        _state("2A", 3, "s3_tz_cache", per_seed=False),
        _state("2A", 4, "s4_dst_windows", per_seed=False),
        _state("2A", 5, "s5_validation"),
        _state("2B", 0, "s0_gate", per_seed=False, kind="gate"),
        _state("2B", 1, "s1_site_weights"),
        _state("2B", 2, "s2_site_alias"),
        _state("2B", 3, "s3_day_effects"),
        _state("2B", 4, "s4_group_weights"),
        _state("2B", 5, "s5_group_alias"),
        _state("2B", 6, "s6_router_probe"),
        _state("2B", 7, "s7_audit"),
        _state("2B", 8, "s8_validation"),
        _state("3A", 0, "s0_gate", per_seed=False, kind="gate"),
        _state("3A", 1, "s1_escalation"),
        _state("3A", 2, "s2_zone_priors", per_seed=False),
        _state("3A", 3, "s3_zone_shares"),
        _state("3A", 4, "s4_zone_counts"),
        _state("3A", 5, "s5_zone_alloc"),
        _state("3A", 6, "s6_validation"),
        _state("3B", 0, "s0_gate", per_seed=False, kind="gate"),
        _state("3B", 1, "s1_classify_settle"),
        _state("3B", 2, "s2_edges"),
        _state("3B", 3, "s3_edge_alias"),
        _state("3B", 4, "s4_routing_policy"),
        _state("3B", 5, "s5_validation"),
        _state("5A", 0, "s0_gate", per_seed=False, kind="gate"),
        _state("5A", 1, "s1_class_scale"),
        _state("5A", 2, "s2_shapes", per_seed=False),
        _state("5A", 3, "s3_baseline"),
        _state("5A", 4, "s4_scenario", sharded=True),
        _state("5A", 5, "s5_validation"),
        _state("5B", 0, "s0_gate", per_seed=False, kind="gate"),
        _state("5B", 1, "s1_grid_grouping"),
        _state("5B", 2, "s2_latent", scenario=True),
        _state("5B", 3, "s3_counts", sharded=True),
        _state("5B", 4, "s4_arrivals", sharded=True),
        _state("5B", 5, "s5_validation"),
        _state("6A", 0, "s0_gate", per_seed=False, kind="gate"),
        _state("6A", 1, "s1_parties"),
        _state("6A", 2, "s2_accounts"),
        _state("6A", 3, "s3_instruments"),
        _state("6A", 4, "s4_terminals"),
        _state("6A", 5, "s5_devices_ips"),
        _state("6A", 6, "s6_roles"),
        _state("6A", 7, "s7_validation"),
        _state("6B", 0, "s0_gate", per_seed=False, kind="gate"),
        _state("6B", 1, "s1_attach_sessions", sharded=True),
        _state("6B", 2, "s2_flows", sharded=True),
        _state("6B", 3, "s3_campaign_plan", scenario=True),
        _state("6B", 4, "s4_overlay_truth", sharded=True),
        _state("6B", "5a", "s5a_block_candidates", sharded=True),
        _state("6B", "5b", "s5b_card_blocks", scenario=True),
        _state("6B", 5, "s5_bank_events", sharded=True),
        _state("6B", 6, "s6_cases", scenario=True),
        _state("6B", "7a", "s7a_shard_scan", sharded=True),
        _state("6B", 7, "s7_validation"),
    )
}
