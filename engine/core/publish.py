"""Write-once publishing: temp sibling, fsync, atomic rename; identical re-publish is a no-op.

A crash at any point leaves either nothing or the complete new partition. Temp siblings carry the
prefix `.tmp-` and the writer's pid, so a later run can tell a dead writer's leftovers from a live one's.
Two writers racing on one target end as one publish plus a no-op (same bytes) or `E_WRITE_CONFLICT`, and a
full disk or a read-only root ends as a coded error naming the target, with the temp removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.core.canonical import canonical_json_bytes, sha256_file, sha256_hex
from engine.core.errors import EngineError

TMP_PREFIX = ".tmp-"
STALE_FOREIGN_SECONDS = 24 * 3600
# temp siblings are named .tmp-<pid>-<host tag>-t<thread>-<name>: on a shared file system (SLURM) a pid
# only means something on the host that wrote it, so another host's temp is removed once it is a day old
HOST_TAG = sha256_hex(socket.gethostname().encode("utf-8"))[:8]


DISK_FULL_FIX = (
    "free space on that file system (or set output_root elsewhere) and rerun; finished outputs are kept"
)
# what a rename onto a directory that another writer already filled raises
_TAKEN = {errno.ENOTEMPTY, errno.EEXIST}
_FULL = {errno.ENOSPC, errno.EDQUOT}
_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def temp_sibling(target: Path) -> Path:
    """The writer's temp name for `target`; the thread id keeps two threads of one process apart."""
    return target.parent / f"{TMP_PREFIX}{os.getpid()}-{HOST_TAG}-t{threading.get_native_id()}-{target.name}"


def coded_os_error(exc: OSError, *, where: str, state: str = "") -> EngineError | None:
    """The coded error for an OS failure the user can fix (full disk, read-only root), else None.

    The one errno mapping of the engine: publishing uses it with the target it was writing, the CLI with
    whatever path the error names.
    """
    if exc.errno in _FULL:
        return EngineError(
            "E_DISK_FULL", "no space left on the device", where=where, fix=DISK_FULL_FIX, state=state
        )
    if exc.errno in _UNWRITABLE:
        return EngineError(
            "E_OUTPUT_ROOT_UNWRITABLE",
            f"cannot write: {os.strerror(exc.errno)}",
            where=where,
            fix="make the output root writable (permissions, read-only mount) or set output_root to a "
            "writable directory, and rerun",
            state=state,
        )
    return None


@contextlib.contextmanager
def coded_os_errors(target: Path, state: str) -> Iterator[None]:
    """Turn a full disk or a read-only root met while writing `target` into its coded error."""
    try:
        yield
    except OSError as exc:
        coded = coded_os_error(exc, where=str(target), state=state)
        if coded is None:
            raise
        raise coded from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(root)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(entry: Path, pid_text: str, host: str) -> bool:
    if host != HOST_TAG:
        try:
            return time.time() - entry.lstat().st_mtime > STALE_FOREIGN_SECONDS
        except FileNotFoundError:  # its writer renamed it into place meanwhile
            return False
    if not pid_text.isdigit():
        return True
    pid = int(pid_text)
    return pid != os.getpid() and not _pid_alive(pid)


def clean_stale_temps(parent: Path) -> list[Path]:
    """Remove temp siblings left by writers that no longer run; return what was removed."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for entry in sorted(parent.iterdir()):
        if not entry.name.startswith(TMP_PREFIX):
            continue
        pid_text, host, _ = ([*entry.name[len(TMP_PREFIX) :].split("-", 2), "", ""])[:3]
        if not _is_stale(entry, pid_text, host):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _tree_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _conflict(target: Path, old: dict[str, str], new: dict[str, str], state: str) -> EngineError:
    def summary(d: dict[str, str]) -> str:
        return ",".join(f"{k}={v[:12]}" for k, v in sorted(d.items())) or "empty"

    return EngineError(
        "E_WRITE_CONFLICT",
        f"output exists with different bytes (existing {summary(old)}; new {summary(new)})",
        where=str(target),
        fix="outputs are write-once: change the config (new fingerprint) or remove the stale output",
        state=state,
    )


@contextlib.contextmanager
def staging_dir(target: Path, *, state: str = "") -> Iterator[Path]:
    """Yield an empty temp sibling of `target`; removed on error, left for `publish_dir` on success."""
    with coded_os_errors(target, state):
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(target.parent)
        tmp = temp_sibling(target)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _filled(target: Path) -> bool:
    return target.is_dir() and any(target.iterdir())


def publish_dir(tmp: Path, target: Path, *, state: str = "") -> bool:
    """Atomically move a filled temp dir to `target`. Returns False when an identical one was there.

    Whoever renames first wins; a writer that finds the target filled (before its rename, or by the
    rename failing because another writer got there in between) compares bytes instead.
    """
    try:
        with coded_os_errors(target, state):
            _fsync_tree(tmp)
            if not _filled(target):
                try:
                    # rename over an empty directory (Snakemake pre-creates output folders) is atomic on POSIX
                    os.rename(tmp, target)
                except OSError as exc:
                    if exc.errno not in _TAKEN:
                        raise
                else:
                    _fsync_dir(target.parent)
                    return True
            old, new = _tree_digests(target), _tree_digests(tmp)
            if old != new:
                raise _conflict(target, old, new, state)
            return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename


def publish_partition(target: Path, write: Callable[[Path], None], *, state: str = "") -> bool:
    """Run `write(tmp_dir)` into a temp sibling and publish it as the partition `target`."""
    with staging_dir(target, state=state) as tmp:
        write(tmp)
    return publish_dir(tmp, target, state=state)


def _remove_temp(tmp: Path) -> None:
    # not unlink(missing_ok=True): on a read-only file system unlinking a missing name fails with EROFS
    if os.path.lexists(tmp):
        tmp.unlink()


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def publish_bytes(target: Path, data: bytes, *, state: str = "") -> bool:
    """Write-once single file: link a fsynced temp file into place (fails if present), then compare."""
    tmp = temp_sibling(target)
    try:
        with coded_os_errors(target, state):
            target.parent.mkdir(parents=True, exist_ok=True)
            clean_stale_temps(target.parent)
            _write_synced(tmp, data)
            try:
                os.link(tmp, target)
            except FileExistsError:
                existing = target.read_bytes()
                if existing != data:
                    raise _conflict(
                        target, {target.name: sha256_hex(existing)}, {target.name: sha256_hex(data)}, state
                    ) from None
                return False
            _fsync_dir(target.parent)
            return True
    finally:
        _remove_temp(tmp)


def publish_json(target: Path, obj: object, *, state: str = "") -> bool:
    return publish_bytes(target, canonical_json_bytes(obj), state=state)


def replace_bytes(target: Path, data: bytes, *, state: str = "") -> None:
    """Atomic overwrite for operational files (logs, run reports) that are not write-once data."""
    tmp = temp_sibling(target)
    try:
        with coded_os_errors(target, state):
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_synced(tmp, data)
            os.replace(tmp, target)
    finally:
        _remove_temp(tmp)
