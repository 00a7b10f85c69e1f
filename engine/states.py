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


def _s1a(n: int, name: str, *, per_seed: bool = True, kind: str = "state") -> StateDef:
    return StateDef(f"1A.S{n}", "1A", name, f"engine.segments.l1.s1a.{name}", per_seed, kind)


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
        _s1a(0, "s0_gate", per_seed=False, kind="gate"),
        _s1a(1, "s1_hurdle"),
        _s1a(2, "s2_nb_outlets"),
        _s1a(3, "s3_candidates"),
        _s1a(4, "s4_ztp"),
        _s1a(5, "s5_currency_weights", per_seed=False),
        _s1a(6, "s6_foreign_set"),
        _s1a(7, "s7_integerise"),
        _s1a(8, "s8_outlet_catalogue"),
        _s1a(9, "s9_validation"),
    )
}
