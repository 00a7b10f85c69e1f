"""Error lines `ERROR <code> <state>: <what> (<where>) — <fix>` and the CLI exit codes (README §9)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.cli import main
from engine.core.errors import EngineError, ValidationFailed
from engine.core.gates import FLAG, publish_bundle
from engine.core.layout import bundle_dir

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
        "ERROR E_VALIDATION_FAILED 1A.S9: REQUIRED checks failed: 1A.R01, 1A.R05 "
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


def test_cli_verify_root_pass_then_fail(tmp_path: Path, capsys) -> None:
    bundle = bundle_dir(tmp_path, "1A", 42, "ab" * 32)
    publish_bundle(bundle, {"checks.json": (b"{}\n", "checks")}, passed=True, state="1A.S9")
    assert main(["verify", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"PASS {bundle}\n"
    assert main(["verify", str(bundle)]) == 0  # a single bundle works too
    assert capsys.readouterr().out == f"PASS {bundle}\n"
    (bundle / FLAG).write_text("sha256_hex = " + "0" * 64 + "\n")
    assert main(["verify", str(tmp_path)]) == 1
    assert capsys.readouterr().out == f"FAIL {bundle}: _passed.flag does not match the bundle digest\n"


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
