"""Docs match the code: every error code the engine can raise is documented."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_error_code_is_documented() -> None:
    raised = set()
    for path in [*(REPO / "engine").rglob("*.py"), *(REPO / "rules").glob("*.smk"), REPO / "Snakefile"]:
        raised |= set(re.findall(r"\bE_[A-Z0-9_]+\b", path.read_text()))
    documented = set(re.findall(r"`(E_[A-Z0-9_]+)`", (REPO / "docs" / "errors.md").read_text()))
    assert sorted(raised - documented) == []  # raised but undocumented
    assert sorted(documented - raised) == []  # documented but never raised
