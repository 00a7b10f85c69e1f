"""3B.S5 on the tiny world: the flag, every RNG family replayed and accounted, the realism checks reported."""

import json
from pathlib import Path

from engine.core.gates import verify_bundle


def test_bundle_passes_with_every_family_replayed(tiny_world: Path) -> None:
    bundle = next(tiny_world.glob("data/layer1/3B/validation/seed=42/*"))
    assert verify_bundle(bundle) == (True, "PASS")
    checks = {c["id"]: c for c in json.loads((bundle / "checks.json").read_text())}
    families = ("hybrid_share", "settlement", "edge_count", "edge_place", "edge_jitter")
    for family in families:
        assert checks[f"replay.3B.{family}"]["status"] == "PASS"
        for q in ("draws", "blocks", "streams", "counter_lo", "counter_hi"):
            assert checks[f"rng.3B.{family}.{q}"]["status"] == "PASS"
    assert checks["rng.families"]["status"] == "PASS" and checks["alias.audit"]["status"] == "PASS"
    realism = json.loads((bundle / "realism.json").read_text())
    assert {f"3B.R{n:02d}" for n in range(1, 11)} <= {k[:6] for k in realism}
    assert all(c["status"] != "FAIL" for c in realism.values() if c["severity"] == "REQUIRED")
    geography = json.loads((bundle / "edge_geography.json").read_text())
    assert abs(sum(geography["edge_share_by_region"].values()) - 1.0) < 1e-6
