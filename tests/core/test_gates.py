"""Gates: validation bundles with `_passed.flag`, and reads only through the sealed-inputs list (§6)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from engine.core.errors import EngineError
from engine.core.gates import (
    FLAG,
    INDEX,
    SEALED,
    SealedInputs,
    bundle_digest,
    publish_bundle,
    require_passed,
    verify_bundle,
)
from engine.core.layout import bundle_dir, gate_dir

MF = "ab" * 32
FILES = {
    "checks.json": (b'{"1A.R01":"PASS"}\n', "checks"),
    "a_summary.txt": (b"rows 200\n", "summary"),
    "rng_accounting.json": (b'{"hurdle":{"draws":200}}\n', "rng"),
}


def _expected_digest() -> str:
    h = hashlib.sha256()
    for name in sorted(FILES):
        h.update(FILES[name][0])
    return h.hexdigest()


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    target = bundle_dir(tmp_path, "1A", 42, MF)
    publish_bundle(target, FILES, passed=True, state="1A.S9")
    return target


# --- publish_bundle ----------------------------------------------------------------------------------


def test_publish_bundle_index_and_flag_exact(tmp_path: Path) -> None:
    target = bundle_dir(tmp_path, "1A", 42, MF)
    assert target == tmp_path / "data/layer1/1A/validation/seed=42" / f"manifest_fingerprint={MF}"
    digest = publish_bundle(target, FILES, passed=True, state="1A.S9")
    want = _expected_digest()
    assert digest == want
    index = [
        {"path": name, "role": FILES[name][1], "sha256": hashlib.sha256(FILES[name][0]).hexdigest()}
        for name in sorted(FILES)
    ]
    assert (target / INDEX).read_bytes() == (json.dumps(index, separators=(",", ":")) + "\n").encode()
    assert [e["path"] for e in json.loads((target / INDEX).read_text())] == [
        "a_summary.txt",
        "checks.json",
        "rng_accounting.json",
    ]
    assert (target / FLAG).read_bytes() == f"sha256_hex = {want}\n".encode()
    for name, (data, _role) in FILES.items():
        assert (target / name).read_bytes() == data
    assert sorted(p.name for p in target.iterdir()) == sorted([*FILES, INDEX, FLAG])
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_bundle_digest_is_in_path_order(bundle: Path) -> None:
    index = json.loads((bundle / INDEX).read_text())
    assert bundle_digest(bundle, list(reversed(index))) == _expected_digest()


def test_failed_validation_publishes_without_flag(tmp_path: Path) -> None:
    target = bundle_dir(tmp_path, "1A", 42, MF)
    digest = publish_bundle(target, FILES, passed=False, state="1A.S9")
    assert digest == _expected_digest()
    assert not (target / FLAG).exists()
    assert (target / INDEX).is_file()
    assert verify_bundle(target) == (False, "no _passed.flag (validation did not pass)")


def test_republish_identical_bundle_is_a_noop_and_flagless_then_flagged_conflicts(tmp_path: Path) -> None:
    target = bundle_dir(tmp_path, "1A", 42, MF)
    publish_bundle(target, FILES, passed=True, state="1A.S9")
    assert publish_bundle(target, FILES, passed=True, state="1A.S9") == _expected_digest()
    other = bundle_dir(tmp_path, "1A", 43, MF)
    publish_bundle(other, FILES, passed=False, state="1A.S9")
    with pytest.raises(EngineError) as info:
        publish_bundle(other, FILES, passed=True, state="1A.S9")
    assert info.value.code == "E_WRITE_CONFLICT"
    assert not (other / FLAG).exists()


# --- verify_bundle / require_passed ------------------------------------------------------------------


def test_verify_bundle_pass(bundle: Path) -> None:
    assert verify_bundle(bundle) == (True, "PASS")


def test_verify_fails_after_tampering_evidence(bundle: Path) -> None:
    (bundle / "checks.json").write_bytes(b'{"1A.R01":"FAIL"}\n')
    assert verify_bundle(bundle) == (False, "indexed file changed: checks.json")


def test_verify_fails_after_tampering_evidence_and_its_index_entry(bundle: Path) -> None:
    new = b'{"1A.R01":"FAIL"}\n'
    (bundle / "checks.json").write_bytes(new)
    index = json.loads((bundle / INDEX).read_text())
    for entry in index:
        if entry["path"] == "checks.json":
            entry["sha256"] = hashlib.sha256(new).hexdigest()
    (bundle / INDEX).write_text(json.dumps(index))
    assert verify_bundle(bundle) == (False, "_passed.flag does not match the bundle digest")


def test_verify_fails_after_deleting_an_evidence_file(bundle: Path) -> None:
    (bundle / "rng_accounting.json").unlink()
    assert verify_bundle(bundle) == (False, "indexed file missing: rng_accounting.json")


def test_verify_fails_after_deleting_the_flag(bundle: Path) -> None:
    (bundle / FLAG).unlink()
    assert verify_bundle(bundle) == (False, "no _passed.flag (validation did not pass)")


@pytest.mark.parametrize(
    "flag_text",
    [
        "sha256_hex = " + "0" * 64 + "\n",
        "sha256_hex = {digest}",  # newline dropped
        "sha256_hex={digest}\n",
        "sha256_hex = {digest}\n\n",
        "",
    ],
)
def test_verify_fails_after_editing_the_flag(bundle: Path, flag_text: str) -> None:
    (bundle / FLAG).write_text(flag_text.format(digest=_expected_digest()))
    assert verify_bundle(bundle) == (False, "_passed.flag does not match the bundle digest")


def test_verify_fails_without_index(tmp_path: Path) -> None:
    assert verify_bundle(tmp_path) == (False, "no index.json")


def test_require_passed_returns_the_flag_digest(bundle: Path) -> None:
    assert require_passed(bundle, upstream="1A", state="1B.S0") == _expected_digest()


def test_require_passed_raises_on_a_failed_bundle(bundle: Path) -> None:
    (bundle / FLAG).unlink()
    with pytest.raises(EngineError) as info:
        require_passed(bundle, upstream="1A", state="1B.S0")
    err = info.value
    assert err.code == "E_UPSTREAM_NOT_PASSED"
    assert err.state == "1B.S0"
    assert err.where == str(bundle)
    assert "upstream segment 1A has not passed validation: no _passed.flag" in err.what


def test_require_passed_raises_on_a_missing_bundle(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as info:
        require_passed(tmp_path / "nope", upstream="ING", state="1A.S0")
    assert info.value.code == "E_UPSTREAM_NOT_PASSED"
    assert info.value.what.endswith("no index.json")


# --- SealedInputs ------------------------------------------------------------------------------------


@pytest.fixture
def sealed_root(tmp_path: Path) -> Path:
    ref = tmp_path / "resources" / "ref_mcc" / "build=r1" / "ref_mcc.parquet"
    ref.parent.mkdir(parents=True)
    ref.write_bytes(b"mcc-table")
    pol = tmp_path / "policies" / "1A" / "sectors.yaml"
    pol.parent.mkdir(parents=True)
    pol.write_bytes(b"sectors: {}\n")
    doc = {
        "contract_version": "1.0.0",
        "inputs": [
            {
                "id": "1A/sectors.yaml",
                "kind": "policy",
                "path": "policies/1A/sectors.yaml",
                "sha256": hashlib.sha256(b"sectors: {}\n").hexdigest(),
            },
            {
                "id": "ref_mcc",
                "kind": "reference",
                "path": "resources/ref_mcc/build=r1/ref_mcc.parquet",
                "sha256": hashlib.sha256(b"mcc-table").hexdigest(),
            },
        ],
        "manifest_fingerprint": MF,
        "parameter_hash": "cd" * 32,
        "segment": "1A",
        "upstream": {},
    }
    gdir = gate_dir(tmp_path, "1A", MF)
    assert gdir == tmp_path / "data/layer1/1A/gate" / f"manifest_fingerprint={MF}"
    gdir.mkdir(parents=True)
    (gdir / SEALED).write_text(json.dumps(doc))
    return tmp_path


def test_sealed_inputs_gate_missing(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as info:
        SealedInputs(tmp_path, "1A", MF, "1A.S1")
    err = info.value
    assert err.code == "E_GATE_MISSING"
    assert err.state == "1A.S1"
    assert err.where == str(gate_dir(tmp_path, "1A", MF) / SEALED)


def test_sealed_inputs_read(sealed_root: Path) -> None:
    sealed = SealedInputs(sealed_root, "1A", MF, "1A.S1")
    assert sealed.parameter_hash == "cd" * 32
    assert sorted(sealed.inputs) == ["1A/sectors.yaml", "ref_mcc"]
    path = sealed.path("ref_mcc")
    assert path == sealed_root / "resources/ref_mcc/build=r1/ref_mcc.parquet"
    assert path.read_bytes() == b"mcc-table"
    assert sealed.path("1A/sectors.yaml").read_bytes() == b"sectors: {}\n"


def test_sealed_inputs_unsealed_read(sealed_root: Path) -> None:
    sealed = SealedInputs(sealed_root, "1A", MF, "1A.S2")
    with pytest.raises(EngineError) as info:
        sealed.path("ref_countries")
    err = info.value
    assert err.code == "E_UNSEALED_READ"
    assert err.state == "1A.S2"
    assert "'ref_countries'" in err.what
    assert err.where == str(gate_dir(sealed_root, "1A", MF) / SEALED)


def test_sealed_input_digest_mismatch(sealed_root: Path) -> None:
    ref = sealed_root / "resources/ref_mcc/build=r1/ref_mcc.parquet"
    ref.write_bytes(b"mcc-tablE")
    sealed = SealedInputs(sealed_root, "1A", MF, "1A.S3")
    with pytest.raises(EngineError) as info:
        sealed.path("ref_mcc")
    err = info.value
    assert err.code == "E_SEALED_INPUT_DIGEST_MISMATCH"
    assert err.where == str(ref)
    assert hashlib.sha256(b"mcc-table").hexdigest()[:12] in err.what
    assert hashlib.sha256(b"mcc-tablE").hexdigest()[:12] in err.what
    # the other input is still readable
    assert sealed.path("1A/sectors.yaml").is_file()


def test_sealed_input_missing(sealed_root: Path) -> None:
    ref = sealed_root / "resources/ref_mcc/build=r1/ref_mcc.parquet"
    ref.unlink()
    sealed = SealedInputs(sealed_root, "1A", MF, "1A.S3")
    with pytest.raises(EngineError) as info:
        sealed.path("ref_mcc")
    assert info.value.code == "E_SEALED_INPUT_MISSING"
    assert info.value.where == str(ref)


def test_sealed_parts_of_a_scenario_shard_partition(sealed_root: Path) -> None:
    """seal_upstream's ids for a multi-part layer-2 partition read back in part order, digest-checked."""
    gdir = gate_dir(sealed_root, "1A", MF)
    doc = json.loads((gdir / SEALED).read_text())
    for name in ("part-00001.parquet", "part-00000.parquet"):
        rel = f"data/layer2/5A/mzs/scenario_id=baseline/shard=1/{name}"
        (sealed_root / rel).parent.mkdir(parents=True, exist_ok=True)
        (sealed_root / rel).write_bytes(name.encode())
        doc["inputs"].append(
            {
                "id": f"mzs/scenario_id=baseline/shard=1/{name}",
                "kind": "upstream_dataset",
                "path": rel,
                "sha256": hashlib.sha256(name.encode()).hexdigest(),
            }
        )
    (gdir / SEALED).write_text(json.dumps(doc))
    sealed = SealedInputs(sealed_root, "1A", MF, "1A.S1")
    parts = sealed.parts("mzs", scenario="baseline", shard=1)
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet"]
    with pytest.raises(EngineError) as info:
        sealed.parts("mzs", scenario="baseline", shard=0)
    assert info.value.code == "E_UNSEALED_READ"
    parts[1].write_bytes(b"tampered")
    with pytest.raises(EngineError) as info:
        SealedInputs(sealed_root, "1A", MF, "1A.S1").parts("mzs", scenario="baseline", shard=1)
    assert info.value.code == "E_SEALED_INPUT_DIGEST_MISMATCH"


def test_a_sealed_table_in_two_parts_reads_whole(sealed_root: Path) -> None:
    """An upstream table over PART_ROWS rows is sealed part by part (6A's instruments at the large preset:
    `instruments/part-00000.parquet`, `…/part-00001.parquet`); a state's sealed_table reads both, in order."""
    import polars as pl

    from engine.core.parquet_io import write_parquet
    from engine.core.state import StateContext

    gdir = gate_dir(sealed_root, "1A", MF)
    doc = json.loads((gdir / SEALED).read_text())
    for k, ids in enumerate(([1, 2, 3], [4, 5])):
        rel = f"data/layer3/6A/instruments/seed=42/part-0000{k}.parquet"
        (sealed_root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_parquet(pl.DataFrame({"instrument_id": ids}), sealed_root / rel)
        digest = hashlib.sha256((sealed_root / rel).read_bytes()).hexdigest()
        doc["inputs"].append(
            {
                "id": f"instruments/part-0000{k}.parquet",
                "kind": "upstream_dataset",
                "path": rel,
                "sha256": digest,
            }
        )
    (gdir / SEALED).write_text(json.dumps(doc))
    ctx = StateContext(sealed_root, "1A", "1A.S2", "s2_nb_outlets", MF, 42)
    assert ctx.sealed_table("instruments")["instrument_id"].to_list() == [1, 2, 3, 4, 5]
