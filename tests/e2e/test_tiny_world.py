"""End to end: the real Snakemake workflow on the tiny preset, in temporary output roots."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from engine.core.canonical import sha256_file
from engine.core.contracts import dictionary, validate_table
from engine.kernels.signatures import RECORD_ENV, load_registry
from tests.conftest import REPO, run_snakemake

pytestmark = pytest.mark.e2e


snakemake = run_snakemake


def digests(root: Path, sub: str = "data") -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted((root / sub).rglob("*")) if p.is_file()}


def mtimes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_mtime_ns
        for p in sorted((root / "data").rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def world(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the session's tiny world: these tests rerun, delete and tamper."""
    root = tmp_path_factory.mktemp("e2e") / "world"
    shutil.copytree(tiny_world, root, symlinks=True)
    return root


def test_every_output_matches_its_contract(world: Path) -> None:
    parts = sorted(world.glob("data/**/part-00000.parquet"))
    names = {p.parts[p.parts.index("data") + 3] for p in parts}
    assert names == set(dictionary())  # every dataset of the dictionary was produced
    for part in parts:
        name = part.parts[part.parts.index("data") + 3]
        df = pl.read_parquet(part)
        validate_table(df, dictionary()[name]["schema"], where=str(part), state="test")
        assert df["manifest_fingerprint"].n_unique() == 1
        assert f"manifest_fingerprint={df['manifest_fingerprint'][0]}" in str(part)
        if "seed" in df.columns:
            assert f"seed={df['seed'][0]}" in str(part)


def test_bundle_verifies_and_flag_is_present(world: Path) -> None:
    flags = list(world.glob("data/layer1/1A/validation/seed=42/manifest_fingerprint=*/_passed.flag"))
    assert len(flags) == 1
    res = subprocess.run(
        [sys.executable, "-m", "engine", "verify", str(world)], cwd=REPO, capture_output=True, text=True
    )
    assert res.returncode == 0 and res.stdout.startswith("PASS"), res.stdout + res.stderr


def test_second_run_changes_nothing(world: Path) -> None:
    before, before_m = digests(world), mtimes(world)
    res = snakemake(world)
    assert res.returncode == 0
    assert "Nothing to be done" in res.stdout + res.stderr
    assert digests(world) == before and mtimes(world) == before_m


@pytest.fixture(scope="module")
def one_core_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny world again, on one core with a 7-thread polars pool, each state recording the numba
    signatures it used (so no warm-up runs); returns the root and the folder of records."""
    base = tmp_path_factory.mktemp("one-core")
    root, records = base / "world", base / "signatures"
    res = snakemake(root, cores=1, env={"POLARS_MAX_THREADS": "7", RECORD_ENV: str(records)})
    assert res.returncode == 0, res.stderr[-4000:]
    return root, records


def test_fresh_root_on_one_core_gives_identical_bytes(world: Path, one_core_world: tuple[Path, Path]) -> None:
    """The session world was built with --cores 2 and polars' default pool (one thread per CPU); one core,
    so other job orders, and a 7-thread pool, so other chunks in every query, must give the same bytes (a
    16-core machine wrote other 1B tile tables until write_parquet wrote each column as one chunk)."""
    other, _ = one_core_world
    assert digests(other) == digests(world)


def test_the_warm_up_compiled_6b_5b_6a_and_the_registry_names_every_kernel_a_state_calls(
    world: Path, one_core_world: tuple[Path, Path]
) -> None:
    """kernels_warm ran in the session build (rules/kernels.smk); and every kernel a state of the one-core
    build called is in engine/kernels/signatures.json for that state, with the same argument types (if this
    fails after a kernel's argument types changed, run scripts/kernel_signatures.py).

    The types include arrays' read-only flags. A column polars hands over without a copy is read-only and a
    copied one is not, which follows polars' chunking, so its thread count: this build runs polars with 7
    threads, the registry was recorded with 2. The kernels get their inputs through engine/kernels/frozen.py,
    so the flags must not follow."""
    (report,) = world.glob(".cache/kernels/warm-*.json")
    warmed = json.loads(report.read_text())
    assert warmed["segments"] == ["6B", "5B", "6A"]
    assert {"plan_kernel", "_attach_all", "expand"} <= {k["function"] for k in warmed["kernels"]}

    def key(state: str, row: dict[str, object]) -> tuple[str, object, object, str]:
        return state, row["module"], row["function"], json.dumps(row["args"], sort_keys=True)

    registry = {key(state, e) for e in load_registry() for state in e["states"]}
    _, records = one_core_world
    used = [r for f in sorted(records.glob("*.json")) for r in json.loads(f.read_text())]
    assert {r["state"] for r in used} >= {"1A.S2", "5B.S4", "6B.S1", "6B.S2", "6B.S5"}
    missing = {key(r["state"], r)[:3] for r in used if key(r["state"], r) not in registry}
    assert not missing, sorted(missing)


def test_deleting_one_output_reruns_only_its_dependents(world: Path) -> None:
    """Within 1A (its target: the other segments downstream of it would be rebuilt the same way)."""
    before = digests(world)
    victim = next(world.glob("data/layer1/1A/s6_foreign_set/seed=42/*/part-00000.parquet"))
    victim.unlink()
    res = snakemake(world, target="seg1A")
    assert res.returncode == 0, res.stderr[-4000:]
    log = res.stdout + res.stderr
    for rule in (
        "seg1A_s6_foreign_set",
        "seg1A_s7_integerise",
        "seg1A_s8_outlet_catalogue",
        "seg1A_s9_validation",
    ):
        assert f"rule {rule}:" in log
    for rule in ("seg1A_s0_gate", "seg1A_s1_hurdle", "seg1A_s2_nb_outlets", "seg1A_s5_currency_weights"):
        assert f"rule {rule}:" not in log
    assert digests(world) == before


def test_policy_change_makes_new_partitions_and_keeps_old(world: Path) -> None:
    before = digests(world)
    res = snakemake(world, "policy_overrides={1A: {crossborder: {cnp_open_multiplier: 0.5}}}", target="seg1A")
    assert res.returncode == 0, res.stderr[-4000:]
    after = digests(world)
    assert all(after[k] == v for k, v in before.items())  # nothing old was touched
    new = set(after) - set(before)
    assert any("/1A/outlet_catalogue/" in k for k in new)
    assert not any("/ING/" in k for k in new)  # the universe's fingerprint does not depend on 1A's policies
    assert len(list(world.glob("data/layer1/1A/validation/seed=42/*/_passed.flag"))) == 2


def test_tampered_sealed_input_is_refused(world: Path) -> None:
    ref = next(world.glob("resources/ref_country_macro/build=*/ref_country_macro.parquet"))
    saved = ref.read_bytes()
    try:
        ref.write_bytes(saved + b"\0")
        res = snakemake(world)
        assert res.returncode != 0
        # the changed reference no longer has the bytes the reference lock pins: S0 refuses it
        # (the ingress reads it first)
        assert "ERROR E_REFERENCE_LOCK_MISMATCH ING: ref_country_macro has sha256" in res.stderr
        assert str(ref) in res.stderr
    finally:
        ref.write_bytes(saved)


def test_bad_config_fails_before_compute(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    res = snakemake(root, "shards=0")
    assert res.returncode != 0
    assert "ERROR E_CONFIG_INVALID config:" in res.stderr and "config field shards" in res.stderr
    assert not root.exists()


def test_killed_run_leaves_no_partial_partition_and_rerun_matches(tiny_world: Path, tmp_path: Path) -> None:
    root = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "1",
        "seg1A",
        "--config",
        "preset=tiny",
        f"output_root={root}",
    ]
    env = {**os.environ, "ENGINE_FAULT_PAUSE": "s2_outlet_count"}
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    target = root / "data/layer1/1A/s2_outlet_count"
    deadline = time.monotonic() + 300
    while not list(target.glob("seed=42/.tmp-*/part-00000.parquet")):
        assert proc.poll() is None and time.monotonic() < deadline, "the paused state never started"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list(target.glob("seed=42/manifest_fingerprint=*/part-00000.parquet"))  # no partial partition
    assert snakemake(root, "--unlock").returncode == 0  # Snakemake's own lock outlives a SIGKILL
    res = snakemake(root, target="seg1A")
    assert res.returncode == 0, res.stderr[-4000:]
    assert not list(root.rglob(".tmp-*"))  # the stale temp was cleaned
    reference = digests(tiny_world)
    rerun = digests(root)
    assert rerun and all(reference[k] == v for k, v in rerun.items())  # 1A and what it needs, same bytes
    shutil.rmtree(root)


def test_dry_run_plans_every_state_and_writes_no_data(tmp_path: Path) -> None:
    root = tmp_path / "plan"
    res = snakemake(root, "-n")
    assert res.returncode == 0, res.stderr[-4000:]
    from engine.states import STATES

    for sdef in STATES.values():
        rule = "ingress_merchant_universe" if sdef.id == "ING" else f"seg{sdef.segment}_{sdef.name}"
        assert f"rule {rule}:" in res.stdout + res.stderr
    assert not (root / "data").exists()
