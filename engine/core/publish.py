"""Write-once publishing: temp sibling, fsync, atomic rename; identical re-publish is a no-op.

A crash at any point leaves either nothing or the complete new partition. Temp siblings carry the
prefix `.tmp-` and the writer's pid, so a later run can tell a dead writer's leftovers from a live one's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.core.canonical import canonical_json_bytes, sha256_file, sha256_hex
from engine.core.errors import EngineError

TMP_PREFIX = ".tmp-"
STALE_FOREIGN_SECONDS = 24 * 3600
# temp siblings are named .tmp-<pid>-<host tag>-<name>: on a shared file system (SLURM) a pid only means
# something on the host that wrote it, so another host's temp is removed only once it is a day old
HOST_TAG = sha256_hex(socket.gethostname().encode("utf-8"))[:8]


def temp_sibling(target: Path) -> Path:
    return target.parent / f"{TMP_PREFIX}{os.getpid()}-{HOST_TAG}-{target.name}"


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
        return time.time() - entry.lstat().st_mtime > STALE_FOREIGN_SECONDS
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
def staging_dir(target: Path) -> Iterator[Path]:
    """Yield an empty temp sibling of `target`; removed on error, left for `publish_dir` on success."""
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


def publish_dir(tmp: Path, target: Path, *, state: str = "") -> bool:
    """Atomically move a filled temp dir to `target`. Returns False when an identical one was there."""
    _fsync_tree(tmp)
    if target.exists() and any(target.iterdir()):
        old, new = _tree_digests(target), _tree_digests(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        if old != new:
            raise _conflict(target, old, new, state)
        return False
    # rename over an empty directory (Snakemake pre-creates output folders) is atomic on POSIX
    os.rename(tmp, target)
    _fsync_dir(target.parent)
    return True


def publish_partition(target: Path, write: Callable[[Path], None], *, state: str = "") -> bool:
    """Run `write(tmp_dir)` into a temp sibling and publish it as the partition `target`."""
    with staging_dir(target) as tmp:
        write(tmp)
    return publish_dir(tmp, target, state=state)


def publish_bytes(target: Path, data: bytes, *, state: str = "") -> bool:
    """Write-once single file: link a fsynced temp file into place (fails if present), then compare."""
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(target.parent)
    tmp = temp_sibling(target)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        try:
            os.link(tmp, target)
        except FileExistsError:
            existing = target.read_bytes()
            if existing != data:
                raise _conflict(
                    target, {target.name: sha256_hex(existing)}, {target.name: sha256_hex(data)}, state
                ) from None
            return False
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(target.parent)
    return True


def publish_json(target: Path, obj: object, *, state: str = "") -> bool:
    return publish_bytes(target, canonical_json_bytes(obj), state=state)


def replace_bytes(target: Path, data: bytes) -> None:
    """Atomic overwrite for operational files (logs, run reports) that are not write-once data."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(target)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
