"""6A.S7's checks on a hand-made world (design layer2_3.md §3.9): clean tables give no finding, and each
corruption — an orphan account, a device with 7 parties, a mule without an organiser, a role above its cap —
fails exactly the check that names it, with its error code. Plus known answers for the measurements."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from engine.core.validation import CheckBook
from engine.segments.l3.s6a import audit
from engine.segments.l3.s6a import s7_validation as s7
from engine.segments.l3.s6a.policy import Roles
from tests.conftest import shipped_policy


def policy(name: str) -> Any:
    return shipped_policy("6A", name)


@pytest.fixture(scope="module")
def pols() -> dict[str, object]:
    return {n: policy(n) for n in ("accounts", "instruments", "devices", "ips", "terminals", "roles")}


def u64(values: list[int]) -> pl.Series:
    return pl.Series(values, dtype=pl.UInt64)


def world() -> dict[str, pl.DataFrame]:
    """Eight parties (two households of three, two businesses), their accounts and cards, devices (one shared
    by a household of three) and IPs, one site with two terminals."""
    n = 8
    parties = pl.DataFrame(
        {
            "party_id": u64(list(range(1, n + 1))),
            "country_iso": ["DE"] * 4 + ["FR"] * 4,
            "region": ["EUROPE"] * n,
            "party_type": ["RETAIL"] * 3 + ["BUSINESS"] + ["RETAIL"] * 3 + ["BUSINESS"],
            "household_id": u64([1, 1, 1, 2, 3, 3, 3, 4]),
            "household_size": [3, 3, 3, 1, 3, 3, 3, 1],
        }
    )
    accounts = pl.DataFrame(
        {
            "account_id": u64(list(range(1, n + 1))),
            "party_id": u64(list(range(1, n + 1))),
            "account_type": ["CURRENT"] * n,
            "issuer_id": u64([1] * 4 + [2] * 4),
            "issuer_country": ["DE"] * 4 + ["FR"] * 4,
        }
    )
    issuers = pl.DataFrame({"issuer_id": u64([1, 2]), "country_iso": ["DE", "FR"]})
    instruments = pl.DataFrame(
        {
            "instrument_id": u64(list(range(1, n + 1))),
            "account_id": u64(list(range(1, n + 1))),
            "party_id": u64(list(range(1, n + 1))),
        }
    )
    devices = pl.DataFrame(
        {
            "device_id": u64(list(range(1, n + 2))),
            "owner_party_id": u64([*range(1, n + 1), 1]).set(pl.Series([False] * n + [True]), None),
            "n_parties": pl.Series([1] * n + [3], dtype=pl.UInt8),
        }
    )
    device_links = pl.DataFrame(
        {"device_id": u64([*range(1, n + 1), 9, 9, 9]), "party_id": u64([*range(1, n + 1), 1, 2, 3])}
    )
    ips = pl.DataFrame({"ip_id": u64([1, 2, 3]), "n_devices": pl.Series([0, 5, 4], dtype=pl.UInt32)})
    ip_links = pl.DataFrame({"ip_id": u64([2] * 5 + [3] * 4), "device_id": u64(list(range(1, n + 2)))})
    terminals = pl.DataFrame(
        {
            "terminal_id": u64([1, 2]),
            "merchant_id": u64([7, 7]),
            "site_id": u64([70, 70]),
            "terminal_type": ["POS", "POS"],
            "site_ip_id": u64([1, 1]),
        }
    )
    return {
        "parties": parties,
        "accounts": accounts,
        "issuers": issuers,
        "instruments": instruments,
        "devices": devices,
        "device_links": device_links,
        "ips": ips,
        "ip_links": ip_links,
        "terminals": terminals,
    }


COUNTRIES = pl.DataFrame({"iso2": ["DE", "FR"]})
SITES = pl.DataFrame({"site_id": u64([70]), "merchant_id": u64([7])})


def failed(book: CheckBook) -> dict[str, str]:
    return {c["id"]: c["code"] for c in book.checks if c["status"] == "FAIL"}


def structure(t: dict[str, pl.DataFrame], pols: dict[str, object]) -> tuple[dict[str, str], int]:
    return structure_of(t, pols, (COUNTRIES, SITES))


def set_where(df: pl.DataFrame, key: str, value: int, column: str, new: int) -> pl.DataFrame:
    """`column` set to `new` on the row whose `key` is `value` (dtype kept)."""
    dtype = df.schema[column]
    return df.with_columns(
        pl.when(pl.col(key) == value).then(new).otherwise(pl.col(column)).cast(dtype).alias(column)
    )


def test_clean_world_has_no_finding(pols: dict[str, object]) -> None:
    assert structure(world(), pols) == ({}, 0)


def test_orphan_account_fails_its_foreign_key(pols: dict[str, object]) -> None:
    t = world()
    t["accounts"] = set_where(t["accounts"], "account_id", 3, "party_id", 99)
    found, caps = structure(t, pols)
    # the orphan also leaves party 3 without a CURRENT account and its card's copy of party_id disagreeing
    assert found == {
        "fk.accounts.party_id": "E_6A_ORPHAN",
        "fk.instruments.party_id": "E_6A_ORPHAN",
        "cap.current_account": "E_6A_CAP_VIOLATION",
    }
    assert caps == 1


def test_device_with_seven_parties_fails_its_cap(pols: dict[str, object]) -> None:
    t = world()
    extra = pl.DataFrame({"device_id": u64([9] * 4), "party_id": u64([4, 5, 6, 7])})
    t["device_links"] = pl.concat([t["device_links"], extra])
    t["devices"] = set_where(t["devices"], "device_id", 9, "n_parties", 7)
    found, caps = structure(t, pols)
    assert found == {"cap.parties_per_device": "E_6A_CAP_VIOLATION"} and caps == 1
    # a declared count that disagrees with the links is caught on its own
    t["devices"] = world()["devices"]
    found, _ = structure(t, pols)
    assert found == {
        "cap.parties_per_device": "E_6A_CAP_VIOLATION",
        "counts.devices.n_parties": "E_6A_CAP_VIOLATION",
    }


def test_terminal_on_an_unknown_site_and_a_wrong_merchant(pols: dict[str, object]) -> None:
    t = world()
    t["terminals"] = t["terminals"].with_columns(merchant_id=u64([7, 8]), site_ip_id=u64([1, 42]))
    found, _ = structure(t, pols)
    assert found == {"fk.terminals.merchant_id": "E_6A_ORPHAN", "fk.terminals.site_ip_id": "E_6A_ORPHAN"}


def roles_frame(roles: list[str], controllers: list[int | None]) -> pl.DataFrame:
    n = len(roles)
    return pl.DataFrame(
        {
            "party_id": u64(list(range(1, n + 1))),
            "role": roles,
            "controller_party_id": pl.Series(controllers, dtype=pl.UInt64),
        }
    )


def test_organiser_findings() -> None:
    parties = pl.DataFrame({"party_id": u64([1, 2, 3, 4, 5]), "region": ["EUROPE"] * 4 + ["AFRICA"]})
    good = roles_frame(["ORGANISER", "MULE", "MULE", "CLEAN", "CLEAN"], [None, 1, 1, None, None])
    assert set(audit.organiser_findings(good, parties, 2).values()) == {0}
    assert audit.organiser_findings(good, parties, 1)["organiser_over_load"] == 1
    bad = roles_frame(["ORGANISER", "MULE", "MULE", "CLEAN", "MULE"], [None, None, 4, 1, 1])
    assert audit.organiser_findings(bad, parties, 15) == {
        "mule_without_controller": 1,  # party 2
        "controller_on_non_mule": 1,  # party 4
        "controller_not_organiser_of_region": 2,  # party 3 (boss is CLEAN), party 5 (boss in EUROPE)
        "organiser_over_load": 0,
    }


def test_one_role_each_counts_missing_duplicate_and_unknown() -> None:
    entities = pl.DataFrame({"device_id": u64([1, 2, 3])})
    roles = pl.DataFrame({"device_id": u64([1, 1, 2, 9])})
    assert audit.one_role_each(roles, entities, "device_id") == 3  # 1 twice, 3 missing, 9 unknown


def test_quantile_tiers_and_measurements() -> None:
    scores = pl.DataFrame({"score": [0.1 * i for i in range(10)], "id": list(range(10)), "group": ["a"] * 10})
    assert audit.quantile_tiers(scores, [0.5, 0.85, 0.97]).to_list() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 2]
    exposed = np.array([True] * 100 + [False] * 900)
    outcome = np.array([True] * 10 + [False] * 90 + [True] * 5 + [False] * 895)
    value, support = audit.odds_ratio(exposed, outcome)
    assert value == pytest.approx(10 * 895 / (90 * 5)) and support == 10
    assert audit.odds_ratio(np.array([True, False]), np.array([True, False]))[0] == pytest.approx(9.0)
    assert audit.jsd(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    assert audit.jsd(np.array([3.0, 1.0]), np.array([0.75, 0.25])) == pytest.approx(0.0)
    assert audit.top_share(np.arange(1.0, 101.0), 0.01) == pytest.approx(100 / 5050)


def test_role_caps_and_collusive_top_scores(pols: dict[str, object]) -> None:
    roles: Roles = pols["roles"]
    n = 2000  # caps: MULE 20, ORGANISER 1
    parties = pl.DataFrame(
        {"party_id": u64(list(range(1, n + 1))), "region": ["EUROPE"] * n, "party_type": ["RETAIL"] * n}
    )
    score = np.linspace(0.0, 1.0, n).astype(np.float32)
    tier = np.searchsorted(np.array([1000, 1700, 1940]), np.arange(n), side="right")
    role = ["CLEAN"] * n
    ctrl: list[int | None] = [None] * n
    role[-1] = "ORGANISER"
    for i in range(n - 22, n - 1):  # 21 mules: one above the cap
        role[i], ctrl[i] = "MULE", n
    t = {
        "parties": parties,
        "accounts": pl.DataFrame({"account_id": u64([1]), "party_id": u64([1])}),
        "devices": pl.DataFrame({"device_id": u64([1])}),
        "ips": pl.DataFrame({"ip_id": u64([1])}),
        "party_roles": pl.DataFrame(
            {
                "party_id": parties["party_id"],
                "risk_score": score,
                "risk_tier": pl.Series(["LOW", "STANDARD", "ELEVATED", "HIGH"])[tier].cast(
                    pl.Enum(["LOW", "STANDARD", "ELEVATED", "HIGH"])
                ),
                "kyc_score": score,  # every KYC tier LOW: 1000 parties off their quantile
                "kyc_risk_tier": pl.Series(["LOW"] * n).cast(
                    pl.Enum(["LOW", "STANDARD", "ELEVATED", "HIGH"])
                ),
                "role": role,
                "controller_party_id": pl.Series(ctrl, dtype=pl.UInt64),
            }
        ),
        "account_roles": pl.DataFrame({"account_id": u64([1]), "role": ["CLEAN"]}),
        "device_roles": pl.DataFrame({"device_id": u64([1]), "role": ["CLEAN"]}),
        "ip_roles": pl.DataFrame({"ip_id": u64([1]), "role": ["CLEAN"]}),
        "merchant_roles": pl.DataFrame(
            {
                "merchant_id": u64([1, 2, 3]),
                "role": ["COLLUSIVE", "HIGH_RISK_MCC", "NORMAL"],
                "risk_tier": pl.Series(["LOW", "LOW", "STANDARD"]).cast(
                    pl.Enum(["LOW", "STANDARD", "ELEVATED", "HIGH"])
                ),
                "risk_score": pl.Series([0.2, 0.9, 0.1], dtype=pl.Float32),
            }
        ),
    }
    merchants = pl.DataFrame(
        {"merchant_id": u64([1, 2, 3]), "mcc": pl.Series([5411, 7995, 5411], dtype=pl.UInt16)}
    )
    book = CheckBook()
    f = s7.Findings(book)
    counts = s7.role_invariants(f, t, merchants, roles)
    assert counts["MULE"] == 21
    # the 21st mule breaks the MULE cap and the organiser's load of 15; merchant 1 is COLLUSIVE below the top
    # score, and merchant tiers off the quantiles of (0.1, 0.2, 0.9) and the all-LOW KYC tiers are caught too
    assert failed(book) == {
        "tiers.party_kyc": "E_6A_ROLE_CAP",
        "cap.role.MULE": "E_6A_ROLE_CAP",
        "organisers.organiser_over_load": "E_6A_ROLE_CAP",
        "roles.collusive_top_scores": "E_6A_ROLE_CAP",
        "tiers.merchant_roles": "E_6A_ROLE_CAP",
    }
    assert f.cap_total == 2


def test_valid_cards_counts_expired_and_future_cards() -> None:
    inst = pl.DataFrame(
        {
            "instrument_type": ["DEBIT_PHYSICAL", "CREDIT_VIRTUAL", "DEBIT_PHYSICAL", "BANK_ACCOUNT"],
            "issue_date": [
                dt.date(2024, 1, 5),
                dt.date(2025, 6, 1),
                dt.date(2026, 3, 3),
                dt.date(2020, 1, 1),
            ],
            "expiry_month": [dt.date(2026, 3, 1), dt.date(2026, 2, 1), dt.date(2029, 3, 1), None],
        }
    )
    # valid: the first (expires end of March); the second expired in February, the third is not yet issued
    assert s7.valid_cards({"instruments": inst}, dt.date(2026, 3, 2)) == (pytest.approx(1 / 3), 3)


# --- the tiny world -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world6a(tiny_world: Path) -> Path:
    """The session's tiny world (`all` builds 6A); read only — the corruption test works on its own copy."""
    return tiny_world


def read6a(root: Path, name: str) -> pl.DataFrame:
    paths = sorted(root.glob(f"data/layer3/6A/{name}/seed=42/manifest_fingerprint=*/part-*.parquet"))
    assert len(paths) == 1, name
    df = pl.read_parquet(paths[0]).drop("seed", "manifest_fingerprint")
    return df.with_columns(pl.col(pl.Categorical, pl.Enum).cast(pl.String))


def test_bundle_passes_and_verifies(world6a: Path) -> None:
    bundle = next(world6a.glob("data/layer3/6A/validation/seed=42/manifest_fingerprint=*"))
    assert (bundle / "_passed.flag").is_file()
    checks = json.loads((bundle / "checks.json").read_text())
    assert [c["id"] for c in checks if c["severity"] == "REQUIRED" and c["status"] == "FAIL"] == []
    ids = {c["id"] for c in checks}
    assert {f"6A.R{i:02d}" for i in (1, 2, 3, 4, 10)} <= ids and {"replay.6A.risk", "replay.6A.world"} <= ids
    assert {
        f"rng.6A.{f}.draws" for f in ("party", "account", "instrument", "terminal", "device", "ip")
    } <= ids
    summary = json.loads((bundle / "summary.json").read_text())
    parties = read6a(world6a, "parties")
    assert summary["entities"]["parties"] == parties.height
    assert sum(summary["roles"]["party_roles"].values()) == pytest.approx(1.0)
    assert sum(r["parties"] for r in summary["regions"].values()) == parties.height
    res = subprocess.run(
        [sys.executable, "-m", "engine", "verify", str(world6a)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout[-2000:]
    assert f"PASS {bundle}" in res.stdout


def test_roles_keep_their_laws_in_the_published_rows(world6a: Path) -> None:
    """From the files alone: caps, organisers, propagation rates and IP roles by type."""
    roles: Roles = policy("roles")
    parties = read6a(world6a, "parties")
    pr = read6a(world6a, "party_roles").join(parties.select("party_id", "region"), on="party_id")
    n = parties.height
    counts = dict(pr["role"].value_counts().iter_rows())
    assert all(counts.get(r, 0) <= int(s * n + 1e-9) for r, s in roles.caps.items())
    mules = pr.filter(pl.col("role") == "MULE").join(
        pr.select(
            pl.col("party_id").alias("controller_party_id"),
            pl.col("role").alias("boss"),
            pl.col("region").alias("boss_region"),
        ),
        on="controller_party_id",
    )
    assert mules.height == counts["MULE"] > 0
    assert (mules["boss"] == "ORGANISER").all() and (mules["boss_region"] == mules["region"]).all()
    assert mules["controller_party_id"].value_counts()["count"].max() <= roles.max_mules_per_organiser
    acc = (
        read6a(world6a, "account_roles")
        .join(read6a(world6a, "accounts"), on="account_id")
        .join(pr.select("party_id", pl.col("role").alias("owner")), on="party_id")
    )
    mule_acc = acc.filter(pl.col("role") == "MULE_ACCOUNT")
    assert ((mule_acc["owner"] == "MULE") & (mule_acc["account_type"] == "CURRENT")).all()
    mule_current = acc.filter((pl.col("owner") == "MULE") & (pl.col("account_type") == "CURRENT"))
    rate = mule_acc.height / mule_current.height
    sd = (0.85 * 0.15 / mule_current.height) ** 0.5
    assert abs(rate - roles.propagation.mule_current_account) < 4 * sd
    ips = read6a(world6a, "ip_roles").join(read6a(world6a, "ips"), on="ip_id")
    want = (
        pl.when(pl.col("ip_type").is_in(roles.anonymiser_ip_types))
        .then(pl.lit("ANONYMISER"))
        .when(pl.col("ip_type").is_in(roles.shared_public_ip_types))
        .then(pl.lit("SHARED_PUBLIC"))
        .otherwise(pl.lit("CLEAN"))
    )
    assert (ips["role"] == ips.select(want.alias("w"))["w"]).all()
    dev = read6a(world6a, "device_roles").join(read6a(world6a, "devices"), on="device_id")
    assert (dev.filter(pl.col("owner_kind") == "OPERATOR")["role"] != "CLEAN").all()
    merchants = read6a(world6a, "merchant_roles")
    assert (merchants["role"] == "COLLUSIVE").sum() >= 1


def test_s7_catches_a_device_with_seven_parties_in_the_real_world(world6a: Path) -> None:
    pols = {n: policy(n) for n in ("accounts", "instruments", "devices", "ips", "terminals")}
    t = {
        name: read6a(world6a, name)
        for name in (
            "parties",
            "accounts",
            "issuers",
            "instruments",
            "devices",
            "device_links",
            "ips",
            "ip_links",
            "terminals",
        )
    }
    found, _ = structure_of(t, pols, read6a_sealed(world6a))
    assert found == {}
    shared = t["device_links"].group_by("device_id").len().filter(pl.col("len") >= 2)["device_id"][0]
    have = t["device_links"].filter(pl.col("device_id") == shared)["party_id"].to_list()
    extra = [p for p in range(1, 100) if p not in have][: 7 - len(have)]
    t["device_links"] = pl.concat(
        [
            t["device_links"],
            pl.DataFrame(
                {
                    "device_id": u64([shared] * len(extra)),
                    "party_id": u64(extra),
                    "link_role": ["HOUSEHOLD_MEMBER"] * len(extra),
                }
            ),
        ]
    )
    found, caps = structure_of(t, pols, read6a_sealed(world6a))
    assert found == {
        "cap.parties_per_device": "E_6A_CAP_VIOLATION",
        "counts.devices.n_parties": "E_6A_CAP_VIOLATION",
    }
    assert caps == 2


def read6a_sealed(root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """ref_countries and 2A's site_timezones as the tiny world built them."""
    countries = pl.read_parquet(next(root.glob("resources/ref_countries/build=*/ref_countries.parquet")))
    sites = pl.read_parquet(
        next(root.glob("data/layer1/2A/site_timezones/seed=42/manifest_fingerprint=*/part-00000.parquet"))
    )
    return countries, sites


def structure_of(
    t: dict[str, pl.DataFrame], pols: dict[str, object], sealed: tuple[pl.DataFrame, pl.DataFrame]
) -> tuple[dict[str, str], int]:
    book = CheckBook()
    f = s7.Findings(book)
    s7.foreign_keys(f, t, *sealed)
    s7.caps(f, t, pols["accounts"], pols["instruments"], pols["devices"], pols["ips"], pols["terminals"])
    return failed(book), f.cap_total


def test_orphans_by_range_and_by_join_agree() -> None:
    child = pl.DataFrame({"k": pl.Series([0, 2, 4, None, 3], dtype=pl.UInt64)})
    dense = pl.DataFrame({"id": u64([1, 2, 3])})
    sparse = pl.DataFrame({"id": u64([1, 3, 4])})
    assert audit.dense_ids(dense["id"]) and not audit.dense_ids(sparse["id"])
    assert audit.orphans(child, "k", dense, "id") == 2  # 0 and 4 (the range test)
    assert audit.orphans(child, "k", sparse, "id") == 2  # 0 and 2 (the join)


def test_a_failed_required_check_withholds_the_flag(
    world6a: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S7 re-run on a copy with every per-key cap count reporting one offender: the bundle is published
    without its flag and the state exits E_6A_VALIDATION_FAILED naming the failed checks."""
    from engine.core.errors import EngineError
    from engine.core.state import StateContext

    root = tmp_path / "world"
    shutil.copytree(world6a, root, symlinks=True)
    bundle = next(root.glob("data/layer3/6A/validation/seed=42/manifest_fingerprint=*"))
    mf = bundle.name.split("=", 1)[1]
    shutil.rmtree(bundle)
    monkeypatch.setattr(audit, "per_key_over", lambda *a, **k: 1)
    ctx = StateContext(root, "6A", "6A.S7", "s7_validation", mf, 42)
    with pytest.raises(EngineError) as err:
        s7.run(ctx)
    assert err.value.code == "E_6A_VALIDATION_FAILED"
    assert "cap.parties_per_device" in err.value.what and "6A.R01" in err.value.what
    assert (bundle / "checks.json").is_file() and not (bundle / "_passed.flag").exists()


def test_kyc_score_is_the_risk_score_without_its_noise(world6a: Path) -> None:
    """The bank's KYC view re-derived by docs/datasets/6A.md's formula from the published parties and
    accounts: kyc_score = logistic(b0 + Σ w·x + segment effect), its tiers exact quantiles within the party
    type, and risk_score (which adds ε ~ N(0, 1)) a different number for almost everyone."""
    r = policy("roles").party_risk
    parties = read6a(world6a, "parties")
    cards = (
        read6a(world6a, "accounts")
        .filter(pl.col("account_type") == "CREDIT_CARD")
        .group_by("party_id")
        .agg(pl.len().alias("cards"))
    )
    start = dt.date(2026, 3, 2)  # tiny's horizon start
    rows = parties.join(cards, on="party_id", how="left").join(read6a(world6a, "party_roles"), on="party_id")
    for p in rows.sample(n=500, seed=1).iter_rows(named=True):
        tenure = max((start - p["onboarding_date"]).days / (365.2425 / 12), 1.0)
        x = {
            "cross_border": p["cross_border_propensity"],
            "digital": p["digital_affinity"],
            "credit_cards": p["cards"] or 0,
            "neg_log_tenure": -np.log(tenure / r.tenure_ref_months),
            "single_person": float(p["party_type"] == "RETAIL" and p["household_size"] == 1),
        }
        lin = (
            r.intercept
            + r.segment_effects.get(p["segment"], 0.0)
            + sum(r.weights[k] * v for k, v in x.items())
        )
        assert p["kyc_score"] == pytest.approx(1 / (1 + np.exp(-lin)), rel=1e-6)
    for ptype, group in rows.group_by("party_type"):
        n = group.height
        order = group.sort("kyc_score", "party_id")["kyc_risk_tier"].to_list()
        bounds = [0, *(int(np.ceil(c * n)) for c in policy("roles").tier_cutoffs), n]
        for tier, lo, hi in zip(
            ("LOW", "STANDARD", "ELEVATED", "HIGH"), bounds[:-1], bounds[1:], strict=True
        ):
            assert set(order[lo:hi]) <= {tier}, (ptype, tier)
    assert (rows["kyc_score"] != rows["risk_score"]).mean() > 0.99
