"""Error lines `ERROR <code> <state>: <what> (<where>) — <fix>` and the CLI exit codes (README §9)."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import polars as pl
import pytest

from engine import cli
from engine.cli import main
from engine.core.errors import EngineError, ValidationFailed
from engine.core.gates import FLAG, publish_bundle, read_input_table
from engine.core.layout import bundle_dir, gate_dir
from engine.core.parquet_io import write_parquet

LINE = re.compile(r"^ERROR (E_[A-Z_]+) (\S+): (.+?)(?: \((.+)\))?(?: — (.+))?$")


def test_line_exact() -> None:
    err = EngineError("E_WRITE_CONFLICT", "output exists", where="data/x", fix="remove it", state="1A.S2")
    assert err.line() == "ERROR E_WRITE_CONFLICT 1A.S2: output exists (data/x) — remove it"
    assert str(err) == err.line()
    assert err.code == "E_WRITE_CONFLICT"
    assert err.what == "output exists"


def test_line_defaults() -> None:
    assert EngineError("E_X", "bad").line() == "ERROR E_X engine: bad"
    assert EngineError("E_X", "bad", where="f.yaml").line() == "ERROR E_X engine: bad (f.yaml)"
    assert EngineError("E_X", "bad", fix="do y").line() == "ERROR E_X engine: bad — do y"


def test_line_parses_back() -> None:
    err = EngineError("E_POLICY_INVALID", "bad value", where="p.yaml field a.b", fix="fix it", state="config")
    m = LINE.match(err.line())
    assert m is not None
    assert m.groups() == ("E_POLICY_INVALID", "config", "bad value", "p.yaml field a.b", "fix it")


def test_validation_failed_line() -> None:
    err = ValidationFailed("1A.S9", ["1A.R01", "1A.R05"], "data/layer1/1A/validation/seed=42")
    assert isinstance(err, EngineError)
    assert err.failed == ["1A.R01", "1A.R05"]
    assert err.line() == (
        "ERROR E_1A_VALIDATION_FAILED 1A.S9: REQUIRED checks failed: 1A.R01, 1A.R05 "
        "(data/layer1/1A/validation/seed=42) — read checks.json in the bundle for values and bands"
    )


def test_engine_error_is_raisable_and_catchable() -> None:
    with pytest.raises(EngineError, match=r"^ERROR E_X s: w \(p\) — f$"):
        raise EngineError("E_X", "w", where="p", fix="f", state="s")


# --- CLI ---------------------------------------------------------------------------------------------


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("ERROR ")]


def test_cli_verify_empty_root(tmp_path: Path, capsys) -> None:
    assert main(["verify", str(tmp_path)]) == 2  # a user error, like every coded one
    out = capsys.readouterr()
    lines = _error_lines(out.err)
    assert len(lines) == 1
    m = LINE.match(lines[0])
    assert m is not None
    assert m.group(1) == "E_VERIFY_NOTHING"
    assert str(tmp_path) in lines[0]
    assert out.out == ""


def test_cli_verify_does_not_take_a_flags_word(tmp_path: Path, capsys) -> None:
    """A bundle whose flag matches its own files still fails: nothing vouches for data, gate or inputs."""
    bundle = bundle_dir(tmp_path, "1A", 42, "ab" * 32)
    publish_bundle(bundle, {"checks.json": (b"{}\n", "checks")}, passed=True, state="1A.S9")
    gate = gate_dir(tmp_path, "1A", "ab" * 32)
    want = (
        f"FAIL {bundle}\n"
        f"  E_BUNDLE_INVALID {bundle / 'gate.json'}: missing or unreadable\n"
        f"  E_BUNDLE_INVALID {bundle / 'state_reports.json'}: missing or unreadable\n"
        f"  E_GATE_MISSING {gate}: sealed_inputs.json or s0_gate_receipt.json missing\n"
    )
    assert main(["verify", str(tmp_path)]) == 1
    assert capsys.readouterr().out == want
    assert main(["verify", str(bundle)]) == 1  # a single bundle is checked the same way
    assert capsys.readouterr().out == want
    (bundle / FLAG).write_text("sha256_hex = " + "0" * 64 + "\n")
    assert main(["verify", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1] == f"  E_BUNDLE_INVALID {bundle}: _passed.flag does not match the bundle digest"


def test_cli_contracts_in_sync(capsys) -> None:
    assert main(["contracts"]) == 0
    out = capsys.readouterr()
    assert out.err == ""


def test_cli_unknown_state(capsys) -> None:
    assert main(["run", "9Z.S1"]) == 2
    err = capsys.readouterr().err
    lines = _error_lines(err)
    assert len(lines) == 1
    m = LINE.match(lines[0])
    assert m is not None
    assert m.group(1) == "E_UNKNOWN_STATE"
    assert "'9Z.S1'" in lines[0]
    assert "1A.S1" in lines[0]  # the fix lists the known states
    assert "Traceback" not in err


def test_cli_usage_error_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# --- OS errors the user can fix, corrupt inputs, the spec file --------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.ENOSPC, "E_DISK_FULL"),
        (errno.EROFS, "E_OUTPUT_ROOT_UNWRITABLE"),
        (errno.EACCES, "E_OUTPUT_ROOT_UNWRITABLE"),
    ],
)
def test_cli_maps_os_errors_by_errno(tmp_path: Path, monkeypatch, capsys, code: int, expected: str) -> None:
    """An OS error no publish caught (e.g. a progress log on a full disk) is still one coded line."""

    def fail(args) -> int:
        raise OSError(code, os.strerror(code))  # no filename, as pyarrow and buffered writes raise it

    monkeypatch.setattr(cli, "_run_state", fail)
    assert main(["run", "1A.S2", "--root", str(tmp_path), "--seed", "42"]) == 2
    err = capsys.readouterr().err
    assert _error_lines(err) == [err.strip()]
    m = LINE.match(err.strip())
    assert m is not None
    assert m.group(1, 2, 4) == (expected, "1A.S2", str(tmp_path))


def test_cli_names_the_file_an_os_error_names(tmp_path: Path, monkeypatch, capsys) -> None:
    def fail(args) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "x.json"))

    monkeypatch.setattr(cli, "_ref_build", fail)
    assert main(["ref-build", "ref_mcc", "--out", str(tmp_path)]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith(
        f"ERROR E_DISK_FULL ref-build: no space left on the device ({tmp_path / 'x.json'})"
    )


def test_cli_other_os_errors_are_internal(monkeypatch, capsys) -> None:
    def fail(args) -> int:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(cli, "_run_state", fail)
    assert main(["run", "1A.S2", "--seed", "42"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and _error_lines(err)[-1].startswith("ERROR E_INTERNAL engine: OSError")


@pytest.mark.parametrize("spec_file", [None, "missing.json"])
def test_cli_gate_needs_its_spec_file(tmp_path: Path, capsys, spec_file: str | None) -> None:
    argv = ["run", "1A.S0", "--root", str(tmp_path)]
    if spec_file is not None:
        argv += ["--spec-file", str(tmp_path / spec_file)]
    assert main(argv) == 2
    line = capsys.readouterr().err.strip()
    m = LINE.match(line)
    assert m is not None and m.group(1, 2) == ("E_CONFIG_INVALID", "1A.S0")
    assert m.group(4).startswith("--spec-file ")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "zero-page"])
def test_a_corrupt_input_table_is_input_corrupt(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "part-00000.parquet"
    write_parquet(pl.DataFrame({"a": list(range(5000)), "b": [f"v{i}" for i in range(5000)]}), path)
    data = path.read_bytes()
    path.write_bytes(
        {
            "truncate": data[: len(data) // 2],
            "garbage": b"not parquet",
            "zero-page": data[: len(data) // 2] + b"\0" * 400 + data[len(data) // 2 + 400 :],
        }[damage]
    )
    with pytest.raises(EngineError) as info:
        read_input_table(path, state="1A.S3")
    err = info.value
    assert (err.code, err.state, err.where) == ("E_INPUT_CORRUPT", "1A.S3", str(path))
    assert err.what.startswith("the table does not decode as Parquet: ")
    assert damage != "zero-page" or "zstd error" in err.what
    assert "\n" not in err.line()
