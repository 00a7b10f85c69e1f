"""The write-once law: temp sibling + atomic rename, idempotent re-publish, conflicts (design README §5)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.core.errors import EngineError
from engine.core.publish import (
    HOST_TAG,
    TMP_PREFIX,
    clean_stale_temps,
    publish_bytes,
    publish_json,
    publish_partition,
    replace_bytes,
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _writer(files: dict[str, bytes]):
    def write(tmp: Path) -> None:
        for name, data in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(data)

    return write


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "ds" / "seed=42" / "manifest_fingerprint=abc"


@pytest.fixture
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


# --- publish_partition -------------------------------------------------------------------------------


def test_publish_partition_stages_in_a_temp_sibling_and_renames_once(target: Path, monkeypatch) -> None:
    seen: dict[str, object] = {}
    renames: list[tuple[str, str]] = []
    real_rename = os.rename

    def spy(src, dst):
        renames.append((str(src), str(dst)))
        return real_rename(src, dst)

    def write(tmp: Path) -> None:
        seen["tmp"] = tmp
        seen["target_exists_during_write"] = target.exists()
        (tmp / "part-00000.parquet").write_bytes(b"rows")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "x.json").write_bytes(b"{}\n")

    monkeypatch.setattr(os, "rename", spy)
    assert publish_partition(target, write) is True
    tmp = seen["tmp"]
    assert isinstance(tmp, Path)
    assert tmp.parent == target.parent
    assert tmp.name == f"{TMP_PREFIX}{os.getpid()}-{HOST_TAG}-{target.name}"
    assert seen["target_exists_during_write"] is False
    assert renames == [(str(tmp), str(target))]
    assert (target / "part-00000.parquet").read_bytes() == b"rows"
    assert (target / "sub" / "x.json").read_bytes() == b"{}\n"
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_identical_republish_is_a_noop(target: Path) -> None:
    files = {"part-00000.parquet": b"rows-v1", "meta.json": b"{}\n"}
    assert publish_partition(target, _writer(files)) is True
    before = {p.name: _stat(p) for p in [target, *target.iterdir()]}
    assert publish_partition(target, _writer(files)) is False
    after = {p.name: _stat(p) for p in [target, *target.iterdir()]}
    assert after == before
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_different_content_is_a_write_conflict_and_keeps_old_bytes(target: Path) -> None:
    publish_partition(target, _writer({"part-00000.parquet": b"old"}))
    with pytest.raises(EngineError) as info:
        publish_partition(target, _writer({"part-00000.parquet": b"new"}), state="1A.S1")
    err = info.value
    assert err.code == "E_WRITE_CONFLICT"
    assert err.state == "1A.S1"
    assert err.where == str(target)
    assert _sha(b"old")[:12] in err.what and _sha(b"new")[:12] in err.what
    assert err.line().startswith("ERROR E_WRITE_CONFLICT 1A.S1: ")
    assert (target / "part-00000.parquet").read_bytes() == b"old"
    assert sorted(p.name for p in target.iterdir()) == ["part-00000.parquet"]
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_extra_file_is_a_write_conflict(target: Path) -> None:
    publish_partition(target, _writer({"a": b"1"}))
    with pytest.raises(EngineError) as info:
        publish_partition(target, _writer({"a": b"1", "b": b"2"}))
    assert info.value.code == "E_WRITE_CONFLICT"
    assert sorted(p.name for p in target.iterdir()) == ["a"]


def test_publish_into_pre_existing_empty_dir(target: Path) -> None:
    target.mkdir(parents=True)  # Snakemake pre-creates output directories
    assert publish_partition(target, _writer({"part-00000.parquet": b"rows"})) is True
    assert (target / "part-00000.parquet").read_bytes() == b"rows"
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_failing_writer_leaves_nothing(target: Path) -> None:
    def write(tmp: Path) -> None:
        (tmp / "part-00000.parquet").write_bytes(b"half")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError, match="writer died"):
        publish_partition(target, write)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_publish_partition_cleans_a_dead_writers_temp(target: Path, dead_pid: int) -> None:
    target.parent.mkdir(parents=True)
    stale = target.parent / f"{TMP_PREFIX}{dead_pid}-{HOST_TAG}-{target.name}-old"
    stale.mkdir()
    (stale / "part-00000.parquet").write_bytes(b"partial")
    publish_partition(target, _writer({"part-00000.parquet": b"rows"}))
    assert not stale.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


# --- clean_stale_temps -------------------------------------------------------------------------------


def test_clean_stale_temps_removes_dead_keeps_live(tmp_path: Path, dead_pid: int, live_pid: int) -> None:
    dead_dir = tmp_path / f"{TMP_PREFIX}{dead_pid}-{HOST_TAG}-x"
    dead_dir.mkdir()
    (dead_dir / "f").write_bytes(b"1")
    dead_file = tmp_path / f"{TMP_PREFIX}{dead_pid}-{HOST_TAG}-y.json"
    dead_file.write_bytes(b"1")
    junk = tmp_path / f"{TMP_PREFIX}notapid-{HOST_TAG}-z"
    junk.mkdir()
    live_dir = tmp_path / f"{TMP_PREFIX}{live_pid}-{HOST_TAG}-x"
    live_dir.mkdir()
    parent_dir = tmp_path / f"{TMP_PREFIX}{os.getppid()}-{HOST_TAG}-x"
    parent_dir.mkdir()
    keep = tmp_path / "tmp-not-hidden"
    keep.mkdir()
    real = tmp_path / "manifest_fingerprint=abc"
    real.mkdir()

    removed = clean_stale_temps(tmp_path)

    assert removed == sorted([dead_dir, dead_file, junk])
    assert not dead_dir.exists() and not dead_file.exists() and not junk.exists()
    assert live_dir.is_dir() and parent_dir.is_dir() and keep.is_dir() and real.is_dir()


def test_clean_stale_temps_on_missing_parent(tmp_path: Path) -> None:
    assert clean_stale_temps(tmp_path / "nope") == []


# --- publish_bytes / publish_json / replace_bytes ----------------------------------------------------


def test_publish_bytes_write_once(tmp_path: Path) -> None:
    path = tmp_path / "gate" / "sealed_inputs.json"
    assert publish_bytes(path, b"v1\n") is True
    assert path.read_bytes() == b"v1\n"
    before = _stat(path)
    assert publish_bytes(path, b"v1\n") is False
    assert _stat(path) == before
    with pytest.raises(EngineError) as info:
        publish_bytes(path, b"v2\n", state="1A.S0")
    err = info.value
    assert err.code == "E_WRITE_CONFLICT"
    assert err.state == "1A.S0"
    assert err.where == str(path)
    assert _sha(b"v1\n")[:12] in err.what and _sha(b"v2\n")[:12] in err.what
    assert path.read_bytes() == b"v1\n"
    assert _stat(path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["sealed_inputs.json"]


def test_publish_bytes_cleans_dead_temp(tmp_path: Path, dead_pid: int) -> None:
    stale = tmp_path / f"{TMP_PREFIX}{dead_pid}-{HOST_TAG}-r.json"
    stale.write_bytes(b"partial")
    publish_bytes(tmp_path / "r.json", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_publish_json_is_canonical(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    assert publish_json(path, {"b": 1, "a": "é"}) is True
    assert path.read_bytes() == '{"a":"é","b":1}\n'.encode()
    assert publish_json(path, {"a": "é", "b": 1}) is False
    with pytest.raises(EngineError) as info:
        publish_json(path, {"a": "é", "b": 2})
    assert info.value.code == "E_WRITE_CONFLICT"


def test_replace_bytes_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "run_report.json"
    replace_bytes(path, b"one")
    assert path.read_bytes() == b"one"
    replace_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    assert sorted(p.name for p in path.parent.iterdir()) == ["run_report.json"]


def test_clean_stale_temps_leaves_another_hosts_fresh_temp(tmp_path: Path, dead_pid: int) -> None:
    fresh = tmp_path / f"{TMP_PREFIX}{dead_pid}-0000ffff-x"
    old = tmp_path / f"{TMP_PREFIX}{dead_pid}-0000ffff-y"
    fresh.mkdir()
    old.mkdir()
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    assert clean_stale_temps(tmp_path) == [old]
    assert fresh.exists() and not old.exists()
