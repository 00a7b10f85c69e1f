"""The context every state runs in: sealed reads, contract-checked write-once publishing, RNG, report."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import BaseModel

from engine.core.canonical import canonical_json_bytes, sha256_file, sha256_hex
from engine.core.contracts import (
    PART_FILE,
    PART_GLOB,
    dataset_dir,
    dictionary,
    path_tokens,
    table_schema,
    validate_columns,
    validate_table,
)
from engine.core.errors import EngineError
from engine.core.gates import SealedInputs, read_input_table
from engine.core.identity import new_run_id
from engine.core.ids import shard_of
from engine.core.layout import report_file
from engine.core.parquet_io import PartWriter, write_parquet
from engine.core.policy import load_policy_file
from engine.core.progress import ProgressMeter
from engine.core.publish import publish_dir, publish_partition, replace_bytes, staging_dir
from engine.core.rng import CounterWord, RngLedger, SampleRule, counter_words, family_key, keyed_sample
from engine.core.row_order import RowOrder

EventLog = Literal["off", "sample", "full"]
EVENT_LOG_ENV = "ENGINE_RNG_EVENT_LOG"  # set by the workflow from the run config's rng_event_log


def _fault_pause(resume: str | None) -> None:
    """Hold a state inside its publish (temp written, not yet renamed) for the fault tests: until it is
    killed, or until the file `resume` names exists (so a test can break the disk under a running job)."""
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline and not (resume and os.path.exists(resume)):
        time.sleep(0.1)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class StateContext:
    """One state's run: `state` is the id (e.g. 1A.S2), `name` its short name (e.g. s2_nb_outlets).

    A layer-2/3 state may run per scenario (`scenario`) and per shard (`shard` of `shards`); `scenarios` and
    `shards` are the run's, so a global or validation state knows every partition. Neither enters a value:
    they name partitions only (layer2_3.md §0.3)."""

    root: Path
    segment: str
    state: str
    name: str
    mf: str
    seed: int | None
    scenario: str | None = None
    shard: int | None = None
    shards: int = 1
    scenarios: tuple[str, ...] = ()
    sealed: SealedInputs = field(init=False)
    ledger: RngLedger = field(default_factory=RngLedger)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    deviations: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    run_id: str = field(default_factory=new_run_id)
    event_log: EventLog = field(init=False)
    _events: list[pl.DataFrame] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.sealed = SealedInputs(self.root, self.segment, self.mf, self.state, self.seed)
        mode = os.environ.get(EVENT_LOG_ENV, "off")
        if mode not in get_args(EventLog):
            raise EngineError(
                "E_CONFIG_INVALID",
                f"{EVENT_LOG_ENV}={mode!r} is not a known event-log mode",
                where=f"environment {EVENT_LOG_ENV} (config field rng_event_log)",
                fix="use one of off, sample, full",
                state=self.state,
            )
        self.event_log = mode

    # --- reading -------------------------------------------------------------------------------------
    def policy(self, key: str) -> Any:
        """A sealed policy by key (e.g. '1A/hurdle_nb.yaml'), validated into its pydantic model."""
        seg, fname = key.split("/", 1)
        model: BaseModel = load_policy_file(
            seg, fname.removesuffix(".yaml"), self.sealed.path(key), state=self.state
        )
        return model

    def sealed_table(self, input_id: str, columns: list[str] | None = None) -> pl.DataFrame:
        """A sealed input table (only `columns`, if given): a reference, or an upstream dataset in every part
        (a table over PART_ROWS rows, e.g. 6A's instruments at the large preset, is sealed part by part)."""
        paths = self.sealed.parts(input_id)
        frames = [read_input_table(path, state=self.state, columns=columns) for path in paths]
        return frames[0] if len(frames) == 1 else pl.concat(frames)

    def sealed_parts(
        self, dataset: str, *, scenario: str | None = None, shard: int | None = None
    ) -> list[Path]:
        """The digest-checked part files of a sealed upstream partition, for a streamed read."""
        return self.sealed.parts(dataset, scenario=scenario, shard=shard)

    def read(
        self, dataset: str, *, seed_free: bool = False, scenario: str | None = None, shard: int | None = None
    ) -> pl.DataFrame:
        """An earlier state's output of this segment (the segment's own chain, not an external input): every
        part of the partition, in part order."""
        paths = self.part_files(dataset, seed_free=seed_free, scenario=scenario, shard=shard)
        frames = [read_input_table(path, state=self.state) for path in paths]
        return frames[0] if len(frames) == 1 else pl.concat(frames)

    def part_files(
        self, dataset: str, *, seed_free: bool = False, scenario: str | None = None, shard: int | None = None
    ) -> list[Path]:
        """The part files of an earlier state's partition, each checked against the sha256 its producer
        recorded, for a streamed read (`pl.scan_parquet`, `ParquetFile.iter_batches`)."""
        entry = dictionary()[dataset]
        owner = entry["owner"]
        if not owner.startswith(self.segment + "."):
            raise EngineError(
                "E_UNSEALED_READ",
                f"{dataset} belongs to {owner}, not to segment {self.segment}",
                where=dataset,
                fix="read other segments' data only through the sealed-inputs list",
                state=self.state,
            )
        seed = None if seed_free else self.seed
        folder = dataset_dir(self.root, dataset, mf=self.mf, seed=seed, scenario=scenario, shard=shard)
        if not (folder / PART_FILE).is_file():
            raise EngineError(
                "E_INPUT_MISSING",
                f"{dataset} has not been produced",
                where=str(folder / PART_FILE),
                fix=f"run {owner} first",
                state=self.state,
            )
        recorded = self._recorded_outputs(owner, seed, scenario, shard)
        paths = sorted(folder.glob(PART_GLOB))
        for path in paths:
            if recorded.get(path.relative_to(self.root).as_posix()) != sha256_file(path):
                raise self._digest_mismatch(dataset, owner, path)
        listed = sum(1 for rel in recorded if rel.startswith(folder.relative_to(self.root).as_posix() + "/"))
        if listed != len(paths):
            raise self._digest_mismatch(dataset, owner, folder)
        return paths

    def _owner_report_path(
        self, owner: str, seed: int | None, scenario: str | None, shard: int | None
    ) -> Path:
        """Where `owner` (a state of this segment) reported the run that wrote this partition."""
        from engine.states import STATES

        sdef = STATES[owner]
        return report_file(
            self.root,
            self.segment,
            sdef.name,
            self.mf,
            seed,
            scenario if sdef.per_scenario else None,
            shard if sdef.sharded else None,
        )

    def _recorded_outputs(
        self, owner: str, seed: int | None, scenario: str | None = None, shard: int | None = None
    ) -> dict[str, str]:
        """Relative path → sha256 of every file the producing state recorded in its run report."""
        report = self._owner_report_path(owner, seed, scenario, shard)
        if not report.is_file():
            return {}
        return {o["path"]: o["sha256"] for o in json.loads(report.read_text())["outputs"]}

    def _digest_mismatch(self, output: str, owner: str, path: Path) -> EngineError:
        return EngineError(
            "E_SEALED_INPUT_DIGEST_MISMATCH",
            f"{output} does not match the digest its producer {owner} recorded",
            where=str(path),
            fix=f"delete the partition and rerun so {owner} rebuilds it",
            state=self.state,
        )

    def read_recorded(self, path: Path, output: str, owner: str) -> bytes:
        """The bytes of a non-table file (an alias blob, an index, JSON evidence) an earlier state of this
        segment published and recorded as `output`, refused unless they match the sha256 it recorded."""
        if not path.is_file():
            raise EngineError(
                "E_INPUT_MISSING",
                f"{output} has not been produced",
                where=str(path),
                fix=f"run {owner} first",
                state=self.state,
            )
        data = path.read_bytes()
        recorded = self._recorded_outputs(owner, self.seed, self.scenario, self.shard)
        if recorded.get(path.relative_to(self.root).as_posix()) != sha256_hex(data):
            raise self._digest_mismatch(output, owner, path)
        return data

    def owner_report(
        self,
        owner: str,
        *,
        seed_free: bool = False,
        scenario: str | None = None,
        shard: int | None = None,
    ) -> dict[str, Any]:
        path = self._owner_report_path(owner, None if seed_free else self.seed, scenario, shard)
        doc: dict[str, Any] = json.loads(path.read_text())
        return doc

    # --- randomness ------------------------------------------------------------------------------------
    def family_key(self, label: str) -> tuple[int, int]:
        if self.seed is None:
            raise EngineError(
                "E_RNG_SEED_FREE", f"seed-free state asked for family {label}", state=self.state
            )
        return family_key(self.seed, self.sealed.parameter_hash, f"{self.segment}.{label}")

    def record_draws(
        self,
        label: str,
        counter: tuple[CounterWord, ...],
        *,
        draws: np.ndarray | int,
        blocks: np.ndarray | int,
        value: np.ndarray,
        streams: np.ndarray | int = 1,
        entity: np.ndarray | None = None,
    ) -> None:
        """One draw event per row of family `label`: its first block's counter (c0 carries the entity id), the
        lanes and blocks it consumed, its counters (streams) and the value it produced.

        Totals go to the ledger (rng_accounting); with rng_event_log on, the events go to this run's
        operational log: `sample` keeps validation's keyed replay sample, `full` every event.
        """
        value = np.asarray(value)
        n = value.shape[0]
        if n == 0:
            return
        family = f"{self.segment}.{label}"
        words = counter_words(n, counter)
        per_event = {
            name: np.broadcast_to(np.asarray(v, dtype=np.int64), (n,))
            for name, v in (("draws", draws), ("blocks", blocks), ("streams", streams))
        }
        self.ledger.record(
            family,
            int(per_event["draws"].sum()),
            int(per_event["blocks"].sum()),
            int(words[0].min()),
            int(words[0].max()),
            streams=int(per_event["streams"].sum()),
        )
        if self.event_log == "off":
            return
        self._events.append(
            pl.DataFrame(
                {
                    "family": pl.Series([family] * n, dtype=pl.String),
                    "entity_id": pl.Series(words[0] if entity is None else entity, dtype=pl.UInt64),
                    **{f"c{i}": pl.Series(w, dtype=pl.UInt64) for i, w in enumerate(words)},
                    **{name: pl.Series(v, dtype=pl.Int64) for name, v in per_event.items()},
                    "value": pl.Series(value, dtype=pl.Float64),
                }
            )
        )

    def _sample_rule(self) -> SampleRule:
        """The replay sample rule of this segment's validation policy (so the log samples what validation
        replays), or the design's default where the policy does not set one."""
        key = f"{self.segment}/validation.yaml"
        return SampleRule.of(self.policy(key).replay_sample if key in self.sealed.inputs else None)

    def count(self, deviation: str, n: int = 1) -> None:
        self.deviations[deviation] = self.deviations.get(deviation, 0) + int(n)

    # --- writing ---------------------------------------------------------------------------------------
    def identity_columns(
        self, df: pl.DataFrame, *, seed_free: bool = False, tokens: set[str] | None = None
    ) -> pl.DataFrame:
        """Prefix the partition's identity columns (README §5): seed, manifest_fingerprint, then scenario_id
        and shard where the dataset's path carries them."""
        tokens = tokens or set()
        cols = [] if seed_free else [pl.lit(self.seed, dtype=pl.UInt64).alias("seed")]
        cols.append(pl.lit(self.mf, dtype=pl.String).alias("manifest_fingerprint"))
        if "scenario" in tokens:
            cols.append(pl.lit(self._token("scenario"), dtype=pl.String).alias("scenario_id"))
        if "shard" in tokens:
            cols.append(pl.lit(self._token("shard"), dtype=pl.UInt16).alias("shard"))
        return df.select([*cols, *[pl.col(c) for c in df.columns]])

    def _token(self, name: str) -> Any:
        value = getattr(self, name)
        if value is None:
            raise EngineError(
                "E_CONFIG_INVALID",
                f"{self.state} writes a dataset partitioned by {name} but runs without one",
                where=f"--{name}",
                fix=f"run it through snakemake, or pass --{name}",
                state=self.state,
            )
        return value

    def _target(self, dataset: str, seed_free: bool) -> tuple[Path, set[str]]:
        tokens = path_tokens(dataset)
        target = dataset_dir(
            self.root,
            dataset,
            mf=self.mf,
            seed=None if seed_free else self.seed,
            scenario=self._token("scenario") if "scenario" in tokens else None,
            shard=self._token("shard") if "shard" in tokens else None,
        )
        return target, tokens

    def publish(self, dataset: str, df: pl.DataFrame, *, seed_free: bool = False) -> Path:
        """Add identity columns, check the contract column-wise, publish write-once."""
        entry = dictionary()[dataset]
        target, tokens = self._target(dataset, seed_free)
        df = self.identity_columns(df, seed_free=seed_free, tokens=tokens)
        validate_table(df, entry["schema"], where=str(target), state=self.state)
        publish_partition(target, lambda tmp: self._write(dataset, df, tmp / PART_FILE), state=self.state)
        out = target / PART_FILE
        self.record_output(dataset, out, df.height)
        return out

    @contextlib.contextmanager
    def stream(self, dataset: str, *, seed_free: bool = False) -> Iterator[StreamOut]:
        """Publish a large table batch by batch: `out.write(batch)` with rows in the dataset's sort order.

        Each batch gains its identity columns and is checked column-wise against the contract (its keys are
        the validation state's to check, over the whole table); the writer cuts fixed row groups and parts
        (engine.core.parquet_io.PartWriter), so the bytes do not depend on the batch sizes. The partition is
        published atomically when the block ends, and nothing is when it raises.
        """
        entry = dictionary()[dataset]
        target, tokens = self._target(dataset, seed_free)
        identity = self.identity_columns(pl.DataFrame({"_": [0]}), seed_free=seed_free, tokens=tokens)
        with staging_dir(target, state=self.state) as tmp:
            out = StreamOut(
                dataset, entry["schema"], identity.drop("_"), PartWriter(tmp), str(target), self.state
            )
            try:
                yield out
                files = out.writer.close(out.empty_schema())
            finally:
                out.writer.abort()
            if os.environ.get("ENGINE_FAULT_PAUSE") == dataset:
                _fault_pause(os.environ.get("ENGINE_FAULT_RESUME"))
        publish_dir(tmp, target, state=self.state)
        for name, rows in files:
            self.record_output(dataset, target / name, rows)

    def shard_of(self, merchant_id: np.ndarray) -> np.ndarray:
        """Each merchant's shard under this run's shard count (layer2_3.md §0.3)."""
        return shard_of(merchant_id, self.shards)

    def progress_meter(self, total: int, unit: str) -> ProgressMeter:
        """Rows done, rate and ETA of a long loop, to the job log at most every 10 s (README §9)."""
        return ProgressMeter(total, unit, self.progress)

    def record_output(self, dataset: str, path: Path, rows: int) -> None:
        """Vouch for a published file in the run report (and so in the bundle): path, rows, sha256."""
        self.outputs.append(
            {
                "dataset": dataset,
                "path": path.relative_to(self.root).as_posix(),
                "rows": rows,
                "sha256": sha256_file(path),
            }
        )

    @staticmethod
    def _write(dataset: str, df: pl.DataFrame, path: Path) -> None:
        write_parquet(df, path)
        if os.environ.get("ENGINE_FAULT_PAUSE") == dataset:  # fault injection for the crash tests
            _fault_pause(os.environ.get("ENGINE_FAULT_RESUME"))

    def progress(self, message: str) -> None:
        """Progress to stderr and to the run's operational log (logs/…/run_id=…/, never read back)."""
        line = f"[{self.state}] {message}"
        print(line, file=sys.stderr, flush=True)
        log = self.root / "logs" / self.segment / self.name / f"run_id={self.run_id}" / "state.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {line}\n")

    def _write_event_log(self) -> Path:
        """This run's draw events as one Parquet beside its state.log (operational: never read back, never
        bundled, so data and bundles are the same bytes whatever rng_event_log says)."""
        path = self.root / "logs" / self.segment / self.name / f"run_id={self.run_id}" / "rng_events.parquet"
        events = pl.concat(self._events)
        if self.event_log == "sample":  # sampled per family over all its events, as validation samples
            rule = self._sample_rule()
            events = pl.concat(
                group[
                    keyed_sample(
                        family, tuple(group[f"c{i}"].to_numpy() for i in range(4)), group.height, rule
                    )
                ]
                for (family,), group in events.group_by(["family"], maintain_order=True)
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        events.write_parquet(path)
        return path

    def deterministic_report(self) -> dict[str, Any]:
        """The byte-stable part of the run report (what validation bundles include)."""
        return {
            "deviations": dict(sorted(self.deviations.items())),
            "facts": self.facts,
            "manifest_fingerprint": self.mf,
            "outputs": sorted(self.outputs, key=lambda o: o["dataset"]),
            "parameter_hash": self.sealed.parameter_hash,
            "rng_accounting": self.ledger.as_dict(),
            "seed": self.seed,
            **({"scenario_id": self.scenario} if self.scenario is not None else {}),
            **({"shard": self.shard} if self.shard is not None else {}),
            "state": self.state,
            "warnings": self.warnings,
        }

    def finish(self) -> Path:
        report = self.deterministic_report()
        report["operational"] = {
            "run_id": self.run_id,
            "wall_seconds": round(time.perf_counter() - self.started, 3),
            "peak_rss_mib": round(peak_rss_mib(), 1),
        }
        if self._events:
            report["operational"]["rng_event_log"] = str(self._write_event_log().relative_to(self.root))
        path = report_file(self.root, self.segment, self.name, self.mf, self.seed, self.scenario, self.shard)
        replace_bytes(path, canonical_json_bytes(report))
        self.progress(
            "done: " + (", ".join(f"{o['dataset']}={o['rows']}" for o in self.outputs) or "no datasets") + " "
            f"in {report['operational']['wall_seconds']} s, peak {report['operational']['peak_rss_mib']} MiB"
        )
        return path


@dataclass
class StreamOut:
    """The open end of `StateContext.stream`: each batch is contract-checked column by column (and for the
    contract's row order, across batches) and goes to the part writer behind the partition's constant
    identity columns (`identity`: their one-row frame, checked once, when the stream opens)."""

    dataset: str
    schema: str
    identity: pl.DataFrame
    writer: PartWriter
    where: str
    state: str
    rows: int = 0
    data: list[str] = field(init=False)
    order: RowOrder = field(init=False)
    _constant: list[pa.Array] | None = None

    def __post_init__(self) -> None:
        names = self.identity.columns
        self.data = list(table_schema(self.schema).columns)[len(names) :]
        self.order = RowOrder(table_schema(self.schema))
        validate_columns(self.identity, self.schema, names, where=self.where, state=self.state)

    def empty_schema(self) -> pa.Schema:
        """The Arrow schema of an empty table under the contract (identity columns first)."""
        empty = pl.DataFrame(schema=table_schema(self.schema).polars_schema())
        return empty.to_arrow().schema

    def write(self, batch: pl.DataFrame) -> None:
        if batch.height == 0:
            return
        loose = [c for c, t in batch.schema.items() if isinstance(t, pl.Categorical)]
        if loose:  # see PartWriter: only a fixed vocabulary makes the bytes independent of the batches
            raise TypeError(f"{self.dataset}: streamed categorical columns {loose} must be pl.Enum")
        validate_columns(batch, self.schema, self.data, where=self.where, state=self.state)
        self.order.check(batch, where=self.where, state=self.state)
        data = batch.to_arrow()
        constant = self._identity_arrays(batch.height)
        fields = [pa.field(n, a.type) for n, a in zip(self.identity.columns, constant, strict=True)]
        schema = pa.schema([*fields, *data.schema])  # the data fields keep polars' Enum metadata
        self.writer.write(pa.Table.from_arrays([*constant, *data.columns], schema=schema))
        self.rows += batch.height

    def _identity_arrays(self, n: int) -> list[pa.Array]:
        """The constant identity columns for n rows: slices of arrays built once (and regrown when a batch is
        longer), so a batch does not pay for n copies of a 64-character fingerprint."""
        if self._constant is None or len(self._constant[0]) < n:
            size = max(n, 1 << 20)
            row = self.identity.to_arrow()
            self._constant = [pa.repeat(row.column(i)[0], size) for i in range(row.num_columns)]
        return [a.slice(0, n) for a in self._constant]
