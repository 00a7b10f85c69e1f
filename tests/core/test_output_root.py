"""The output root is checked at parse time: a root that cannot hold a world is one coded line, no crash."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest

from engine.core.errors import EngineError
from engine.core.output_root import check_output_root
from tests.conftest import mounted_tmpfs, remount


def _code(root: Path) -> EngineError:
    with pytest.raises(EngineError) as info:
        check_output_root(root)
    err = info.value
    assert err.state == "config" and f"config field output_root ({root})" == err.where
    assert err.line().startswith(f"ERROR {err.code} config: ")
    return err


def test_a_missing_root_is_created_and_the_probe_removed(tmp_path: Path) -> None:
    root = tmp_path / "a" / "world"
    check_output_root(root)
    assert root.is_dir() and list(root.iterdir()) == []
    check_output_root(root)  # an existing, writable root is fine too
    assert list(root.iterdir()) == []


def test_a_300_character_root_name_is_invalid(tmp_path: Path) -> None:
    root = tmp_path / ("w" * 300)
    err = _code(root)
    assert err.code == "E_OUTPUT_ROOT_INVALID"
    assert "File name too long" in err.what
    assert not os.path.exists(root)


@pytest.mark.parametrize("root", [Path("/proc/engine-world"), Path("/sys/engine-world"), Path("/dev/null")])
def test_kernel_file_systems_are_invalid(root: Path) -> None:
    err = _code(root)
    assert err.code == "E_OUTPUT_ROOT_INVALID"
    assert f"kernel's /{root.parts[1]} file system" in err.what
    assert root == Path("/dev/null") or not root.exists()


def test_an_existing_file_is_invalid(tmp_path: Path) -> None:
    root = tmp_path / "world"
    root.write_text("not a directory")
    err = _code(root)
    assert (err.code, err.what) == ("E_OUTPUT_ROOT_INVALID", "output root exists and is not a directory")
    assert root.read_text() == "not a directory"


def test_a_root_below_a_file_is_invalid(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    err = _code(tmp_path / "f" / "world")
    assert err.code == "E_OUTPUT_ROOT_INVALID" and "Not a directory" in err.what


def test_a_read_only_mount_is_unwritable(tmp_path: Path) -> None:
    """Root ignores chmod, so a read-only tmpfs: both an existing root and one still to be created."""
    with mounted_tmpfs(tmp_path / "mnt", "1m") as mnt:
        (mnt / "world").mkdir()
        remount(mnt, "ro")
        for root in (mnt / "world", mnt / "new" / "world"):
            err = _code(root)
            assert err.code == "E_OUTPUT_ROOT_UNWRITABLE"
            assert err.what == "cannot write: Read-only file system"
        assert os.listdir(mnt) == ["world"] and os.listdir(mnt / "world") == []


def test_a_full_disk_is_disk_full(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "mnt", "64k") as mnt:
        (mnt / "world").mkdir()
        with open(mnt / "filler", "wb") as fh, pytest.raises(OSError):
            fh.write(b"\0" * (1 << 20))
        err = _code(mnt / "world")
        assert err.code == "E_DISK_FULL"
        assert os.listdir(mnt / "world") == []


def test_too_little_free_space_to_start_is_disk_full(tmp_path: Path) -> None:
    """Below 1 MiB not even Snakemake's lock file fits (it would fail with a raw OSError of its own)."""
    with mounted_tmpfs(tmp_path / "mnt", "2m") as mnt:
        (mnt / "filler").write_bytes(b"\0" * (1 << 20) + b"\0" * (1 << 19))
        err = _code(mnt / "world")
        assert err.code == "E_DISK_FULL"
        assert re.fullmatch(
            r"only \d+ KiB free on the output root's file system \(a run needs 1024 KiB to start\)", err.what
        )
        (mnt / "filler").unlink()
        check_output_root(mnt / "world")


def test_probe_failure_without_a_mount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where mounting is not allowed, the same mapping through a probe that the file system refuses."""
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if ".write-probe" in str(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    err = _code(tmp_path / "world")
    assert err.code == "E_OUTPUT_ROOT_UNWRITABLE"


def test_dev_shm_is_an_ordinary_place(tmp_path: Path) -> None:
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm here")
    root = Path("/dev/shm") / f"engine-root-test-{os.getpid()}"
    try:
        check_output_root(root)
        assert root.is_dir()
    finally:
        root.rmdir()
