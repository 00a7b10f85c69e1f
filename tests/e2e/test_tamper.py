"""Tamper suite: one changed byte in each kind of artefact, a deleted bundle, a forged reference.

Each case runs on its own copy of the session's tiny world: `engine verify` must name the code and the file
and exit 1; the documented recovery (delete what was changed, rerun snakemake) must give back exactly the
clean build's bytes and a verify PASS.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from engine.core.canonical import canonical_json_bytes, sha256_file
from engine.core.parquet_io import write_parquet
from tests.conftest import REPO, run_snakemake

pytestmark = pytest.mark.e2e


def verify(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", "verify", str(root)], cwd=REPO, capture_output=True, text=True
    )


def digests(root: Path) -> dict[str, str]:
    """Every file a world consists of (data, policies, references), by path relative to the root."""
    return {
        str(p.relative_to(root)): sha256_file(p)
        for sub in ("data", "policies", "resources")
        for p in sorted((root / sub).rglob("*"))
        if p.is_file()
    }


def flip_byte(path: Path, offset: int = -100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def one(root: Path, pattern: str) -> Path:
    found = sorted(root.glob(pattern))
    assert len(found) == 1, (pattern, found)
    return found[0]


@pytest.fixture
def world(tiny_world: Path, tmp_path: Path) -> Path:
    root = tmp_path / "world"
    shutil.copytree(tiny_world, root, symlinks=True)
    return root


@pytest.fixture(scope="module")
def clean(tiny_world: Path) -> dict[str, str]:
    res = verify(tiny_world)
    assert res.returncode == 0, res.stdout + res.stderr
    return digests(tiny_world)


def _data(root: Path) -> Path:
    return one(root, "data/layer1/1B/site_locations/seed=42/*/part-00000.parquet")


def _bundle_file(root: Path) -> Path:
    return one(root, "data/layer1/1A/validation/seed=42/*/checks.json")


def _flag(root: Path) -> Path:
    return one(root, "data/layer1/2A/validation/seed=42/*/_passed.flag")


def _policy(root: Path) -> Path:
    return one(root, "policies/1B/placement/sha256=*.yaml")


def _reference(root: Path) -> Path:
    return one(root, "resources/ref_tzdb/build=*/ref_tzdb.parquet")


def _sealed_upstream(root: Path) -> Path:
    return one(root, "data/layer1/2A/gate/seed=42/*/sealed_upstream.json")


def _tamper_sealed_upstream(path: Path) -> None:
    """Re-point one sealed digest (valid JSON, so only the digest check can catch it)."""
    doc = json.loads(path.read_text())
    doc["inputs"][0]["sha256"] = "0" * 64
    path.write_bytes(canonical_json_bytes(doc))


# (the file, how it is changed, the code verify names, the segment whose rerun rebuilds it: the recovery
# reruns that segment's target; everything downstream would only be rebuilt byte for byte, which
# test_tiny_world's fresh one-core build proves for the whole world)
CASES: dict[str, tuple[Callable[[Path], Path], Callable[[Path], None], str, str]] = {
    "data": (_data, flip_byte, "E_DATA_DIGEST_MISMATCH", "seg1B"),
    "bundle": (_bundle_file, lambda p: flip_byte(p, 10), "E_BUNDLE_INVALID", "seg1A"),
    "flag": (_flag, lambda p: flip_byte(p, 20), "E_BUNDLE_INVALID", "seg2A"),
    "policy": (_policy, lambda p: flip_byte(p, 3), "E_SEALED_INPUT_DIGEST_MISMATCH", "seg1B"),
    "reference": (_reference, flip_byte, "E_SEALED_INPUT_DIGEST_MISMATCH", "seg2A"),
    "sealed_upstream": (_sealed_upstream, _tamper_sealed_upstream, "E_GATE_INVALID", "seg2A"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_changed_byte_fails_verify_and_recovers(case: str, world: Path, clean: dict[str, str]) -> None:
    locate, tamper, code, target = CASES[case]
    victim = locate(world)
    tamper(victim)
    res = verify(world)
    assert res.returncode == 1, res.stdout + res.stderr
    in_bundle = case in ("bundle", "flag")  # a bundle's own files fail the bundle as a whole
    named = victim.parent if in_bundle else victim
    assert re.search(rf"^  {code} {re.escape(str(named))}: ", res.stdout, re.M), res.stdout
    # the documented recovery: delete what was changed (a bundle file: its bundle), rerun
    if in_bundle:
        shutil.rmtree(victim.parent)
    else:
        victim.unlink()
    rerun = run_snakemake(world, target=target)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert digests(world) == clean
    assert verify(world).returncode == 0


def test_deleted_index_fails(world: Path) -> None:
    bundle = one(world, "data/layer1/1B/validation/seed=42/*")
    (bundle / "index.json").unlink()
    res = verify(world)
    assert res.returncode == 1
    assert f"FAIL {bundle}\n  E_BUNDLE_INVALID {bundle}: no index.json" in res.stdout


def test_deleted_bundle_fails_and_recovers(world: Path, clean: dict[str, str]) -> None:
    bundle = one(world, "data/layer1/1B/validation/seed=42/*")
    shutil.rmtree(bundle)
    res = verify(world)
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    # 1B's own partitions are unvouched now (site_locations is still sealed by 2A's gate), and 2A's gate
    # names the 1B flag it sealed and lost
    s5 = one(world, "data/layer1/1B/s5_site_tile/seed=42/*")
    assert f"  E_BUNDLE_MISSING {s5}: 1 data file(s) no validation bundle vouches for" in lines
    assert any(line.startswith(f"  E_BUNDLE_MISSING {bundle}: upstream 1B's flag") for line in lines)
    rerun = run_snakemake(world, target="seg1B")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert digests(world) == clean and verify(world).returncode == 0


def _forge_ref_countries(root: Path) -> Path:
    """FR made ineligible, written deterministically, with a provenance.json rewritten to match."""
    ref = one(root, "resources/ref_countries/build=*/ref_countries.parquet")
    df = pl.read_parquet(ref)
    df = df.with_columns(eligible=pl.when(pl.col("iso2") == "FR").then(False).otherwise(pl.col("eligible")))
    write_parquet(df, ref)
    prov_path = ref.parent / "provenance.json"
    prov = json.loads(prov_path.read_text())
    prov["sha256"] = sha256_file(ref)
    prov_path.write_bytes(canonical_json_bytes(prov))
    return ref


def test_forged_reference_with_rewritten_provenance_is_refused(world: Path, tmp_path: Path) -> None:
    ref = _forge_ref_countries(world)
    res = verify(world)
    assert res.returncode == 1
    assert f"  E_SEALED_INPUT_DIGEST_MISMATCH {ref}: " in res.stdout
    # a fresh root that starts from the forged reference cannot build a world from it
    fresh = tmp_path / "fresh"
    rel = ref.relative_to(world)
    (fresh / rel).parent.mkdir(parents=True)
    shutil.copy2(ref, fresh / rel)
    shutil.copy2(ref.parent / "provenance.json", fresh / rel.parent / "provenance.json")
    built = run_snakemake(fresh, target="seg1A")
    assert built.returncode != 0
    errors = [line for line in built.stderr.splitlines() if line.startswith("ERROR ")]
    assert errors and errors[0].startswith("ERROR E_REFERENCE_LOCK_MISMATCH ING: ref_countries has sha256")
    assert not list(fresh.glob("data/**/*.parquet"))  # nothing was built on it


def test_clean_world_passes_bundle_by_bundle(world: Path) -> None:
    res = verify(world)
    assert res.returncode == 0, res.stdout
    bundles = sorted(world.glob("data/layer*/*/validation/seed=42/*"))
    assert [b.parts[-4] for b in bundles] == ["1A", "1B", "2A", "2B", "3A", "3B", "5A", "5B", "6A", "6B"]
    assert res.stdout == "".join(f"PASS {b}\n" for b in bundles)
    assert re.search(
        rf"^verify: {len(bundles)} bundles, \d+ files \([\d.]+ MiB\) re-digested in [\d.]+ s: all PASS$",
        res.stderr,
        re.M,
    )
    one_bundle = verify(bundles[0])  # a single bundle is verified with its gate, its data and its inputs
    assert one_bundle.returncode == 0 and one_bundle.stdout == f"PASS {bundles[0]}\n"


def test_stray_partition_fails_and_temp_siblings_do_not(world: Path) -> None:
    part = _data(world)
    stray = part.parent.parent.parent / "seed=7" / part.parent.name
    stray.mkdir(parents=True)
    shutil.copy2(part, stray / part.name)
    (part.parent.parent / ".tmp-1-deadbeef-x").mkdir()  # a killed writer's leftover is not data
    res = verify(world)
    assert res.returncode == 1
    assert res.stdout.endswith(
        f"FAIL {stray}\n  E_BUNDLE_MISSING {stray}: 1 data file(s) no validation bundle vouches for\n"
    )


def test_empty_root_is_a_user_error(tmp_path: Path) -> None:
    res = verify(tmp_path)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith(f"ERROR E_VERIFY_NOTHING verify: no validation bundle or data ({tmp_path})")
