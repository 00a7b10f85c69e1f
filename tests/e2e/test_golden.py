"""Same version, same bytes, on any machine: the tiny world against its checked-in digests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import CONTRACT_VERSION
from engine.core import golden
from engine.core.errors import EngineError

pytestmark = pytest.mark.e2e


def test_tiny_world_matches_the_golden_digests(tiny_world: Path) -> None:
    doc = golden.golden()
    assert doc["contract_version"] == CONTRACT_VERSION, f"regenerate: {golden.REGENERATE}"
    files = golden.world_digests(tiny_world)
    changed = sorted(k for k in files.keys() | doc["files"].keys() if files.get(k) != doc["files"].get(k))
    assert not changed, (
        f"{len(changed)} files differ from {golden.GOLDEN_PATH.name} (e.g. {changed[:3]}): "
        f"an output changed; bump CONTRACT_VERSION and run {golden.REGENERATE}"
    )
    assert any("/1A/outlet_catalogue/" in k for k in files) and any("_passed.flag" in k for k in files)


def test_changed_bytes_need_a_version_bump(
    tiny_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tiny_world.json"
    monkeypatch.setattr(golden, "GOLDEN_PATH", path)
    stale = {"contract_version": CONTRACT_VERSION, "files": {"data/x": "0" * 64}, "regenerate": ""}
    path.write_text(json.dumps(stale))
    with pytest.raises(EngineError) as info:
        golden.write_golden(tiny_world)
    assert info.value.code == "E_GOLDEN_VERSION" and json.loads(path.read_text()) == stale
    path.write_text(json.dumps({**stale, "contract_version": "0.0.0"}))  # an older version: re-recorded
    assert golden.write_golden(tiny_world) is True
    assert json.loads(path.read_text())["files"] == golden.world_digests(tiny_world)
    assert golden.write_golden(tiny_world) is False  # the same bytes again: nothing to do
