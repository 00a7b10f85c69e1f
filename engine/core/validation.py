"""The last state of every segment: structural checks, realism bands, bundle and flag, one shape for all."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from engine.core.canonical import canonical_json_bytes
from engine.core.errors import EngineError, ValidationFailed
from engine.core.gates import publish_bundle
from engine.core.layout import bundle_dir, failed_checks_file
from engine.core.publish import replace_bytes
from engine.core.state import StateContext


@dataclass
class CheckBook:
    """Collects every check's outcome; a REQUIRED failure withholds the flag."""

    checks: list[dict[str, Any]] = field(default_factory=list)

    def structural(self, check_id: str, ok: bool, detail: str = "", code: str = "") -> None:
        self.checks.append(
            {
                "id": check_id,
                "kind": "structural",
                "severity": "REQUIRED",
                "status": "PASS" if ok else "FAIL",
                "detail": detail,
                "code": "" if ok else code,
            }
        )

    def guarded(self, check_id: str, fn: Callable[[], None]) -> None:
        """Run a check that raises EngineError on failure; record its code instead of stopping."""
        try:
            fn()
        except EngineError as err:
            self.structural(check_id, False, err.what, err.code)
        else:
            self.structural(check_id, True)

    def realism(
        self,
        check_id: str,
        metric: str,
        value: float,
        support: int,
        lo: float | None,
        hi: float | None,
        severity: str,
        min_support: int,
    ) -> None:
        if support < min_support:
            status = "SKIPPED"
        elif not math.isfinite(value):
            status = "FAIL"
        else:
            status = "PASS" if (lo is None or value >= lo) and (hi is None or value <= hi) else "FAIL"
        self.checks.append(
            {
                "id": check_id,
                "kind": "realism",
                "metric": metric,
                "value": round(float(value), 9) if math.isfinite(value) else None,
                "lo": lo,
                "hi": hi,
                "severity": severity,
                "support": int(support),
                "min_support": min_support,
                "status": status,
            }
        )

    def failed_required(self) -> list[str]:
        return sorted(c["id"] for c in self.checks if c["status"] == "FAIL" and c["severity"] == "REQUIRED")


def same_keys(table: pl.DataFrame, upstream: pl.DataFrame, key: str) -> bool:
    """One row per upstream row: equal heights and no key of `table` missing upstream (keys are unique)."""
    return table.height == upstream.height and table.join(upstream, on=key, how="anti").height == 0


def gini(values: np.ndarray) -> float:
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    if n == 0 or x.sum() == 0:
        return float("nan")
    return float((2.0 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    import polars as pl

    ra = pl.Series(a).rank("average").to_numpy()
    rb = pl.Series(b).rank("average").to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def finish_segment(ctx: StateContext, book: CheckBook, evidence: dict[str, Any]) -> None:
    """Publish checks.json, realism.json, rng_accounting.json, state_reports.json, index.json (+ flag)."""
    assert ctx.seed is not None
    failed = book.failed_required()
    realism = {c["id"]: c for c in book.checks if c["kind"] == "realism"}
    files = {
        "checks.json": (canonical_json_bytes(book.checks), "checks"),
        "realism.json": (canonical_json_bytes(realism), "realism"),
        "rng_accounting.json": (canonical_json_bytes(evidence["rng_accounting"]), "rng_accounting"),
        "state_reports.json": (canonical_json_bytes(evidence["state_reports"]), "state_reports"),
        **{
            f"{name}.json": (canonical_json_bytes(doc), name)
            for name, doc in evidence.get("extra", {}).items()
        },
    }
    target = bundle_dir(ctx.root, ctx.segment, ctx.seed, ctx.mf)
    publish_bundle(target, files, passed=not failed, state=ctx.state)
    ctx.facts["checks"] = {s: sum(c["status"] == s for c in book.checks) for s in ("PASS", "FAIL", "SKIPPED")}
    if failed:
        report = failed_checks_file(ctx.root, ctx.segment, ctx.seed, ctx.mf)
        replace_bytes(report, canonical_json_bytes(book.checks))
        ctx.finish()
        raise ValidationFailed(ctx.state, failed, str(report))


def read_tables(ctx: StateContext, seeded: list[str], seed_free: list[str]) -> dict[str, Any]:
    """Every dataset the segment's validation re-checks, read through the recorded-digest check."""
    tables = {name: ctx.read(name) for name in seeded}
    tables.update({name: ctx.read(name, seed_free=True) for name in seed_free})
    return tables


def check_schemas(ctx: StateContext, book: CheckBook, tables: dict[str, Any]) -> None:
    from engine.core.contracts import dictionary, validate_table

    for name, df in tables.items():
        schema = dictionary()[name]["schema"]
        book.guarded(
            f"schema.{name}",
            lambda df=df, schema=schema, name=name: validate_table(df, schema, where=name, state=ctx.state),
        )


def apply_checks(book: CheckBook, val: Any, metrics: dict[str, tuple[float, int]]) -> None:
    """Evaluate the validation policy's realism checks against computed (value, support) metrics."""
    for check in val.checks:
        value, support = metrics[check.metric]
        min_support = check.min_support or val.min_support
        book.realism(check.id, check.metric, value, support, check.lo, check.hi, check.severity, min_support)


def state_reports(ctx: StateContext, producers: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The byte-stable run reports of the segment's states, and their merged recorded RNG accounting."""
    from engine.states import STATES

    reports: dict[str, Any] = {}
    recorded: dict[str, Any] = {}
    for state in producers:
        doc = ctx.owner_report(state, seed_free=not STATES[state].per_seed)
        doc.pop("operational", None)
        reports[state] = doc
        recorded.update(doc["rng_accounting"])
    return reports, recorded
