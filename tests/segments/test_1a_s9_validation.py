"""1A.S9: the bundle on the tiny world, every RNG family replayed and accounted, NB z-score, flag rules."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import polars as pl
import pytest
from scipy import stats

from engine.core.canonical import canonical_json_bytes
from engine.core.contracts import dataset_file
from engine.core.errors import ValidationFailed
from engine.core.gates import FLAG, INDEX, SEALED, publish_bundle, verify_bundle
from engine.core.layout import bundle_dir, failed_checks_file, gate_dir
from engine.core.policy import load_policy_file
from engine.core.policy_model import Validation
from engine.core.rng import family_key
from engine.core.state import StateContext
from engine.core.validation import CheckBook, Replay, finish_segment, gini, run_replays, spearman
from engine.segments.l1.s1a import replay
from engine.segments.l1.s1a.s9_validation import nb_rejection_z
from tests.conftest import shipped_policy, tiny_plan

SEED = 42
VALIDATION: Validation = shipped_policy("1A", "validation")  # type: ignore[assignment]


@pytest.fixture(scope="module")
def world(tiny_world: Path) -> dict[str, Any]:
    plan = tiny_plan(tiny_world)
    mf = plan["1A"].manifest_fingerprint
    names = ("s1_hurdle", "s2_outlet_count", "s3_open", "s3_candidates", "s4_foreign_count", "s6_foreign_set",
             "merchant_catalogue")  # fmt: skip
    out: dict[str, Any] = {n: pl.read_parquet(dataset_file(tiny_world, n, mf=mf, seed=SEED)) for n in names}
    out["universe"] = pl.read_parquet(
        dataset_file(tiny_world, "merchant_universe", mf=plan["ING"].manifest_fingerprint)
    )
    out["bundle"] = bundle_dir(tiny_world, "1A", SEED, mf)
    sealed = json.loads((gate_dir(tiny_world, "1A", mf) / SEALED).read_text())
    paths = {i["id"]: tiny_world / i["path"] for i in sealed["inputs"]}
    for name in ("validation", "hurdle_nb", "crossborder"):
        out[name] = load_policy_file("1A", name, paths[f"1A/{name}.yaml"], state="test")
    countries = pl.read_parquet(paths["ref_countries"])
    out["iso_num"] = countries.select(pl.col("iso2").alias("country_iso"), "iso_num")
    out["parameter_hash"] = plan["1A"].parameter_hash
    return out


def test_checks_cover_the_policy_and_skip_only_below_support(world: dict[str, Any]) -> None:
    checks = json.loads((world["bundle"] / "checks.json").read_text())
    by_id = {c["id"]: c for c in checks}
    assert len(by_id) == len(checks)
    assert {c.id for c in VALIDATION.checks} <= set(by_id)
    assert {c["status"] for c in checks} <= {"PASS", "FAIL", "SKIPPED"}
    realism = [c for c in checks if c["kind"] == "realism"]
    assert {c["id"] for c in realism} == {c.id for c in VALIDATION.checks}
    sealed: Validation = world["validation"]
    min_support = {c.id: c.min_support or sealed.min_support for c in sealed.checks}
    for c in realism:
        assert c["min_support"] == min_support[c["id"]], c["id"]
        assert (c["status"] == "SKIPPED") == (c["support"] < c["min_support"]), c["id"]
    assert any(c["status"] == "SKIPPED" for c in realism) and any(c["status"] == "PASS" for c in realism)
    for c in checks:
        if c["kind"] == "structural":
            assert c["status"] != "SKIPPED"
    assert not [c["id"] for c in checks if c["status"] == "FAIL" and c["severity"] == "REQUIRED"]
    ok, why = verify_bundle(world["bundle"])
    assert (world["bundle"] / FLAG).is_file() and ok, why


def test_realism_values_recompute(world: dict[str, Any]) -> None:
    realism = json.loads((world["bundle"] / "realism.json").read_text())
    mc = world["merchant_catalogue"]
    assert realism["1A.R01"]["value"] == round(float((~mc["is_multi"]).mean()), 9)
    assert realism["1A.R01"]["support"] == mc.height == world["universe"].height
    assert realism["1A.R15"]["value"] == round(float((mc["channel"] == "card_not_present").mean()), 9)
    assert realism["1A.R16b"]["value"] == float(mc["sector"].n_unique())


FAMILIES = ("1A.hurdle", "1A.nb", "1A.xb_open", "1A.ztp", "1A.gumbel")


def test_every_family_is_replayed_in_full_and_accounted(world: dict[str, Any]) -> None:
    """Under 10^5 draw events every event of every family is replayed bit for bit."""
    by_id = {c["id"]: c for c in json.loads((world["bundle"] / "checks.json").read_text())}
    assert by_id["rng.families"]["status"] == "PASS"
    for family in FAMILIES:
        check = by_id[f"replay.{family}"]
        assert check["status"] == "PASS", check
        replayed, total = check["detail"].removeprefix(f"{family}: ").split(" draw events")[0].split(" of ")
        assert replayed == total and int(total) > 0, check["detail"]
        for q in ("draws", "blocks", "streams", "counter_lo", "counter_hi"):
            assert by_id[f"rng.{family}.{q}"]["status"] == "PASS", (family, q)


def test_rng_accounting_obeys_the_lane_rules(world: dict[str, Any]) -> None:
    """Known answers and bounds from the data and README §4's lane rules, not from the validation's code."""
    doc = json.loads((world["bundle"] / "rng_accounting.json").read_text())
    expected, recorded = doc["expected"], doc["recorded"]
    assert set(expected) == set(recorded) == set(FAMILIES)
    assert all(expected[f] == recorded[f] for f in FAMILIES)
    s1, s2, s3, s4 = (world[n] for n in ("s1_hurdle", "s2_outlet_count", "s3_open", "s4_foreign_count"))
    ids = world["universe"]["merchant_id"]
    one_each = {
        "1A.hurdle": world["universe"].height,  # one uniform per merchant
        "1A.xb_open": s3.filter(pl.col("deny_reason").is_null()).height,
        "1A.gumbel": world["s3_candidates"].filter(pl.col("candidate_rank") > 0).height,
    }
    assert one_each["1A.hurdle"] == 250  # the tiny preset's universe
    for family, n in one_each.items():
        assert [recorded[family][q] for q in ("draws", "blocks", "streams")] == [n, n, n], family
    assert (recorded["1A.hurdle"]["counter_lo"], recorded["1A.hurdle"]["counter_hi"]) == (
        str(ids.min()),
        str(ids.max()),
    )
    nb = recorded["1A.nb"]
    multi = s2.join(s1.filter(pl.col("is_multi")).select("merchant_id"), on="merchant_id", how="semi")
    assert nb["streams"] == multi["attempts"].cast(pl.Int64).sum() and nb["blocks"] == multi["blocks"].sum()
    # an attempt reads Gamma (≥ 3 lanes) then Poisson (≥ 1 lane), over ⌈lanes / 4⌉ blocks of its own counter
    assert 4 * nb["streams"] <= nb["draws"] <= 4 * nb["blocks"]
    assert nb["draws"] > 4 * (nb["blocks"] - nb["streams"])
    ztp = recorded["1A.ztp"]
    small = s4.filter(pl.col("lambda") < 10.0).height  # one inversion lane each; PTRS reads 2 per try
    assert ztp["streams"] == s4["attempts"].cast(pl.Int64).sum()
    assert (ztp["draws"] - small) % 2 == 0 and ztp["draws"] >= small + 2 * (s4.height - small)
    assert ztp["counter_hi"] == str(s4["merchant_id"].max())


def _replays(world: dict[str, Any], tables: dict[str, pl.DataFrame]) -> list[Replay]:
    t = {**world, **tables}
    return [
        replay.hurdle(t["s1_hurdle"], t["universe"], t["hurdle_nb"]),
        replay.nb(t["s2_outlet_count"], t["hurdle_nb"]),
        replay.xb_open(t["s3_open"]),
        replay.ztp(t["s4_foreign_count"], t["crossborder"]),
        replay.gumbel(t["s6_foreign_set"], t["iso_num"]),
    ]


def _replay_world(world: dict[str, Any], tables: dict[str, pl.DataFrame]) -> dict[str, dict[str, Any]]:
    """1A's replays run through the law on the world's tables, some of them swapped for changed ones."""
    ctx = SimpleNamespace(
        segment="1A", state="1A.S9", facts={},
        family_key=lambda label: family_key(SEED, world["parameter_hash"], f"1A.{label}"),
    )  # fmt: skip
    recorded = json.loads((world["bundle"] / "rng_accounting.json").read_text())["recorded"]
    book = CheckBook()
    run_replays(cast(StateContext, ctx), book, _replays(world, tables), recorded, code="E_1A_REPLAY")
    return {c["id"]: c for c in book.checks}


def _bump(df: pl.DataFrame, column: str, row: int) -> pl.DataFrame:
    """One published value changed a little: one ulp for a float, +1 for a count, negated for a flag."""
    values = df[column].to_list()
    v = values[row]
    if isinstance(v, bool):
        values[row] = not v
    elif isinstance(v, float):
        values[row] = float(np.nextafter(v, np.inf))
    else:
        values[row] = v + 1
    return df.with_columns(pl.Series(column, values, dtype=df[column].dtype))


@pytest.mark.parametrize(
    ("table", "column", "family"),
    [
        ("s1_hurdle", "pi", "1A.hurdle"),
        ("s1_hurdle", "is_multi", "1A.hurdle"),
        ("s2_outlet_count", "n_outlets", "1A.nb"),
        ("s3_open", "is_open", "1A.xb_open"),
        ("s4_foreign_count", "k_target", "1A.ztp"),
        ("s6_foreign_set", "gumbel_key", "1A.gumbel"),
    ],
)
def test_one_changed_value_fails_its_familys_replay(
    world: dict[str, Any], table: str, column: str, family: str
) -> None:
    assert {c["status"] for c in _replay_world(world, {}).values()} == {"PASS"}
    df = world[table]
    drawn = {"s2_outlet_count": pl.col("attempts") > 0, "s3_open": pl.col("deny_reason").is_null()}
    row = int(df.with_row_index("_i").filter(drawn.get(table, pl.lit(True)))["_i"][0])
    checks = _replay_world(world, {table: _bump(df, column, row)})
    assert [c for c, v in checks.items() if v["status"] == "FAIL"] == [f"replay.{family}"]
    assert checks[f"replay.{family}"]["code"] == "E_1A_REPLAY"
    assert checks[f"replay.{family}"]["detail"].startswith(f"{family}: 1 of ")


def _nb_frame(attempts: np.ndarray, mu: float = 5.0, phi: float = 1.6, p_chain: float = 0.0) -> pl.DataFrame:
    n = attempts.size
    return pl.DataFrame(
        {
            "mu": np.full(n, mu),
            "phi": np.full(n, phi),
            "p_chain": np.full(n, p_chain),
            "attempts": pl.Series(attempts, dtype=pl.UInt16),
        }
    )


@pytest.mark.parametrize("p_chain", [0.0, 0.25])
def test_nb_rejection_z(p_chain: float) -> None:
    """An attempt is rejected when it takes the body (1 − p_chain) and the body gives K < 2 (scipy's NB2)."""
    mu, phi, n = 5.0, 1.6, 1000
    q = (1.0 - p_chain) * stats.nbinom(phi, phi / (phi + mu)).cdf(1)
    per_row = q / (1.0 - q)
    rejections = round(n * per_row)
    attempts = np.ones(n, dtype=np.int64)
    attempts[:rejections] = 2
    single = np.zeros(50, dtype=np.int64)  # single-site rows (attempts 0) are not count draws
    z, support = nb_rejection_z(_nb_frame(np.concatenate([attempts, single]), mu, phi, p_chain))
    assert support == n
    sd = math.sqrt(n * q / (1.0 - q) ** 2)
    assert z == pytest.approx((rejections - n * per_row) / sd, abs=1e-9)
    assert abs(z) < 0.1
    z_bad, _ = nb_rejection_z(_nb_frame(np.full(n, 5), mu, phi, p_chain))
    assert z_bad == pytest.approx((4 * n - n * per_row) / sd, rel=1e-9)
    assert z_bad > 50


def test_gini_and_spearman_exact() -> None:
    assert gini(np.array([1, 1, 1, 1])) == 0.0
    assert gini(np.array([0, 0, 0, 1])) == 0.75
    assert gini(np.array([1, 0, 0, 0])) == 0.75  # order-free
    a = np.array([1.0, 2.0, 5.0, 9.0, 10.0])
    assert spearman(a, a**2) == pytest.approx(1.0, abs=1e-15)
    assert spearman(a, -a) == pytest.approx(-1.0, abs=1e-15)
    assert math.isnan(spearman(a, np.full(5, 3.0)))


def _book() -> CheckBook:
    book = CheckBook()
    book.structural("s.ok", True)
    book.realism("X.R01", "m", 0.5, 200, 0.0, 1.0, "REQUIRED", 150)
    book.realism("X.R02", "m", 2.0, 200, 0.0, 1.0, "WARN", 150)  # fails, but only warns
    book.realism("X.R03", "m", 2.0, 10, 0.0, 1.0, "REQUIRED", 150)  # out of band, too little support
    return book


def test_checkbook_statuses_and_failed_required() -> None:
    book = _book()
    assert [c["status"] for c in book.checks] == ["PASS", "PASS", "FAIL", "SKIPPED"]
    assert book.failed_required() == []
    book.realism("X.R04", "m", float("nan"), 200, 0.0, 1.0, "REQUIRED", 150)
    book.realism("X.R05", "m", -1.0, 200, 0.0, None, "REQUIRED", 150)
    book.structural("s.bad", False, code="E_X")
    assert book.failed_required() == ["X.R04", "X.R05", "s.bad"]


def test_publish_bundle_flag_only_when_passed(tmp_path: Path) -> None:
    files = {"checks.json": (canonical_json_bytes([{"id": "x"}]), "checks")}
    failed = tmp_path / "failed"
    publish_bundle(failed, files, passed=False, state="test")
    assert (failed / INDEX).is_file() and (failed / "checks.json").is_file()
    assert not (failed / FLAG).exists()
    assert verify_bundle(failed) == (False, "no _passed.flag (validation did not pass)")
    passed = tmp_path / "passed"
    digest = publish_bundle(passed, files, passed=True, state="test")
    assert (passed / FLAG).read_text() == f"sha256_hex = {digest}\n"
    assert verify_bundle(passed) == (True, "PASS")


def test_failing_required_check_withholds_the_flag(tmp_path: Path) -> None:
    finished: list[bool] = []
    stub = SimpleNamespace(
        root=tmp_path, segment="1A", seed=SEED, mf="c" * 64, state="1A.S9", facts={},
        finish=lambda: finished.append(True),
    )  # fmt: skip
    book = _book()
    book.realism("X.R09", "m", 5.0, 500, 0.0, 1.0, "REQUIRED", 150)
    evidence = {"rng_accounting": {}, "state_reports": {}}
    with pytest.raises(ValidationFailed) as err:
        finish_segment(cast(StateContext, stub), book, evidence)
    assert err.value.code == "E_1A_VALIDATION_FAILED" and err.value.failed == ["X.R09"]
    bundle = bundle_dir(tmp_path, "1A", SEED, "c" * 64)
    assert (bundle / "checks.json").is_file() and not (bundle / FLAG).exists()
    assert json.loads(failed_checks_file(tmp_path, "1A", SEED, "c" * 64).read_text()) == book.checks
    assert finished == [True]
    assert stub.facts["checks"] == {"PASS": 2, "FAIL": 2, "SKIPPED": 1}
