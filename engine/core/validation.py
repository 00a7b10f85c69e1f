"""The last state of every segment: structural checks, RNG replays, realism bands, bundle and flag, one shape
for all.

The replay law (layer1 §0 "RNG"): every RNG family a segment records is declared as a `Replay`; validation
recomputes a keyed sample of its draw events bit for bit through an independent path (numpy's own Philox, and
the sampling rule re-derived in the segment's `replay.py`, never the state's sampler) and checks the family's
full draws/blocks/streams/counter accounting against what the states recorded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from engine.core.canonical import canonical_json_bytes
from engine.core.errors import EngineError, ValidationFailed
from engine.core.gates import GATE_EVIDENCE, gate_digests, publish_bundle
from engine.core.layout import bundle_dir, failed_checks_file
from engine.core.publish import replace_bytes
from engine.core.rng import SampleRule, keyed_sample
from engine.core.state import StateContext

_U64 = (1 << 64) - 1
USAGE = ("draws", "blocks", "streams")
DEFAULT_SAMPLE = SampleRule()


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
    """Publish checks.json, realism.json, rng_accounting.json, state_reports.json, gate.json (the digests
    of the gate files this seed rests on), index.json (+ flag)."""
    assert ctx.seed is not None
    failed = book.failed_required()
    realism = {c["id"]: c for c in book.checks if c["kind"] == "realism"}
    files = {
        "checks.json": (canonical_json_bytes(book.checks), "checks"),
        "realism.json": (canonical_json_bytes(realism), "realism"),
        "rng_accounting.json": (canonical_json_bytes(evidence["rng_accounting"]), "rng_accounting"),
        "state_reports.json": (canonical_json_bytes(evidence["state_reports"]), "state_reports"),
        GATE_EVIDENCE: (canonical_json_bytes(gate_digests(ctx.root, ctx.segment, ctx.mf, ctx.seed)), "gate"),
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


def check_schema_streamed(
    ctx: StateContext, book: CheckBook, name: str, paths: list[Any], batch_rows: int = 2_000_000
) -> None:
    """A table's contract check batch by batch (its row order across them), and its keys over the key columns
    alone, so a validation state never holds a large table at full width just to check it."""
    import pyarrow.parquet as pq

    from engine.core.contracts import dictionary, duplicated_rows, table_schema, validate_table
    from engine.core.row_order import RowOrder

    ref = dictionary()[name]["schema"]
    schema = table_schema(ref)

    def check() -> None:
        order = RowOrder(schema)
        for path in paths:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
                frame = pl.from_arrow(batch)
                validate_table(frame, ref, where=str(path), state=ctx.state, keys=False)
                order.check(frame, where=str(path), state=ctx.state)
        for key in (schema.primary_key, *schema.unique):
            dupes = duplicated_rows(pl.concat([pl.read_parquet(p, columns=list(key)) for p in paths]), key)
            if dupes:
                raise EngineError(
                    "E_SCHEMA",
                    f"{dupes} rows duplicate key {list(key)}",
                    where=str(paths[0].parent),
                    fix="delete the partition and rerun its state",
                    state=ctx.state,
                )

    book.guarded(f"schema.{name}", check)


def apply_checks(book: CheckBook, val: Any, metrics: dict[str, tuple[float, int]]) -> None:
    """Evaluate the validation policy's realism checks against computed (value, support) metrics."""
    for check in val.checks:
        value, support = metrics[check.metric]
        min_support = check.min_support or val.min_support
        book.realism(check.id, check.metric, value, support, check.lo, check.hi, check.severity, min_support)


def state_reports(ctx: StateContext, producers: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The byte-stable run reports of the segment's states, and their merged recorded RNG accounting.

    A per-scenario or sharded state has one report per partition, keyed `<state>/scenario_id=…/shard=…`; its
    families' totals are summed over the partitions (the run's scenarios and shards, from the context)."""
    from engine.core.rng import RngLedger
    from engine.states import STATES

    reports: dict[str, Any] = {}
    ledger = RngLedger()
    for state in producers:
        sdef = STATES[state]
        scenarios: list[str | None] = list(ctx.scenarios) if sdef.per_scenario else [None]
        shards: list[int | None] = list(range(ctx.shards)) if sdef.sharded else [None]
        for scenario in scenarios:
            for shard in shards:
                doc = ctx.owner_report(state, seed_free=not sdef.per_seed, scenario=scenario, shard=shard)
                doc.pop("operational", None)
                key = state + (f"/scenario_id={scenario}" if scenario is not None else "")
                key += f"/shard={shard}" if shard is not None else ""
                reports[key] = doc
                ledger.merge(RngLedger.from_dict(doc["rng_accounting"]))
    return reports, ledger.as_dict()


# --- the replay law ---------------------------------------------------------------------------------------
def u01(x: int) -> float:
    """The open uniform of a raw lane (README §4): ((x >> 11) + 0.5)·2^-53, clamped to 1 − 2^-53."""
    return min(((x >> 11) + 0.5) * 2.0**-53, 1.0 - 2.0**-53)


class PhiloxBlocks:
    """Philox4x64-10 blocks of one family key from numpy's generator, not the engine's numba kernel, so a
    replay that agrees with the data vouches for the generator as well as the sampler."""

    def __init__(self, key: tuple[int, int]) -> None:
        self._gen = np.random.Philox(key=key[0] | key[1] << 64)
        self._state = self._gen.state

    def block(self, c0: int, c1: int, c2: int, c3: int) -> tuple[int, int, int, int]:
        """Lanes w0..w3 of block ⟨c0,c1,c2,c3⟩. numpy bumps its 256-bit counter before generating, so it is
        set one below the block wanted (−1 for counter 0, whose masked words are all ones: it wraps)."""
        before = (c0 | c1 << 64 | c2 << 128 | c3 << 192) - 1
        self._state["state"]["counter"] = np.array([before >> (64 * i) & _U64 for i in range(4)], np.uint64)
        self._state["buffer_pos"] = 4
        self._gen.state = self._state
        w = self._gen.random_raw(4)
        return int(w[0]), int(w[1]), int(w[2]), int(w[3])


class Lanes:
    """The spec's lane stream: lanes w0..w3 of block d, then of d + 1, … where d is counter word `block_word`;
    counts lanes drawn (draws) and blocks generated (blocks), as the ledger does."""

    def __init__(self, gen: PhiloxBlocks, counter: Sequence[int], block_word: int) -> None:
        self._gen, self._counter, self._word = gen, [int(c) for c in counter], block_word
        self._lanes: tuple[int, ...] = ()
        self.draws = 0
        self.blocks = 0

    def raw(self) -> int:
        if self.draws == 4 * self.blocks:
            self._lanes = self._gen.block(*self._counter)
            self._counter[self._word] = (self._counter[self._word] + 1) & _U64
            self.blocks += 1
        lane = self._lanes[self.draws % 4]
        self.draws += 1
        return lane

    def u(self) -> float:
        return u01(self.raw())


@dataclass(frozen=True)
class Replay:
    """One RNG family as validation replays it.

    `rows`: the published rows, one per draw event, carrying the counter of the event's first block in u64
    columns c0..c3 (`with_counter`). `rederive(sample, gen)` recomputes, for rows of `rows` and from `gen`
    alone, the `compare` columns plus the event's draws, blocks and streams (`USAGE`). `usage(rows)` gives
    those three per row from published columns; without it only a full replay knows the family's totals, so
    every row is replayed whatever its size.
    """

    family: str
    rows: pl.DataFrame
    compare: tuple[str, ...]
    rederive: Callable[[pl.DataFrame, PhiloxBlocks], pl.DataFrame]
    usage: Callable[[pl.DataFrame], pl.DataFrame] | None = None
    # a family whose events are heavy (one event = thousands of blocks) may bring its own sample rule
    rule: SampleRule | None = None


def with_counter(
    df: pl.DataFrame, c0: str, c1: str | int = 0, c2: str | int = 0, c3: str | int = 0
) -> pl.DataFrame:
    """Columns c0..c3 (u64) from column names or constants: the counter of each row's first block."""
    words = [pl.col(w) if isinstance(w, str) else pl.lit(w) for w in (c0, c1, c2, c3)]
    return df.with_columns(w.cast(pl.UInt64).alias(f"c{i}") for i, w in enumerate(words))


def one_block_each(rows: pl.DataFrame) -> pl.DataFrame:
    """Usage of a family that reads one lane of one block per event."""
    return pl.DataFrame({q: np.ones(rows.height, dtype=np.int64) for q in USAGE})


def _same(published: pl.Series, again: pl.Series) -> np.ndarray:
    """Row-wise equality, floats by their 64 bits (so −0.0 ≠ 0.0) and nulls equal only to nulls."""
    if published.dtype.is_float():
        p, a = published.cast(pl.Float64), again.cast(pl.Float64)
        bits = p.fill_null(0.0).to_numpy().view(np.uint64) == a.fill_null(0.0).to_numpy().view(np.uint64)
        p_null, a_null = p.is_null().to_numpy(), a.is_null().to_numpy()
        return np.where(p_null | a_null, p_null & a_null, bits)
    return published.eq_missing(again.cast(published.dtype, strict=False)).to_numpy()


def _replay_family(
    ctx: StateContext, book: CheckBook, spec: Replay, recorded: dict[str, Any], rule: SampleRule, code: str
) -> dict[str, Any]:
    """Replay one family's sample bit for bit, check its accounting; return its recomputed totals."""
    segment, _, label = spec.family.partition(".")
    if segment != ctx.segment:
        raise ValueError(f"{ctx.state} cannot replay {spec.family}: not a family of segment {ctx.segment}")
    rows = spec.rows
    n = rows.height
    counter = tuple(rows[f"c{i}"].to_numpy() for i in range(4))
    rule = spec.rule or rule
    full = spec.usage is None or rule.size(n) == n
    picked = np.arange(n) if full else keyed_sample(spec.family, counter, n, rule)
    sample = rows[picked]
    again = spec.rederive(sample, PhiloxBlocks(ctx.family_key(label)))
    if again.height != sample.height:
        raise ValueError(f"{spec.family}: re-derived {again.height} rows for {sample.height}")
    same = {c: _same(sample[c], again[c]) for c in spec.compare}
    ok = np.logical_and.reduce(list(same.values())) if same else np.ones(sample.height, dtype=bool)
    if ok.all():
        detail = f"{spec.family}: {sample.height} of {n} draw events replayed bit for bit"
    else:
        first = int(np.flatnonzero(~ok)[0])
        where = "⟨" + ", ".join(str(int(w[picked[first]])) for w in counter) + "⟩"
        columns = ", ".join(c for c, eq in same.items() if not eq[first])
        detail = (
            f"{spec.family}: {int((~ok).sum())} of {sample.height} replayed draw events differ, "
            f"first at counter {where} in {columns}"
        )
    book.structural(f"replay.{spec.family}", bool(ok.all()), detail, code)
    ctx.facts.setdefault("replay", {})[spec.family] = {"events": n, "replayed": sample.height}
    usage = spec.usage(rows) if spec.usage is not None and not full else again
    expected: dict[str, Any] = {q: int(usage[q].sum()) for q in USAGE}
    if n:
        expected |= {"counter_lo": str(int(counter[0].min())), "counter_hi": str(int(counter[0].max()))}
    got = recorded.get(spec.family, {})
    for q in (*USAGE, "counter_lo", "counter_hi"):
        want, have = expected.get(q, 0), got.get(q, 0)
        book.structural(
            f"rng.{spec.family}.{q}",
            have == want,
            f"{spec.family}: recorded {q} {have}, recomputed {want}",
            "E_RNG_ACCOUNTING",
        )
    return expected


def run_replays(
    ctx: StateContext,
    book: CheckBook,
    replays: list[Replay],
    recorded: dict[str, Any],
    *,
    code: str,
    rule: SampleRule = DEFAULT_SAMPLE,
) -> dict[str, Any]:
    """The one replay law every validation state runs: each declared family replayed (`replay.<family>`,
    failing with `code`) and accounted (`rng.<family>.<quantity>`), and no recorded family left undeclared
    (`rng.families`). Returns the recomputed accounting, family by family, for rng_accounting.json."""
    undeclared = sorted(set(recorded) - {r.family for r in replays})
    book.structural(
        "rng.families",
        not undeclared,
        f"recorded but never replayed: {', '.join(undeclared)}" if undeclared else "",
        "E_RNG_ACCOUNTING",
    )
    return {r.family: _replay_family(ctx, book, r, recorded, rule, code) for r in replays}
