"""5B.S0's coverage checks on hand-made indexes (layer2_3 §2.2): 2B's day grid, a route for every cell,
3B's edge universe. Nothing is repaired: each gap is its own error."""

from __future__ import annotations

import polars as pl
import pytest

from engine.core.canonical import hash_parts
from engine.core.errors import EngineError
from engine.segments.l2.s5b.s0_gate import UNIVERSE_PARTS, check_day_grid, check_edge_universe, check_routes

PROFILE = pl.DataFrame(
    {
        "merchant_id": [1, 1, 2, 2],
        "channel_group": ["CP", "CP", "CP", "CNP"],
        "virtual_mode": ["PHYSICAL", "PHYSICAL", "HYBRID", "HYBRID"],
        "zone_code": [826 << 16 | 5, 826 << 16 | 9, 250 << 16 | 7, 250 << 16 | 7],
    }
)
SITES = {
    "slices": [
        {"merchant_id": 1, "tz_index": 5},
        {"merchant_id": 1, "tz_index": 9},
        {"merchant_id": 2, "tz_index": 7},
    ]
}
EDGES = {"slices": [{"merchant_id": 2}]}


def test_day_grid_must_hold_every_horizon_day() -> None:
    index = {"merchants": [{"merchant_id": 1, "days": 14}, {"merchant_id": 2, "days": 13}]}
    check_day_grid(index, {1}, 14)
    with pytest.raises(EngineError) as info:
        check_day_grid(index, {1, 2}, 14)
    assert info.value.code == "E_5B_DAY_GRID_GAP" and "13 days" in info.value.what
    with pytest.raises(EngineError):
        check_day_grid(index, {3}, 1)  # a merchant 2B has no table for


def test_every_cell_needs_a_site_slice_or_an_edge_slice() -> None:
    check_routes(PROFILE, SITES, EDGES)
    with pytest.raises(EngineError) as info:
        check_routes(PROFILE, {"slices": SITES["slices"][:1] + SITES["slices"][2:]}, EDGES)
    assert info.value.code == "E_5B_ROUTE_MISSING" and "tz_index 9" in info.value.what
    with pytest.raises(EngineError) as info:
        check_routes(PROFILE, SITES, {"slices": []})
    assert "edge slice" in info.value.what
    # a PHYSICAL merchant's CNP cell bills from its sites: no edge needed
    mail_order = PROFILE.with_columns(pl.lit("PHYSICAL").alias("virtual_mode"))
    check_routes(mail_order, SITES, {"slices": []})


def test_edge_universe_must_recompute_and_bind_the_sealed_tables() -> None:
    digests = {p: f"{i:064x}" for i, p in enumerate(UNIVERSE_PARTS)}
    universe = {"parameter_hash": "ab" * 32, "sha256": digests}
    universe["universe_hash"] = hash_parts("ab" * 32, *digests.values()).hex()
    seal = {
        "edge_catalogue": {"sha256": digests["edge_catalogue"]},
        "virtual_settlement": {"sha256": digests["virtual_settlement"]},
    }
    check_edge_universe(universe, seal, digests["edge_alias_index"])
    with pytest.raises(EngineError):
        check_edge_universe({**universe, "universe_hash": "0" * 64}, seal, digests["edge_alias_index"])
    with pytest.raises(EngineError):
        check_edge_universe(universe, seal, "f" * 64)  # another index than the one vouched for
