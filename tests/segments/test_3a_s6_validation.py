"""3A.S6: the bundle passes with every check present; its re-derivations and the realism metrics by hand."""

import json
from pathlib import Path

import polars as pl

from engine.core.validation import CheckBook
from engine.segments.l1.s3a.s6_validation import check_counts, country_tv, first_rules, remainder_counts
from tests.conftest import shipped_policy


def test_bundle_passes_with_every_check(tiny_world: Path) -> None:
    bundle = next(tiny_world.glob("data/layer1/3A/validation/seed=42/*"))
    assert (bundle / "_passed.flag").is_file()
    checks = {c["id"]: c for c in json.loads((bundle / "checks.json").read_text())}
    assert {f"3A.R0{i}" for i in range(1, 9)} <= set(checks)
    # Tiny's one miss is a WARN sample effect, pinned so it cannot hide another: of its 14 multi-zone pairs 11
    # are FORCED and all 3 DEFAULT pairs drew escalation (theta_mix .5, a 1-in-8 outcome, replayed by
    # replay.3A.escalate), so 3A.R07's escalated share is 14/14, above the band's 0.95.
    assert {c["id"] for c in checks.values() if c["status"] == "FAIL"} == {"3A.R07"}
    assert (checks["3A.R07"]["severity"], checks["3A.R07"]["value"], checks["3A.R07"]["support"]) == (
        "WARN",
        1.0,
        14,
    )
    pairs = pl.read_parquet(next(tiny_world.glob("data/layer1/3A/s1_pairs/**/*.parquet")))
    multi = pairs.filter(pl.col("zones_supported") >= 2)
    assert multi.group_by("rule").len().sort("rule").rows() == [("DEFAULT", 3), ("FORCED", 11)]
    for required in (
        "3A.R01",
        "3A.R02",
        "3A.R08",
        "replay.3A.escalate",
        "replay.3A.zone_dirichlet",
        "rng.families",
    ):
        assert checks[required]["status"] == "PASS"


def test_remainder_counts_by_hand() -> None:
    assert remainder_counts(10, [0.5, 0.3, 0.2]) == [5, 3, 2]
    assert remainder_counts(5, [0.5, 0.5]) == [3, 2]
    assert remainder_counts(2, [0.7, 0.3]) == [1, 1]


def test_first_rules_walks_in_order() -> None:
    policy = shipped_policy("3A", "zone_escalation")
    pairs = pl.DataFrame({"zones_supported": [1, 2, 4, 2, 2], "site_count": [9, 2, 4, 25, 7]})
    names, modes = first_rules(policy, pairs)  # type: ignore[arg-type]
    assert names == ["SINGLE_ZONE", "BELOW_MIN_SITES", "FORCED", "FORCED", "DEFAULT"]
    assert modes == ["never", "never", "always", "always", "theta_mix"]


def test_country_tv_by_hand() -> None:
    # 300 sites: zone 1 holds 240, zone 2 60; the prior says 0.5/0.3/0.2 → TV = ½(0.3 + 0.1 + 0.2) = 0.3
    alloc = pl.DataFrame(
        {"legal_country_iso": ["US", "US", "FR"], "tz_index": [1, 2, 5], "zone_site_count": [240, 60, 500]}
    )
    priors = pl.DataFrame(
        {
            "country_iso": ["US", "US", "US", "FR"],
            "tz_index": [1, 2, 3, 5],
            "prior_share": [0.5, 0.3, 0.2, 1.0],
        }
    )
    tv = country_tv(alloc, priors)
    assert list(tv) == ["US"]  # FR has one zone
    assert abs(tv["US"] - 0.3) < 1e-12


def test_a_miscounted_pair_fails_the_count_check() -> None:
    key = {"merchant_id": [1, 1], "legal_country_iso": ["US", "US"], "tz_index": [3, 8]}
    pairs = pl.DataFrame(
        {"merchant_id": [1], "legal_country_iso": ["US"], "site_count": [10], "is_escalated": [True]}
    )
    zones = pl.DataFrame({**key, "sites_in_zone": [9, 1]})
    for counts, ok in (([5, 5], True), ([6, 4], False)):
        book = CheckBook()
        check_counts(
            book, pairs, pl.DataFrame({**key, "share": [0.5, 0.5], "zone_site_count": counts}), zones
        )
        assert [c["status"] for c in book.checks] == ["PASS" if ok else "FAIL"]
        assert book.checks[0]["code"] == ("" if ok else "E_3A_COUNT_CONSERVATION")
