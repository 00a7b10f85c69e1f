"""The context every state runs in: sealed reads, contract-checked write-once publishing, RNG, report."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel

from engine.core.canonical import canonical_json_bytes, sha256_file
from engine.core.contracts import PART_FILE, dataset_dir, dictionary, validate_table
from engine.core.errors import EngineError
from engine.core.gates import SealedInputs
from engine.core.identity import new_run_id
from engine.core.layout import report_file
from engine.core.parquet_io import write_parquet
from engine.core.policy import load_policy_file
from engine.core.publish import publish_partition, replace_bytes
from engine.core.rng import RngLedger, family_key


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class StateContext:
    """One state's run: `state` is the id (e.g. 1A.S2), `name` its short name (e.g. s2_nb_outlets)."""

    root: Path
    segment: str
    state: str
    name: str
    mf: str
    seed: int | None
    sealed: SealedInputs = field(init=False)
    ledger: RngLedger = field(default_factory=RngLedger)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    deviations: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    run_id: str = field(default_factory=new_run_id)

    def __post_init__(self) -> None:
        self.sealed = SealedInputs(self.root, self.segment, self.mf, self.state, self.seed)

    # --- reading -------------------------------------------------------------------------------------
    def policy(self, key: str) -> Any:
        """A sealed policy by key (e.g. '1A/hurdle_nb.yaml'), validated into its pydantic model."""
        seg, fname = key.split("/", 1)
        model: BaseModel = load_policy_file(
            seg, fname.removesuffix(".yaml"), self.sealed.path(key), state=self.state
        )
        return model

    def sealed_table(self, input_id: str) -> pl.DataFrame:
        return pl.read_parquet(self.sealed.path(input_id))

    def read(self, dataset: str, *, seed_free: bool = False) -> pl.DataFrame:
        """An earlier state's output of this segment (the segment's own chain, not an external input)."""
        entry = dictionary()[dataset]
        if not entry["owner"].startswith(self.segment + "."):
            raise EngineError(
                "E_UNSEALED_READ",
                f"{dataset} belongs to {entry['owner']}, not to segment {self.segment}",
                where=dataset,
                fix="read other segments' data only through the sealed-inputs list",
                state=self.state,
            )
        path = dataset_dir(self.root, dataset, mf=self.mf, seed=None if seed_free else self.seed) / PART_FILE
        if not path.is_file():
            raise EngineError(
                "E_INPUT_MISSING",
                f"{dataset} has not been produced",
                where=str(path),
                fix=f"run {entry['owner']} first",
                state=self.state,
            )
        self._check_recorded_digest(dataset, entry["owner"], path, seed_free)
        return pl.read_parquet(path)

    def _check_recorded_digest(self, dataset: str, owner: str, path: Path, seed_free: bool) -> None:
        """Intra-segment reads must match the digest the producing state recorded in its run report."""
        from engine.states import STATES

        report = report_file(
            self.root, self.segment, STATES[owner].name, self.mf, None if seed_free else self.seed
        )
        recorded = {}
        if report.is_file():
            recorded = {o["dataset"]: o["sha256"] for o in json.loads(report.read_text())["outputs"]}
        if recorded.get(dataset) != sha256_file(path):
            raise EngineError(
                "E_SEALED_INPUT_DIGEST_MISMATCH",
                f"{dataset} does not match the digest its producer {owner} recorded",
                where=str(path),
                fix=f"delete the partition and rerun so {owner} rebuilds it",
                state=self.state,
            )

    def owner_report(self, owner: str, *, seed_free: bool = False) -> dict[str, Any]:
        from engine.states import STATES

        path = report_file(
            self.root, self.segment, STATES[owner].name, self.mf, None if seed_free else self.seed
        )
        doc: dict[str, Any] = json.loads(path.read_text())
        return doc

    # --- randomness ------------------------------------------------------------------------------------
    def family_key(self, label: str) -> tuple[int, int]:
        if self.seed is None:
            raise EngineError(
                "E_RNG_SEED_FREE", f"seed-free state asked for family {label}", state=self.state
            )
        return family_key(self.seed, self.sealed.parameter_hash, f"{self.segment}.{label}")

    def count(self, deviation: str, n: int = 1) -> None:
        self.deviations[deviation] = self.deviations.get(deviation, 0) + int(n)

    # --- writing ---------------------------------------------------------------------------------------
    def identity_columns(self, df: pl.DataFrame, *, seed_free: bool = False) -> pl.DataFrame:
        cols = [] if seed_free else [pl.lit(self.seed, dtype=pl.UInt64).alias("seed")]
        cols.append(pl.lit(self.mf, dtype=pl.String).alias("manifest_fingerprint"))
        return df.select([*cols, *[pl.col(c) for c in df.columns]])

    def publish(self, dataset: str, df: pl.DataFrame, *, seed_free: bool = False) -> Path:
        """Add identity columns, check the contract column-wise, publish write-once."""
        entry = dictionary()[dataset]
        df = self.identity_columns(df, seed_free=seed_free)
        target = dataset_dir(self.root, dataset, mf=self.mf, seed=None if seed_free else self.seed)
        validate_table(df, entry["schema"], where=str(target), state=self.state)
        publish_partition(target, lambda tmp: self._write(dataset, df, tmp / PART_FILE), state=self.state)
        out = target / PART_FILE
        self.outputs.append({"dataset": dataset, "rows": df.height, "sha256": sha256_file(out)})
        return out

    @staticmethod
    def _write(dataset: str, df: pl.DataFrame, path: Path) -> None:
        write_parquet(df, path)
        if os.environ.get("ENGINE_FAULT_PAUSE") == dataset:  # fault injection for the crash tests
            time.sleep(3600)

    def progress(self, message: str) -> None:
        """Progress to stderr and to the run's operational log (logs/…/run_id=…/, never read back)."""
        line = f"[{self.state}] {message}"
        print(line, file=sys.stderr, flush=True)
        log = self.root / "logs" / self.segment / self.name / f"run_id={self.run_id}" / "state.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {line}\n")

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
        path = report_file(self.root, self.segment, self.name, self.mf, self.seed)
        replace_bytes(path, canonical_json_bytes(report))
        self.progress(
            "done: " + (", ".join(f"{o['dataset']}={o['rows']}" for o in self.outputs) or "no datasets") + " "
            f"in {report['operational']['wall_seconds']} s, peak {report['operational']['peak_rss_mib']} MiB"
        )
        return path
