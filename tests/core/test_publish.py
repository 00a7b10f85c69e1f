"""The write-once law: temp sibling + atomic rename, idempotent re-publish, conflicts (design README §5)."""

from __future__ import annotations

import errno
import hashlib
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engine.core import publish
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
from tests.conftest import mounted_tmpfs, remount


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
    assert tmp.name == f"{TMP_PREFIX}{os.getpid()}-{HOST_TAG}-t{threading.get_native_id()}-{target.name}"
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


# --- racing writers (issue 7): every collision is one publish plus no-ops or E_WRITE_CONFLICT ------------

RACE_ROUNDS = 60
RACERS = 4


def _outcome(fn: Callable[[], bool]) -> str:
    """What one writer saw: published, noop, conflict, or anything else (a failure of the law)."""
    try:
        return "published" if fn() else "noop"
    except EngineError as err:
        return "conflict" if err.code == "E_WRITE_CONFLICT" else f"error {err.line()}"
    except Exception as exc:
        return f"raw {type(exc).__name__}: {exc}"


def _payload(rnd: int, who: int, same: bool) -> bytes:
    return f"round {rnd} writer {0 if same else who}\n".encode() * 512


def _race_round(base: Path, rnd: int, who: int, kind: str, same: bool) -> str:
    data = _payload(rnd, who, same)
    target = base / f"r{rnd}" / "manifest_fingerprint=abc"
    if kind == "bytes":
        return _outcome(lambda: publish_bytes(target.with_suffix(".json"), data, state="race"))
    return _outcome(lambda: publish_partition(target, _writer({"part-00000.parquet": data}), state="race"))


def _racer(base: str, who: int, kind: str, same: bool, barrier, results) -> None:
    """One writer process: every round waits at the barrier, then publishes to that round's target."""
    seen = []
    for rnd in range(RACE_ROUNDS):
        barrier.wait()
        seen.append(_race_round(Path(base), rnd, who, kind, same))
    results.put((who, seen))


def _check_races(base: Path, kind: str, same: bool, outcomes: dict[int, list[str]]) -> None:
    for rnd in range(RACE_ROUNDS):
        seen = sorted(outcomes[who][rnd] for who in range(RACERS))
        loser = "noop" if same else "conflict"
        assert seen == sorted(["published"] + [loser] * (RACERS - 1)), (rnd, seen)
        winner = next(who for who in range(RACERS) if outcomes[who][rnd] == "published")
        parent = base / f"r{rnd}"
        if kind == "bytes":
            assert sorted(p.name for p in parent.iterdir()) == ["manifest_fingerprint=abc.json"]
            assert (parent / "manifest_fingerprint=abc.json").read_bytes() == _payload(rnd, winner, same)
        else:
            assert sorted(p.name for p in parent.iterdir()) == ["manifest_fingerprint=abc"]
            part = parent / "manifest_fingerprint=abc" / "part-00000.parquet"
            assert part.read_bytes() == _payload(rnd, winner, same)


@pytest.mark.parametrize("same", [True, False], ids=["same-bytes", "different-bytes"])
@pytest.mark.parametrize("kind", ["partition", "bytes"])
def test_racing_processes(tmp_path: Path, kind: str, same: bool) -> None:
    """Separate processes (as two Snakemake jobs or two runs would be), released together every round.

    Half the partition rounds start from the empty folder Snakemake pre-creates, half from nothing.
    """
    for rnd in range(0, RACE_ROUNDS if kind == "partition" else 0, 2):
        (tmp_path / f"r{rnd}" / "manifest_fingerprint=abc").mkdir(parents=True)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(RACERS), ctx.Queue()
    procs = [
        ctx.Process(target=_racer, args=(str(tmp_path), who, kind, same, barrier, results))
        for who in range(RACERS)
    ]
    for proc in procs:
        proc.start()
    outcomes = dict(results.get(timeout=120) for _ in procs)
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    _check_races(tmp_path, kind, same, outcomes)


@pytest.mark.parametrize("same", [True, False], ids=["same-bytes", "different-bytes"])
@pytest.mark.parametrize("kind", ["partition", "bytes"])
def test_racing_threads(tmp_path: Path, kind: str, same: bool) -> None:
    """Threads of one process share a pid: their temp names still differ (the thread id), so they race
    only on the target."""
    barrier = threading.Barrier(RACERS)

    def racer(who: int) -> list[str]:
        seen = []
        for rnd in range(RACE_ROUNDS):
            barrier.wait()
            seen.append(_race_round(tmp_path, rnd, who, kind, same))
        return seen

    with ThreadPoolExecutor(RACERS) as pool:
        outcomes = dict(enumerate(pool.map(racer, range(RACERS))))
    _check_races(tmp_path, kind, same, outcomes)


@pytest.mark.parametrize("same", [True, False], ids=["same-bytes", "different-bytes"])
def test_losing_the_rename_race_compares_instead(target: Path, monkeypatch, same: bool) -> None:
    """The window a racing writer can hit: the target was empty when checked, filled before the rename
    (os.rename then fails with ENOTEMPTY). Forced here so the branch runs every time."""
    publish_partition(target, _writer({"part-00000.parquet": b"first"}))
    monkeypatch.setattr(publish, "_filled", lambda _t: False)
    late = _writer({"part-00000.parquet": b"first" if same else b"second"})
    if same:
        assert publish_partition(target, late) is False
    else:
        with pytest.raises(EngineError) as info:
            publish_partition(target, late, state="1A.S1")
        assert info.value.code == "E_WRITE_CONFLICT"
    assert (target / "part-00000.parquet").read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


# --- a full disk or a read-only root: coded errors naming the target, nothing left behind -----------------


def test_full_disk_is_disk_full_and_leaves_nothing(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "mnt", "256k") as mnt:
        target = mnt / "ds" / "manifest_fingerprint=abc"
        with pytest.raises(EngineError) as info:
            publish_partition(target, _writer({"part-00000.parquet": b"x" * (1 << 20)}), state="1B.S4")
        assert info.value.line().startswith(
            f"ERROR E_DISK_FULL 1B.S4: no space left on the device ({target})"
        )
        assert list(target.parent.iterdir()) == []
        for write in (publish_bytes, replace_bytes):
            path = mnt / "gate" / "sealed_inputs.json"
            with pytest.raises(EngineError) as info:
                write(path, b"x" * (1 << 20), state="1B.S0")
            assert info.value.code == "E_DISK_FULL" and info.value.where == str(path)
            assert list(path.parent.iterdir()) == []


def test_read_only_root_is_unwritable(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "mnt", "1m") as mnt:
        (mnt / "ds").mkdir()
        remount(mnt, "ro")
        target = mnt / "ds" / "manifest_fingerprint=abc"
        with pytest.raises(EngineError) as info:
            publish_partition(target, _writer({"part-00000.parquet": b"rows"}), state="1A.S2")
        assert info.value.line() == (
            f"ERROR E_OUTPUT_ROOT_UNWRITABLE 1A.S2: cannot write: Read-only file system ({target}) — "
            "make the output root writable (permissions, read-only mount) or set output_root to a writable "
            "directory, and rerun"
        )
        with pytest.raises(EngineError) as info:
            publish_bytes(mnt / "ds" / "r.json", b"{}")
        assert info.value.code == "E_OUTPUT_ROOT_UNWRITABLE"
        assert list((mnt / "ds").iterdir()) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_rename_failure_removes_the_temp(target: Path, monkeypatch, code: int) -> None:
    """The same without a mount: the file system refuses the final rename."""

    def refuse(src, dst):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "rename", refuse)
    with pytest.raises(EngineError) as info:
        publish_partition(target, _writer({"part-00000.parquet": b"rows"}), state="1A.S2")
    assert info.value.code == ("E_DISK_FULL" if code == errno.ENOSPC else "E_OUTPUT_ROOT_UNWRITABLE")
    assert info.value.where == str(target)
    assert list(target.parent.iterdir()) == []


def test_other_os_errors_stay_raw(target: Path, monkeypatch) -> None:
    """Only what the user can fix is coded; anything else stays a defect with its traceback."""

    def refuse(src, dst):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "rename", refuse)
    with pytest.raises(OSError) as info:
        publish_partition(target, _writer({"part-00000.parquet": b"rows"}))
    assert info.value.errno == errno.EIO
    assert list(target.parent.iterdir()) == []
