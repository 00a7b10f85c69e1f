"""The output root, checked when the workflow is parsed: a bad root stops the run before any job starts.

Without this check a root that cannot hold the world fails inside Snakemake or a job with a raw OS error
(name too long, not a directory, read-only); here it ends as one coded line naming `output_root`.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.core.errors import EngineError
from engine.core.publish import DISK_FULL_FIX, coded_os_error, temp_sibling

# kernel pseudo file systems: writing there is never meant (and under /proc and /sys it is not data at all)
_PSEUDO = (Path("/proc"), Path("/sys"), Path("/dev"))
_ALLOWED_UNDER_PSEUDO = (Path("/dev/shm"),)
_FIX = "set output_root to a directory path you can create and write (each name at most 255 bytes)"
# below this not even Snakemake's lock and metadata files fit: it would fail with a raw OSError of its own
MIN_FREE_BYTES = 1 << 20


def _invalid(root: Path, what: str) -> EngineError:
    return EngineError(
        "E_OUTPUT_ROOT_INVALID", what, where=f"config field output_root ({root})", fix=_FIX, state="config"
    )


def check_output_root(root: Path) -> None:
    """Create `root` if needed, prove it writable with a temp file that is removed again, and require the
    little free space Snakemake needs to start."""
    under = [p for p in _PSEUDO if root == p or p in root.parents]
    if under and not any(a == root or a in root.parents for a in _ALLOWED_UNDER_PSEUDO):
        raise _invalid(root, f"output root lies in the kernel's {under[0]} file system")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise _invalid(root, "output root exists and is not a directory") from None
    except OSError as exc:
        raise _refused(exc, root, "created") from exc
    probe = temp_sibling(root / ".write-probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise _refused(exc, root, "written") from exc
    try:
        os.write(fd, b"probe")
    except OSError as exc:
        raise _refused(exc, root, "written") from exc
    finally:
        os.close(fd)
        probe.unlink()
    st = os.statvfs(root)
    if st.f_bavail * st.f_frsize < MIN_FREE_BYTES:
        raise EngineError(
            "E_DISK_FULL",
            f"only {st.f_bavail * st.f_frsize // 1024} KiB free on the output root's file system "
            f"(a run needs {MIN_FREE_BYTES >> 10} KiB to start)",
            where=f"config field output_root ({root})",
            fix=DISK_FULL_FIX,
            state="config",
        )


def _refused(exc: OSError, root: Path, verb: str) -> EngineError:
    """A full disk or a read-only file system is that; anything else (a name too long, a file where a folder
    must be) makes the root invalid."""
    coded = coded_os_error(exc, where=f"config field output_root ({root})", state="config")
    return coded or _invalid(root, f"output root cannot be {verb}: {os.strerror(exc.errno or 0)}")
