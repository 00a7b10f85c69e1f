"""Faults on the real workflow (issue 9): kills, a bad, read-only or full output root, two runs on one root.

Every case asserts what the user sees last and that, once the fault is gone, `snakemake --unlock` and a
rerun leave the same data bytes as the clean session world. Each case starts from a copy of that world with
a few partitions deleted and runs the target of the fault's segment (`seg2A` for a 2A partition), so only
that segment's states from the fault point on run again: the segments downstream would only be rebuilt
byte for byte, which test_tiny_world's fresh one-core build proves for the whole world. The full SIGKILL
sweep over the DAG is marked `slow`; three kill points run by default.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, data_digests, mounted_tmpfs, read_only_bind, run_snakemake, snakemake_cmd

pytestmark = pytest.mark.e2e

DEADLINE_S = 300
UNWRITABLE_FIX = (
    "make the output root writable (permissions, read-only mount) or set output_root to a writable "
    "directory, and rerun"
)
FULL_FIX = (
    "free space on that file system (or set output_root elsewhere) and rerun; finished outputs are kept"
)
INVALID_FIX = "set output_root to a directory path you can create and write (each name at most 255 bytes)"


def copy_world(tiny_world: Path, root: Path, *victims: str) -> Path:
    """A private copy of the clean world without the `victims` (`SEG/dataset` under data/layer1), and
    without the old job logs, so a job's log appearing means that job started."""
    shutil.copytree(tiny_world, root, symlinks=True)
    for sub in ("logs", "benchmarks"):
        shutil.rmtree(root / sub, ignore_errors=True)
    for victim in victims:
        shutil.rmtree(root / "data" / "layer1" / victim)
    return root


def target_of(victim: str) -> str:
    """The target that rebuilds a `SEG/dataset` victim: its segment's."""
    return f"seg{victim.split('/')[0]}"


def start(root: Path, out: Path, target: str, **env: str) -> subprocess.Popen[bytes]:
    """Snakemake on the tiny preset in its own process group (so a kill can take the jobs with it)."""
    with open(out, "wb") as fh:
        return subprocess.Popen(
            snakemake_cmd(root, target=target),
            cwd=REPO,
            env={**os.environ, **env},
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(done: Callable[[], object], proc: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        assert proc is None or proc.poll() is None, f"snakemake ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def paused_temp(root: Path, dataset: str) -> Callable[[], list[Path]]:
    """The paused state's temp partition file: its Parquet is written, the rename not yet done."""
    return lambda: list(root.glob(f"data/layer1/{dataset}/**/.tmp-*/part-00000.parquet"))


def job_started(root: Path, job: str) -> Callable[[], list[Path]]:
    """The job's log (`SEG/name`), which its shell line creates first."""
    return lambda: list(root.glob(f"logs/{job}/**/job.log"))


def writer_pid(temp_file: Path) -> int:
    """The pid in a temp partition's name, `.tmp-<pid>-<host>-t<thread>-<target>`: the paused job."""
    return int(temp_file.parent.name.split("-")[1])


@contextlib.contextmanager
def run_until(
    root: Path, out: Path, find: Callable[[], list[Path]], target: str, pause: str = ""
) -> Iterator[Run]:
    """Snakemake (`target`) running until `find` finds something (with `pause`, that dataset's publish holds
    there); whatever happens in the block, nothing of the run outlives it."""
    resume = out.with_suffix(".resume")
    proc = start(root, out, target, ENGINE_FAULT_PAUSE=pause.split("/")[-1], ENGINE_FAULT_RESUME=str(resume))
    try:
        wait_until(find, proc, f"{pause or 'the job'} in {root}")
        yield Run(proc, find()[0], resume)  # a paused temp or a job's log stays where it was found
    finally:
        resume.touch()
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass(frozen=True)
class Run:
    proc: subprocess.Popen[bytes]
    found: Path
    resume: Path


def last_line(text: str) -> str:
    return text.rstrip("\n").rsplit("\n", 1)[-1]


def assert_recovers(root: Path, tiny_world: Path, target: str) -> None:
    """Unlock, rerun `target`, and the world is byte-identical to the clean one, with no temp left."""
    assert run_snakemake(root, "--unlock").returncode == 0
    res = run_snakemake(root, target=target)
    assert res.returncode == 0, res.stderr[-4000:]
    assert not list(root.rglob(".tmp-*"))
    assert data_digests(root) == data_digests(tiny_world)


# --- SIGKILL at points across the DAG ---------------------------------------------------------------------


@dataclass(frozen=True)
class KillPoint:
    """Kill while `pause` (`SEG/dataset`) is inside its publish, or as soon as `job` (`SEG/name`) started.

    mode: `group` kills Snakemake and its jobs; `job` only the job (Snakemake sees it fail); `snakemake`
    only Snakemake, whose job lives on and publishes after it is gone (the rerun must redo it: incomplete).
    """

    victims: tuple[str, ...]
    pause: str = ""
    job: str = ""
    mode: str = "group"

    @property
    def id(self) -> str:
        return f"{self.mode}-{self.pause or self.job}"


def kill_at(point: KillPoint, root: Path, out: Path) -> None:
    find = paused_temp(root, point.pause) if point.pause else job_started(root, point.job)
    with run_until(root, out, find, target_of(point.victims[0]), point.pause) as run:
        if point.mode == "group":
            os.killpg(run.proc.pid, signal.SIGKILL)
        elif point.mode == "job":
            os.kill(writer_pid(run.found), signal.SIGKILL)
            assert run.proc.wait(timeout=DEADLINE_S) != 0
        else:
            run.proc.kill()
            run.proc.wait()
            run.resume.touch()
            wait_until(lambda: not group_alive(run.proc.pid), None, "the orphaned job to finish")
    if point.mode == "job":  # the killed job printed no ERROR line: onerror names its log instead
        seg = point.pause.split("/")[0]
        assert re.fullmatch(
            rf"rule seg{seg}_s\d_\w+ failed without an engine ERROR line; see \S+/job\.log",
            last_line(out.read_text()),
        )
    if point.pause and point.mode != "snakemake":
        published = root.glob(f"data/layer1/{point.pause}/**/manifest_fingerprint=*/part-00000.parquet")
        assert not list(published)  # the temp may stay (a dead writer's), a partial partition may not


DEFAULT_POINTS = [
    KillPoint(("2A/s1_tz_lookup",), pause="2A/s1_tz_lookup"),
    KillPoint(("2A/tz_transitions",), pause="2A/tz_transitions", mode="job"),
    KillPoint(("2A/tz_dst_windows",), pause="2A/tz_dst_windows", mode="snakemake"),
]
SWEEP_POINTS = [
    KillPoint(("ING/merchant_universe",), job="ING/merchant_universe"),
    KillPoint(("1A/s1_hurdle",), pause="1A/s1_hurdle"),
    KillPoint(("1A/s4_foreign_count",), pause="1A/s4_foreign_count", mode="job"),
    KillPoint(("1A/ccy_country_weights",), pause="1A/ccy_country_weights"),
    KillPoint(
        ("1A/outlet_catalogue", "1A/merchant_catalogue"), pause="1A/outlet_catalogue", mode="snakemake"
    ),
    KillPoint(("1A/validation",), job="1A/s9_validation"),
    KillPoint(("1B/tile_index",), pause="1B/tile_index"),
    KillPoint(("1B/s3_requirements",), pause="1B/s3_requirements", mode="job"),
    KillPoint(("1B/tile_sampler",), pause="1B/tile_sampler"),
    KillPoint(("1B/s6_site_jitter",), pause="1B/s6_site_jitter", mode="snakemake"),
    KillPoint(("1B/site_locations",), pause="1B/site_locations"),
    KillPoint(("2A/gate",), job="2A/s0_gate"),
    KillPoint(("2A/site_timezones", "2A/tz_in_use"), pause="2A/site_timezones"),
]


def _kill_and_recover(point: KillPoint, tiny_world: Path, tmp_path: Path) -> None:
    root = copy_world(tiny_world, tmp_path / "world", *point.victims)
    kill_at(point, root, tmp_path / "killed.out")
    assert_recovers(root, tiny_world, target_of(point.victims[0]))


@pytest.mark.parametrize("point", DEFAULT_POINTS, ids=lambda p: p.id)
def test_sigkill_then_unlock_and_rerun_is_clean(point: KillPoint, tiny_world: Path, tmp_path: Path) -> None:
    _kill_and_recover(point, tiny_world, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("point", SWEEP_POINTS, ids=lambda p: p.id)
def test_sigkill_sweep(point: KillPoint, tiny_world: Path, tmp_path: Path) -> None:
    _kill_and_recover(point, tiny_world, tmp_path)


# --- the output root --------------------------------------------------------------------------------------


@pytest.fixture
def existing_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a directory")
    return path


@pytest.mark.parametrize("kind", ["300 characters", "/proc", "/dev/null", "an existing file"])
def test_invalid_output_root_is_one_line_at_parse_time(
    kind: str, tmp_path: Path, existing_file: Path
) -> None:
    root = {
        "300 characters": tmp_path / ("w" * 300),
        "/proc": Path("/proc/engine-world"),
        "/dev/null": Path("/dev/null"),
        "an existing file": existing_file,
    }[kind]
    res = run_snakemake(root)
    assert res.returncode == 1
    line = last_line(res.stderr)
    assert line.startswith("ERROR E_OUTPUT_ROOT_INVALID config: output root ")
    assert line.endswith(f"(config field output_root ({root})) — {INVALID_FIX}")
    assert "Traceback" not in res.stderr
    assert kind == "/dev/null" or not os.path.isdir(root)


def test_read_only_root_before_the_run(tiny_world: Path, tmp_path: Path) -> None:
    root = copy_world(tiny_world, tmp_path / "world", "2A/site_timezones", "2A/tz_in_use")
    with read_only_bind(root):
        res = run_snakemake(root, target="seg2A")
    assert res.returncode == 1
    assert last_line(res.stderr) == (
        "ERROR E_OUTPUT_ROOT_UNWRITABLE config: cannot write: Read-only file system "
        f"(config field output_root ({root})) — {UNWRITABLE_FIX}"
    )
    assert_recovers(root, tiny_world, "seg2A")


def test_read_only_data_met_by_a_running_job(tiny_world: Path, tmp_path: Path) -> None:
    """The data folder turns read-only while 2A.S4 is inside its publish: the job's rename fails."""
    root = copy_world(tiny_world, tmp_path / "world", "2A/tz_dst_windows")
    out = tmp_path / "run.out"
    paused = paused_temp(root, "2A/tz_dst_windows")
    with run_until(root, out, paused, "seg2A", "2A/tz_dst_windows") as run, read_only_bind(root / "data"):
        run.resume.touch()  # the job goes on into its rename, on a file system that is now read-only
        assert run.proc.wait(timeout=DEADLINE_S) != 0
    target = run.found.parent.parent / run.found.parent.name.split("-", 4)[4]
    assert last_line(out.read_text()) == (
        f"ERROR E_OUTPUT_ROOT_UNWRITABLE 2A.S4: cannot write: Read-only file system ({target}) — "
        + UNWRITABLE_FIX
    )
    assert_recovers(root, tiny_world, "seg2A")


def fill(mnt: Path, leave: int) -> None:
    """Fill the tmpfs at `mnt` until `leave` bytes are free."""
    filler = mnt / "filler"
    filler.unlink(missing_ok=True)
    st = os.statvfs(mnt)
    filler.write_bytes(b"\0" * (st.f_bavail * st.f_frsize - leave))


def test_full_disk(tiny_world: Path, tmp_path: Path) -> None:
    """A real tmpfs: nearly full before the run (stopped at parse time, before Snakemake's lock would fail
    raw), then full during 1B.S4 (its ≈ 3.6 MB partition does not fit in 2 MiB), then freed."""
    size_mib = sum(p.stat().st_size for p in tiny_world.rglob("*") if p.is_file()) // 2**20 + 16
    with mounted_tmpfs(tmp_path / "mnt", f"{size_mib}m") as mnt:
        root = copy_world(tiny_world, mnt / "world", "1B/tile_sampler")
        fill(mnt, 8192)
        res = run_snakemake(root, target="seg1B")
        assert res.returncode == 1
        assert re.fullmatch(
            r"ERROR E_DISK_FULL config: only \d+ KiB free on the output root's file system "
            rf"\(a run needs 1024 KiB to start\) \(config field output_root \({re.escape(str(root))}\)\) — "
            + re.escape(FULL_FIX),
            last_line(res.stderr),
        ), res.stderr[-2000:]
        fill(mnt, 2 << 20)
        res = run_snakemake(root, target="seg1B")
        assert res.returncode == 1
        target = next(tiny_world.glob("data/layer1/1B/tile_sampler/manifest_fingerprint=*")).name
        assert last_line(res.stderr) == (
            "ERROR E_DISK_FULL 1B.S4: no space left on the device "
            f"({root}/data/layer1/1B/tile_sampler/{target}) — {FULL_FIX}"
        ), res.stderr[-2000:]
        assert (root / "logs/errors.log").read_text() == last_line(res.stderr) + "\n"
        assert not list(root.glob("data/**/.tmp-*"))  # the failed publish left nothing
        (mnt / "filler").unlink()
        assert_recovers(root, tiny_world, "seg1B")


def test_second_run_on_a_busy_root_fails_on_the_lock(tiny_world: Path, tmp_path: Path) -> None:
    """Two runs on one root: the second stops on Snakemake's lock before any job; the first finishes."""
    root = copy_world(tiny_world, tmp_path / "world", "2A/tz_dst_windows")
    with run_until(
        root, tmp_path / "first.out", paused_temp(root, "2A/tz_dst_windows"), "seg2A", "2A/tz_dst_windows"
    ) as run:
        second = run_snakemake(root, target="seg2A")
        run.resume.touch()
        assert run.proc.wait(timeout=DEADLINE_S) == 0
    assert second.returncode == 1
    assert "Directory cannot be locked" in second.stderr and str(root) in second.stderr
    assert "rule seg2A" not in second.stderr  # it started no job
    assert not list(root.rglob(".tmp-*"))
    assert data_digests(root) == data_digests(tiny_world)
