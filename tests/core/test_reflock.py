"""The reference lock: every installed recipe is locked, a fresh build reproduces the locked bytes, and
forged or rebuilt-differently bytes are refused by the build and by the S0 check."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.cli import main
from engine.core import reflock
from engine.core.errors import EngineError
from engine.refdata.registry import ARTEFACTS, recipe_id

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def test_every_installed_recipe_is_locked() -> None:
    """A builder, shipped file or pinned package changed without regenerating the lock fails here."""
    doc = json.loads(reflock.LOCK_PATH.read_text())
    assert set(doc["artefacts"]) == set(ARTEFACTS)
    for name, entry in doc["artefacts"].items():
        assert entry["recipe_id"] == recipe_id(name), f"{name}: run {reflock.REGENERATE}"
        assert entry["file"] == ARTEFACTS[name].filename
        assert HEX64.match(entry["sha256"]) and entry["bytes"] > 0


def test_fresh_build_reproduces_every_locked_artefact(capsys: pytest.CaptureFixture[str]) -> None:
    """Rebuild all artefacts from scratch (≈25 s): byte-for-byte what the lock pins."""
    assert reflock.lock_references(write=False) == 0
    assert capsys.readouterr().out == f"lock matches a fresh build of {len(ARTEFACTS)} artefacts\n"


def test_unlocked_recipe_is_refused() -> None:
    with pytest.raises(EngineError) as info:
        reflock.locked("ref_mcc", "0" * 64)
    assert info.value.code == "E_REFERENCE_UNLOCKED"
    assert "ref_mcc" in info.value.what and "lock-references --write" in info.value.fix
    with pytest.raises(EngineError) as info:
        reflock.locked("ref_nonexistent", "0" * 64)
    assert info.value.code == "E_REFERENCE_UNLOCKED" and "no entry" in info.value.what


def test_locked_bytes_check(tmp_path: Path) -> None:
    entry = json.loads(reflock.LOCK_PATH.read_text())["artefacts"]["ref_mcc"]
    forged = tmp_path / "ref_mcc.parquet"
    forged.write_bytes(b"not the locked bytes")
    with pytest.raises(EngineError) as info:
        reflock.check_locked_bytes("ref_mcc", entry["recipe_id"], forged, state="1A.S0")
    assert info.value.code == "E_REFERENCE_LOCK_MISMATCH"
    assert info.value.where == str(forged) and entry["sha256"][:12] in info.value.what


def test_ref_build_refuses_bytes_the_lock_does_not_pin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A build whose bytes differ from the lock (here: a lock pinning other bytes) publishes nothing."""
    doc = json.loads(reflock.LOCK_PATH.read_text())
    doc["artefacts"]["ref_mcc"]["sha256"] = "0" * 64
    monkeypatch.setattr(reflock, "_lock", lambda: doc["artefacts"])
    out = tmp_path / "resources" / "ref_mcc" / f"build={recipe_id('ref_mcc')}"
    assert main(["ref-build", "ref_mcc", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "ERROR E_REFERENCE_LOCK_MISMATCH ref-build: ref_mcc has sha256"
    )
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir()] == []  # no temp sibling left behind
