"""Errors with stable codes: every failure a user can cause ends as one line naming code, place and fix."""

from __future__ import annotations


class EngineError(Exception):
    """A failure with a stable code, rendered as `ERROR <code> <state>: <what> (<where>) — <fix>`."""

    def __init__(self, code: str, what: str, *, where: str = "", fix: str = "", state: str = "") -> None:
        super().__init__(what)
        self.code = code
        self.what = what
        self.where = where
        self.fix = fix
        self.state = state

    def line(self) -> str:
        state = self.state or "engine"
        where = f" ({self.where})" if self.where else ""
        fix = f" — {self.fix}" if self.fix else ""
        return f"ERROR {self.code} {state}: {self.what}{where}{fix}"

    def __str__(self) -> str:
        return self.line()


class ValidationFailed(EngineError):
    """A segment's validation found failing REQUIRED checks; the bundle is published without a flag. The code
    names the segment, `E_<SEG>_VALIDATION_FAILED` (design layer2_3.md §0.5), so a log line alone says whose
    world failed."""

    def __init__(self, state: str, failed: list[str], where: str) -> None:
        super().__init__(
            f"E_{state.split('.')[0]}_VALIDATION_FAILED",
            f"REQUIRED checks failed: {', '.join(failed)}",
            where=where,
            fix="read checks.json in the bundle for values and bands",
            state=state,
        )
        self.failed = failed
