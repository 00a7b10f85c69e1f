"""`engine verify ROOT`: re-derive a world's trust from its bytes, not from its flags.

A `_passed.flag` vouches for its bundle; the bundle's state reports vouch for every data file by sha256; the
segment's gate vouches for every sealed input (policies, references, upstream datasets) by sha256, and its
identity block lets the manifest fingerprint be recomputed from those digests. Verify walks that chain down to
the bytes on disk: every vouched file is re-digested, every reference is checked against the reference lock,
every upstream flag a gate recorded must still be the upstream's flag, the fingerprint must recompute, and any
data partition no bundle vouches for (a deleted or unreadable bundle) is a failure too.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.core.canonical import sha256_file, sha256_hex
from engine.core.errors import EngineError
from engine.core.gates import FLAG, GATE_EVIDENCE, INDEX, RECEIPT, SEALED, UPSTREAM, verify_bundle
from engine.core.identity import manifest_fingerprint, parameter_hash
from engine.core.layout import bundle_dir, gate_dir

BUNDLE_RE = re.compile(
    r"data/layer\d+/(?P<seg>[^/]+)/validation/seed=(?P<seed>\d+)/manifest_fingerprint=(?P<mf>[0-9a-f]{64})$"
)
NOT_DATA = ("gate", "validation")
PROGRESS_SECONDS = 2.0


@dataclass(frozen=True)
class Finding:
    """One thing that does not verify: a stable code, the file it concerns and what is wrong."""

    code: str
    path: Path
    why: str

    def line(self) -> str:
        return f"  {self.code} {self.path}: {self.why}"


@dataclass
class Digests:
    """sha256 of each file at most once per run, with a progress line on stderr every few seconds."""

    files: int = 0
    bytes: int = 0
    started: float = field(default_factory=time.perf_counter)
    _cache: dict[Path, str | None] = field(default_factory=dict)
    _last: float = field(default_factory=time.perf_counter)

    def of(self, path: Path) -> str | None:
        """The file's sha256, or None when it is missing or unreadable."""
        if path not in self._cache:
            try:
                self._cache[path] = sha256_file(path)
                self.files += 1
                self.bytes += path.stat().st_size
            except OSError:
                self._cache[path] = None
            now = time.perf_counter()
            if now - self._last >= PROGRESS_SECONDS:
                self._last = now
                print(f"verify: {self.summary()} so far", file=sys.stderr, flush=True)
        return self._cache[path]

    def summary(self) -> str:
        return (
            f"{self.files} files ({self.bytes / 2**20:.1f} MiB) re-digested in "
            f"{time.perf_counter() - self.started:.1f} s"
        )


def _read_json(path: Path) -> Any:
    """A JSON document, or None when missing or unreadable (the caller names what that means)."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _check_file(digests: Digests, path: Path, want: str, code: str, what: str) -> Iterator[Finding]:
    actual = digests.of(path)
    if actual is None:
        yield Finding("E_VERIFY_FILE_MISSING", path, f"{what} is missing or unreadable")
    elif actual != want:
        yield Finding(code, path, f"{what} changed: vouched sha256 {want[:12]}, now {actual[:12]}")


@dataclass
class WorldVerifier:
    """Verifies bundles of one output root and remembers which data files they vouched for."""

    root: Path
    digests: Digests = field(default_factory=Digests)
    vouched: set[Path] = field(default_factory=set)
    _gates: dict[tuple[str, str], list[Finding]] = field(default_factory=dict)
    _sealed: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def bundle(self, bundle: Path) -> list[Finding]:
        m = BUNDLE_RE.search(bundle.as_posix())
        if m is None:
            return [Finding("E_BUNDLE_INVALID", bundle, "not a validation bundle path")]
        seg, seed, mf = m["seg"], int(m["seed"]), m["mf"]
        try:
            ok, why = verify_bundle(bundle)
        except (OSError, ValueError) as exc:  # an unreadable index or flag
            ok, why = False, f"unreadable bundle file: {exc}"
        found = [] if ok else [Finding("E_BUNDLE_INVALID", bundle, why)]
        found += self._gate_evidence(bundle, seg, seed, mf)
        found += self._outputs(bundle, mf)
        if (seg, mf) not in self._gates:
            self._gates[(seg, mf)] = list(self._gate(seg, mf))
        found += self._gates[(seg, mf)]
        found += self._upstream(seg, seed, mf)
        return found

    def _gate_evidence(self, bundle: Path, seg: str, seed: int, mf: str) -> Iterator[Finding]:
        """The gate files this seed rests on still have the digests the bundle recorded in gate.json."""
        recorded = _read_json(bundle / GATE_EVIDENCE)
        if not isinstance(recorded, dict):
            yield Finding("E_BUNDLE_INVALID", bundle / GATE_EVIDENCE, "missing or unreadable")
            return
        for name, path in (
            (SEALED, gate_dir(self.root, seg, mf) / SEALED),
            (UPSTREAM, gate_dir(self.root, seg, mf, seed) / UPSTREAM),
        ):
            if name in recorded:
                actual = self.digests.of(path)
                if actual != recorded[name]:
                    why = "missing" if actual is None else f"changed since validation (now {actual[:12]})"
                    yield Finding("E_GATE_INVALID", path, why)

    def _outputs(self, bundle: Path, mf: str) -> Iterator[Finding]:
        """Every data file the bundle's state reports vouch for still has its vouched bytes."""
        from engine.core.contracts import dataset_file

        reports = _read_json(bundle / "state_reports.json")
        if not isinstance(reports, dict):
            yield Finding("E_BUNDLE_INVALID", bundle / "state_reports.json", "missing or unreadable")
            return
        for state, doc in sorted(reports.items()):
            for out in doc.get("outputs", []):
                if "path" in out:
                    path = self.root / out["path"]
                else:
                    path = dataset_file(self.root, out["dataset"], mf=mf, seed=doc.get("seed"))
                self.vouched.add(path)
                yield from _check_file(
                    self.digests, path, out["sha256"], "E_DATA_DIGEST_MISMATCH", f"{state} output"
                )

    def _gate(self, seg: str, mf: str) -> Iterator[Finding]:
        """The S0 gate: receipt, every sealed input's bytes, the reference lock, the identity recomputed."""
        gdir = gate_dir(self.root, seg, mf)
        sealed_bytes = _read_bytes(gdir / SEALED)
        receipt = _read_json(gdir / RECEIPT)
        if sealed_bytes is None or not isinstance(receipt, dict):
            yield Finding("E_GATE_MISSING", gdir, "sealed_inputs.json or s0_gate_receipt.json missing")
            return
        if receipt.get("sealed_inputs_sha256") != sha256_hex(sealed_bytes):
            yield Finding(
                "E_GATE_INVALID", gdir / SEALED, "does not match the receipt's sealed_inputs_sha256"
            )
        sealed = self._sealed[(seg, mf)] = json.loads(sealed_bytes)
        yield from self._inputs(sealed["inputs"])
        yield from self._identity(seg, mf, sealed, gdir / SEALED)

    def _inputs(self, inputs: list[dict[str, str]]) -> Iterator[Finding]:
        from engine.core.reflock import locked_sha256

        for entry in inputs:
            path = self.root / entry["path"]
            if entry["kind"] == "upstream_dataset":
                self.vouched.add(path)
            yield from _check_file(
                self.digests, path, entry["sha256"], "E_SEALED_INPUT_DIGEST_MISMATCH", f"sealed {entry['id']}"
            )
            if entry["kind"] == "reference":
                recipe = Path(entry["path"]).parent.name.removeprefix("build=")
                try:
                    want = locked_sha256(entry["id"], recipe, state="verify")
                except EngineError as err:
                    yield Finding(err.code, path, err.what)
                    continue
                if want != entry["sha256"]:
                    yield Finding(
                        "E_REFERENCE_LOCK_MISMATCH",
                        path,
                        f"sealed as {entry['sha256'][:12]}, the reference lock pins {want[:12]}",
                    )

    def _identity(self, seg: str, mf: str, sealed: dict[str, Any], where: Path) -> Iterator[Finding]:
        """parameter_hash and manifest_fingerprint recompute from the sealed digests."""
        identity = sealed.get("identity")
        if not isinstance(identity, dict):
            yield Finding("E_IDENTITY_MISMATCH", where, "no identity block (built by an older engine)")
            return
        policies = {}
        for entry in sealed["inputs"]:
            if entry["kind"] == "policy":
                data = _read_bytes(self.root / entry["path"])
                if data is None:
                    return  # already reported as missing
                policies[entry["id"]] = data
        if parameter_hash(policies) != sealed["parameter_hash"]:
            yield Finding("E_IDENTITY_MISMATCH", where, "parameter_hash does not recompute from the policies")
        refs = {e["id"]: e["sha256"] for e in sealed["inputs"] if e["kind"] == "reference"}
        if {k: v["sha256"] for k, v in identity["references"].items()} != refs:
            yield Finding(
                "E_IDENTITY_MISMATCH", where, "the identity's reference digests differ from the sealed"
            )
        recomputed = manifest_fingerprint(
            segment=seg,
            parameter_hash_hex=sealed["parameter_hash"],
            upstream=sealed["upstream"],
            references=identity["references"],
            contract_version=sealed["contract_version"],
            extra=identity["extra"],
        )
        if recomputed != mf:
            yield Finding(
                "E_IDENTITY_MISMATCH", where, f"manifest_fingerprint recomputes to {recomputed[:12]}"
            )

    def _upstream(self, seg: str, seed: int, mf: str) -> Iterator[Finding]:
        """This seed's sealed upstream datasets and the upstream flags they were sealed under."""
        path = gate_dir(self.root, seg, mf, seed) / UPSTREAM
        if not path.exists():
            return
        doc = _read_json(path)
        if not isinstance(doc, dict):
            yield Finding("E_GATE_INVALID", path, "unreadable")
            return
        sealed = self._sealed.get((seg, mf), {})  # read by _gate, which runs first
        for up, flag_digest in sorted(doc["flags"].items()):
            up_bundle = bundle_dir(self.root, up, seed, sealed.get("upstream", {}).get(up, ""))
            flag = _read_bytes(up_bundle / FLAG)
            if flag is None:
                yield Finding(
                    "E_BUNDLE_MISSING", up_bundle, f"upstream {up}'s flag, sealed by {seg}, is gone"
                )
            elif flag.decode("utf-8", "replace").split("=", 1)[-1].strip() != flag_digest:
                yield Finding(
                    "E_UPSTREAM_FLAG_CHANGED", up_bundle / FLAG, f"differs from the flag {seg} sealed"
                )
        yield from self._inputs(doc["inputs"])

    def unvouched(self) -> dict[Path, list[Path]]:
        """Data partitions holding files no verified bundle or gate vouched for, with those files."""
        out: dict[Path, list[Path]] = {}
        for path in sorted(self.root.glob("data/layer*/*/*/**/*")):
            rel = path.relative_to(self.root).parts
            if rel[3] in NOT_DATA or not path.is_file() or any(p.startswith(".tmp-") for p in rel):
                continue
            if path not in self.vouched:
                out.setdefault(path.parent, []).append(path)
        return out


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def find_bundles(root: Path) -> list[Path]:
    return sorted(
        p for p in root.glob("data/layer*/*/validation/seed=*/manifest_fingerprint=*") if p.is_dir()
    )


def verify(path: Path) -> int:
    """Print PASS/FAIL per bundle (and per unvouched partition) with one line per finding; the exit code."""
    if (path / INDEX).is_file() or BUNDLE_RE.search(path.as_posix()):
        bundles, root, scan = [path], path.parents[5], False
    else:
        bundles, root, scan = find_bundles(path), path, True
    data_exists = scan and any(root.glob("data/layer*/*/*/**/*.parquet"))
    if not bundles and not data_exists:
        raise EngineError(
            "E_VERIFY_NOTHING",
            "no validation bundle or data",
            where=str(path),
            fix="point verify at an output root (or a bundle); build a segment first",
            state="verify",
        )
    world = WorldVerifier(root)
    failed = 0
    for bundle in bundles:
        found = world.bundle(bundle)
        failed += bool(found)
        print(f"{'FAIL' if found else 'PASS'} {bundle}", flush=True)
        for finding in found:
            print(finding.line(), flush=True)
    for partition, files in (world.unvouched() if scan else {}).items():
        failed += 1
        print(f"FAIL {partition}", flush=True)
        print(
            Finding(
                "E_BUNDLE_MISSING", partition, f"{len(files)} data file(s) no validation bundle vouches for"
            ).line(),
            flush=True,
        )
    status = f"{failed} FAIL" if failed else "all PASS"
    print(f"verify: {len(bundles)} bundles, {world.digests.summary()}: {status}", file=sys.stderr, flush=True)
    return 1 if failed else 0
