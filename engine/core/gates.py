"""Gates: sealed inputs (read only through the sealed list) and validation bundles with `_passed.flag`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.core.canonical import canonical_json_bytes, sha256_file, sha256_hex
from engine.core.errors import EngineError
from engine.core.layout import gate_dir
from engine.core.publish import publish_dir, staging_dir

FLAG = "_passed.flag"
INDEX = "index.json"
SEALED = "sealed_inputs.json"
RECEIPT = "s0_gate_receipt.json"
UPSTREAM = "sealed_upstream.json"
GATE_EVIDENCE = "gate.json"
# every bundle's files (a segment may add evidence); the rules name them as the last state's outputs
BUNDLE_FILES = (
    INDEX,
    "checks.json",
    "realism.json",
    "rng_accounting.json",
    "state_reports.json",
    GATE_EVIDENCE,
    FLAG,
)

if TYPE_CHECKING:
    import polars as pl


def read_input_table(path: Path, *, state: str, columns: list[str] | None = None) -> pl.DataFrame:
    """Read a sealed input or an earlier state's table (only `columns`, if given); bytes that do not decode
    are the user's E_INPUT_CORRUPT naming the file (a digest match only proves nothing changed since
    sealing)."""
    import polars as pl  # here, not at the top: `engine verify` imports this module and needs no polars

    try:
        return pl.read_parquet(path, columns=columns)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        detail = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise EngineError(
            "E_INPUT_CORRUPT",
            f"the table does not decode as Parquet: {detail}",
            where=str(path),
            fix="delete the file and rerun so the workflow rebuilds it (for a user file: re-export it)",
            state=state,
        ) from exc


@dataclass(frozen=True)
class SealedInput:
    id: str
    kind: str
    path: str
    sha256: str


class SealedInputs:
    """The segment's sealed-inputs list; every read is digest-checked against it."""

    def __init__(self, root: Path, seg: str, mf: str, state: str, seed: int | None = None) -> None:
        self.root, self.seg, self.mf, self.state = root, seg, mf, state
        path = gate_dir(root, seg, mf) / SEALED
        if not path.is_file():
            raise EngineError(
                "E_GATE_MISSING",
                "the segment's S0 gate has not sealed its inputs",
                where=str(path),
                fix=f"run the segment's S0 first (snakemake seg{seg})",
                state=state,
            )
        doc = json.loads(path.read_text())
        self.doc = doc
        self.inputs = {i["id"]: SealedInput(**i) for i in doc["inputs"]}
        upstream = gate_dir(root, seg, mf, seed) / UPSTREAM if seed is not None else None
        if upstream is not None and upstream.is_file():  # this seed's upstream datasets, sealed by S0
            self.inputs.update(
                {i["id"]: SealedInput(**i) for i in json.loads(upstream.read_text())["inputs"]}
            )
        self._verified: set[str] = set()

    @property
    def parameter_hash(self) -> str:
        return str(self.doc["parameter_hash"])

    def parts(self, dataset: str, *, scenario: str | None = None, shard: int | None = None) -> list[Path]:
        """The digest-checked part files of a sealed upstream dataset partition (sealing.seal_upstream's ids:
        the bare name for a single-part layer-1 dataset, else name/scenario_id=…/shard=…/part-…)."""
        if scenario is None and shard is None and dataset in self.inputs:
            return [self.path(dataset)]
        prefix = dataset
        if scenario is not None:
            prefix += f"/scenario_id={scenario}"
        if shard is not None:
            prefix += f"/shard={shard}"
        ids = sorted(i for i in self.inputs if i.startswith(prefix + "/part-"))
        if not ids:
            self.path(prefix)  # raises E_UNSEALED_READ naming the partition
        return [self.path(i) for i in ids]

    def path(self, input_id: str) -> Path:
        """Path of a sealed input, after checking its bytes still match the sealed digest."""
        entry = self.inputs.get(input_id)
        if entry is None:
            raise EngineError(
                "E_UNSEALED_READ",
                f"input {input_id!r} is not in the sealed-inputs list",
                where=str(gate_dir(self.root, self.seg, self.mf) / SEALED),
                fix="states may read only what their segment's S0 sealed",
                state=self.state,
            )
        path = self.root / entry.path
        if input_id not in self._verified:
            if not path.is_file():
                raise EngineError(
                    "E_SEALED_INPUT_MISSING",
                    f"sealed input {input_id!r} is gone",
                    where=str(path),
                    fix="rebuild it (snakemake rebuilds missing inputs) and rerun",
                    state=self.state,
                )
            actual = sha256_file(path)
            if actual != entry.sha256:
                raise EngineError(
                    "E_SEALED_INPUT_DIGEST_MISMATCH",
                    f"sealed input {input_id!r} changed (sealed {entry.sha256[:12]}, now {actual[:12]})",
                    where=str(path),
                    fix="restore the original file, or delete it and let the workflow rebuild it",
                    state=self.state,
                )
            self._verified.add(input_id)
        return path


def bundle_digest(bundle: Path, index: list[dict[str, str]]) -> str:
    """sha256 over the indexed files' bytes in path order."""
    import hashlib

    h = hashlib.sha256()
    for entry in sorted(index, key=lambda e: e["path"]):
        h.update((bundle / entry["path"]).read_bytes())
    return h.hexdigest()


def publish_bundle(target: Path, files: dict[str, tuple[bytes, str]], *, passed: bool, state: str) -> str:
    """Publish evidence files + index.json (+ `_passed.flag` iff passed); returns the bundle digest."""
    index = sorted(
        ({"path": name, "sha256": sha256_hex(data), "role": role} for name, (data, role) in files.items()),
        key=lambda e: e["path"],
    )
    with staging_dir(target) as tmp:
        for name, (data, _role) in files.items():
            (tmp / name).write_bytes(data)
        (tmp / INDEX).write_bytes(canonical_json_bytes(index))
        digest = bundle_digest(tmp, index)
        if passed:
            (tmp / FLAG).write_text(f"sha256_hex = {digest}\n")
    publish_dir(tmp, target, state=state)
    return digest


def verify_bundle(bundle: Path) -> tuple[bool, str]:
    """Re-check a bundle: every indexed file's digest, then the flag's bundle digest."""
    index_path = bundle / INDEX
    if not index_path.is_file():
        return False, "no index.json"
    index: list[dict[str, Any]] = json.loads(index_path.read_text())
    for entry in index:
        path = bundle / entry["path"]
        if not path.is_file():
            return False, f"indexed file missing: {entry['path']}"
        if sha256_file(path) != entry["sha256"]:
            return False, f"indexed file changed: {entry['path']}"
    flag = bundle / FLAG
    if not flag.is_file():
        return False, "no _passed.flag (validation did not pass)"
    want = f"sha256_hex = {bundle_digest(bundle, index)}\n"
    if flag.read_text() != want:
        return False, "_passed.flag does not match the bundle digest"
    return True, "PASS"


def require_passed(bundle: Path, *, upstream: str, state: str) -> str:
    """No PASS, no read: verify an upstream bundle and return its flag digest."""
    ok, why = verify_bundle(bundle)
    if not ok:
        raise EngineError(
            "E_UPSTREAM_NOT_PASSED",
            f"upstream segment {upstream} has not passed validation: {why}",
            where=str(bundle),
            fix=f"build seg{upstream} first and check its validation report",
            state=state,
        )
    return (bundle / FLAG).read_text().split("=", 1)[1].strip()


def gate_digests(root: Path, seg: str, mf: str, seed: int) -> dict[str, str]:
    """sha256 of the gate files a seed's bundle rests on; bundled as gate.json so the flag covers them."""
    files = {SEALED: gate_dir(root, seg, mf) / SEALED, UPSTREAM: gate_dir(root, seg, mf, seed) / UPSTREAM}
    return {name: sha256_file(path) for name, path in files.items() if path.is_file()}
