"""1A.S0: what the gate seals, its receipt, the universe checks, and refusal of tampered inputs."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from engine.core.contracts import dataset_file
from engine.core.errors import EngineError
from engine.core.gates import RECEIPT, SEALED
from engine.core.layout import gate_dir
from engine.segments.l1.s1a import s0_gate
from tests.conftest import tiny_plan

MF = "ab" * 32


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy(tiny_world: Path, tmp_path: Path) -> Path:
    root = tmp_path / "world"
    shutil.copytree(tiny_world, root, symlinks=True)
    return root


def _gate(root: Path) -> Path:
    return gate_dir(root, "1A", tiny_plan(root)["1A"].manifest_fingerprint)


def _ref(root: Path, name: str) -> pl.DataFrame:
    ref = next(r for r in tiny_plan(root)["1A"].references if r.name == name)
    return pl.read_parquet(root / ref.relpath)


def test_sealed_inputs_list_everything_with_true_digests(tiny_world: Path) -> None:
    plan = tiny_plan(tiny_world)
    p1a = plan["1A"]
    doc = json.loads((_gate(tiny_world) / SEALED).read_text())
    inputs = {i["id"]: i for i in doc["inputs"]}
    want = {p.key for p in p1a.policies} | {r.name for r in p1a.references} | {"merchant_universe"}
    assert set(inputs) == want
    assert len(doc["inputs"]) == len(want)  # no id sealed twice
    assert [i["id"] for i in doc["inputs"]] == sorted(want)
    for entry in doc["inputs"]:
        assert not Path(entry["path"]).is_absolute() and ".." not in Path(entry["path"]).parts
        assert entry["sha256"] == _sha(tiny_world / entry["path"]), entry["id"]
    for pol in p1a.policies:
        assert inputs[pol.key] == {"id": pol.key, "kind": "policy", "path": pol.relpath, "sha256": pol.sha256}
    for ref in p1a.references:
        assert inputs[ref.name]["kind"] == "reference" and inputs[ref.name]["path"] == ref.relpath
    universe = dataset_file(tiny_world, "merchant_universe", mf=plan["ING"].manifest_fingerprint)
    assert inputs["merchant_universe"]["kind"] == "upstream_dataset"
    assert inputs["merchant_universe"]["path"] == str(universe.relative_to(tiny_world))
    assert doc["manifest_fingerprint"] == p1a.manifest_fingerprint
    assert doc["parameter_hash"] == p1a.parameter_hash
    assert doc["upstream"] == {"ING": plan["ING"].manifest_fingerprint}


def test_receipt_passes_and_pins_the_sealed_list(tiny_world: Path) -> None:
    gate = _gate(tiny_world)
    receipt = json.loads((gate / RECEIPT).read_text())
    assert receipt["status"] == "PASS"
    assert receipt["sealed_inputs_sha256"] == _sha(gate / SEALED)
    p1a = tiny_plan(tiny_world)["1A"]
    assert receipt["manifest_fingerprint"] == p1a.manifest_fingerprint
    assert receipt["parameter_hash"] == p1a.parameter_hash
    assert {"universe_homes", "universe_mccs", "universe_schema"} <= set(receipt["checks_passed"])


def _universe(homes: list[str], mccs: list[int]) -> pl.DataFrame:
    n = len(homes)
    return pl.DataFrame(
        {
            "manifest_fingerprint": pl.Series([MF] * n, dtype=pl.String),
            "merchant_id": pl.Series(range(1, n + 1), dtype=pl.UInt64),
            "mcc": pl.Series(mccs, dtype=pl.UInt16),
            "sector": pl.Series(["grocery"] * n, dtype=pl.String),
            "channel": pl.Series(["card_present"] * n, dtype=pl.String),
            "home_country_iso": pl.Series(homes, dtype=pl.String),
        }
    )


def test_check_universe_codes(tiny_world: Path) -> None:
    countries, mcc = _ref(tiny_world, "ref_countries"), _ref(tiny_world, "ref_mcc")
    assert not countries.filter(pl.col("iso2") == "AQ")["eligible"][0]
    assert 1234 not in mcc["mcc"].to_list()
    s0_gate._check_universe(_universe(["US", "DE"], [5411, 5411]), countries, mcc, "t")  # accepted
    with pytest.raises(EngineError) as err:
        s0_gate._check_universe(_universe(["US", "AQ"], [5411, 5411]), countries, mcc, "t")
    assert err.value.code == "E_1A_HOME_UNKNOWN" and "AQ" in err.value.what
    with pytest.raises(EngineError) as err:
        s0_gate._check_universe(_universe(["US", "DE"], [5411, 1234]), countries, mcc, "t")
    assert err.value.code == "E_1A_MCC_UNKNOWN" and "1234" in err.value.what
    wrong_dtype = _universe(["US"], [5411]).with_columns(pl.col("mcc").cast(pl.Int64))
    with pytest.raises(EngineError) as err:
        s0_gate._check_universe(wrong_dtype, countries, mcc, "t")
    assert err.value.code == "E_SCHEMA"


def test_tampered_universe_is_refused(tiny_world: Path, tmp_path: Path) -> None:
    root = _copy(tiny_world, tmp_path)
    plan = tiny_plan(root)
    shutil.rmtree(_gate(root))
    universe = dataset_file(root, "merchant_universe", mf=plan["ING"].manifest_fingerprint)
    universe.write_bytes(universe.read_bytes() + b"\0")
    with pytest.raises(EngineError) as err:
        s0_gate.run(root, plan["1A"].spec())
    assert err.value.code == "E_SEALED_INPUT_DIGEST_MISMATCH"
    assert err.value.where == str(universe)
    assert not _gate(root).exists()  # nothing sealed


def test_edited_policy_is_refused(tiny_world: Path, tmp_path: Path) -> None:
    root = _copy(tiny_world, tmp_path)
    plan = tiny_plan(root)
    shutil.rmtree(_gate(root))
    pol = next(p for p in plan["1A"].policies if p.key == "1A/crossborder.yaml")
    path = root / pol.relpath
    path.write_bytes(path.read_bytes() + b"# edited\n")
    with pytest.raises(EngineError) as err:
        s0_gate.run(root, plan["1A"].spec())
    assert err.value.code == "E_SEALED_INPUT_DIGEST_MISMATCH"
    assert err.value.where == str(path)
    assert not _gate(root).exists()


def test_rerun_is_a_no_op_and_rebuild_is_byte_identical(tiny_world: Path, tmp_path: Path) -> None:
    root = _copy(tiny_world, tmp_path)
    spec = tiny_plan(root)["1A"].spec()
    gate = _gate(root)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(gate.iterdir())}
    assert set(before) == {SEALED, RECEIPT}
    s0_gate.run(root, spec)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(gate.iterdir())} == before
    shutil.rmtree(gate)
    s0_gate.run(root, spec)
    assert {p.name: p.read_bytes() for p in sorted(gate.iterdir())} == {k: v[0] for k, v in before.items()}
