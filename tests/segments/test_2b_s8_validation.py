"""2B.S7/S8 on the tiny world: a clean audit, every REQUIRED check passed, every RNG family replayed."""

import json
from pathlib import Path


def test_audit_and_bundle(tiny_world: Path) -> None:
    audit = json.loads(next(tiny_world.glob("data/layer1/2B/s7_audit/seed=42/*/s7_audit.json")).read_text())
    assert audit["failures"] == 0 and {c["id"] for c in audit["checks"]} == {
        "site_tables",
        "p_group",
        "group_tables",
    }
    bundle = next(tiny_world.glob("data/layer1/2B/validation/seed=42/*"))
    assert (bundle / "_passed.flag").is_file()
    checks = {c["id"]: c for c in json.loads((bundle / "checks.json").read_text())}
    assert all(c["status"] != "FAIL" for c in checks.values())
    for family in ("site_profile", "site_noise", "day_effect", "probe"):
        assert checks[f"replay.2B.{family}"]["status"] == "PASS"
    for rid in ("2B.R01", "2B.R02", "2B.R05a", "2B.R09a", "2B.R10"):
        assert checks[rid]["status"] == "PASS"
    rng = json.loads((bundle / "rng_accounting.json").read_text())
    assert rng["recorded"]["2B.probe"]["blocks"] == 1024 * 250  # 1024 probes for each of tiny's 250 merchants
