"""The state registry: `<SEG>.S<n>` → module (engine/segments/…), short name, and whether it is per seed."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class StateDef:
    id: str
    segment: str
    name: str
    module: str
    per_seed: bool
    kind: str = "state"  # "ingress" and "gate" take a spec; "state" runs in a StateContext

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


def _state(seg: str, n: int, name: str, *, per_seed: bool = True, kind: str = "state") -> StateDef:
    package = f"s{seg.lower()}"
    return StateDef(f"{seg}.S{n}", seg, name, f"engine.segments.l1.{package}.{name}", per_seed, kind)


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
    )
}
