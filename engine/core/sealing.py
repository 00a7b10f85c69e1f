"""Checking a segment spec's inputs against disk, and writing the S0 gate files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine import CONTRACT_VERSION
from engine.core.canonical import canonical_json_bytes, sha256_file, sha256_hex
from engine.core.errors import EngineError
from engine.core.gates import RECEIPT, SEALED
from engine.core.identity import manifest_fingerprint, parameter_hash, reference_identity
from engine.core.layout import gate_dir
from engine.core.policy import load_policy_file
from engine.core.policy_codes import check_policy_codes
from engine.core.publish import publish_bytes
from engine.core.reflock import check_locked_bytes


def check_policies(root: Path, spec: dict[str, Any], state: str) -> list[dict[str, str]]:
    """Every resolved policy file exists with its planned digest; the parameter_hash recomputes."""
    sealed, files = [], {}
    for pol in spec["policies"]:
        path = root / pol["path"]
        if not path.is_file():
            raise EngineError(
                "E_POLICY_MISSING",
                f"resolved policy {pol['key']} missing",
                where=str(path),
                fix="run the workflow through snakemake so the policy pack is written",
                state=state,
            )
        data = path.read_bytes()
        if sha256_hex(data) != pol["sha256"]:
            raise EngineError(
                "E_SEALED_INPUT_DIGEST_MISMATCH",
                f"resolved policy {pol['key']} was modified",
                where=str(path),
                fix="delete it and rerun; change policies in config/ instead",
                state=state,
            )
        files[pol["key"]] = data
        sealed.append({"id": pol["key"], "kind": "policy", "path": pol["path"], "sha256": pol["sha256"]})
    if parameter_hash(files) != spec["parameter_hash"]:
        raise EngineError(
            "E_IDENTITY_MISMATCH",
            "parameter_hash does not recompute from the policy files",
            where=spec["segment"],
            fix="rerun snakemake so the plan is recomputed",
            state=state,
        )
    return sealed


def check_references(root: Path, spec: dict[str, Any], state: str) -> list[dict[str, str]]:
    """Every reference exists, was built by the planned recipe, and has exactly the bytes the lock pins."""
    sealed = []
    for ref in spec["references"]:
        path = root / ref["path"]
        prov_path = path.parent / "provenance.json"
        if not path.is_file() or not prov_path.is_file():
            raise EngineError(
                "E_REFERENCE_MISSING",
                f"reference {ref['id']} is not built",
                where=str(path),
                fix=f"build it: snakemake --cores 1 {ref['path']}",
                state=state,
            )
        digest = check_locked_bytes(ref["id"], ref["recipe_id"], path, state=state)
        if digest != ref["sha256"]:
            raise EngineError(
                "E_IDENTITY_MISMATCH",
                f"reference {ref['id']}: the plan folded {ref['sha256'][:12]}, the lock pins {digest[:12]}",
                where=spec["segment"],
                fix="rerun snakemake so the plan is recomputed",
                state=state,
            )
        prov = json.loads(prov_path.read_text())
        if prov.get("recipe_id") != ref["recipe_id"] or prov.get("sha256") != digest:
            raise EngineError(
                "E_SEALED_INPUT_DIGEST_MISMATCH",
                f"reference {ref['id']} does not match its provenance (recipe or sha256)",
                where=str(prov_path),
                fix="delete the reference build folder and rerun to rebuild it",
                state=state,
            )
        sealed.append({"id": ref["id"], "kind": "reference", "path": ref["path"], "sha256": digest})
    return sealed


def check_fingerprint(spec: dict[str, Any], state: str) -> None:
    mf = manifest_fingerprint(
        segment=spec["segment"],
        parameter_hash_hex=spec["parameter_hash"],
        upstream=spec["upstream"],
        references=reference_identity(spec["references"]),
        contract_version=CONTRACT_VERSION,
        extra=spec["extra"],
    )
    if mf != spec["manifest_fingerprint"] or spec["contract_version"] != CONTRACT_VERSION:
        raise EngineError(
            "E_IDENTITY_MISMATCH",
            "manifest_fingerprint does not recompute from the spec",
            where=spec["segment"],
            fix="rerun snakemake so the plan is recomputed",
            state=state,
        )


def check_inputs(
    root: Path, spec: dict[str, Any], state: str
) -> tuple[list[dict[str, str]], dict[str, Path]]:
    """An S0's common opening: the fingerprint recomputes, every policy and reference matches disk, and the
    segment's own policies validate, naming only codes (countries, MCCs, tzids, currencies) the sealed
    references list. Returns the sealed inputs and their absolute paths by input id."""
    check_fingerprint(spec, state)
    inputs = check_policies(root, spec, state) + check_references(root, spec, state)
    paths = {i["id"]: root / i["path"] for i in inputs}
    seg = spec["segment"]
    own = {
        key: load_policy_file(seg, key[len(seg) + 1 :].removesuffix(".yaml"), paths[key], state=state)
        for key in paths
        if key.startswith(f"{seg}/")
    }
    check_policy_codes(own, paths, state)
    return inputs, paths


def write_gate(
    root: Path, spec: dict[str, Any], inputs: list[dict[str, str]], checks: list[str], state: str
) -> Path:
    """Publish sealed_inputs.json and s0_gate_receipt.json (seed-free, byte-stable, write-once)."""
    seg, mf = spec["segment"], spec["manifest_fingerprint"]
    sealed_doc = {
        "contract_version": CONTRACT_VERSION,
        "identity": {"extra": spec["extra"], "references": reference_identity(spec["references"])},
        "inputs": sorted(inputs, key=lambda i: i["id"]),
        "manifest_fingerprint": mf,
        "parameter_hash": spec["parameter_hash"],
        "segment": seg,
        "upstream": spec["upstream"],
    }
    sealed_bytes = canonical_json_bytes(sealed_doc)
    gdir = gate_dir(root, seg, mf)
    publish_bytes(gdir / SEALED, sealed_bytes, state=state)
    receipt = {
        "checks_passed": sorted(checks),
        "manifest_fingerprint": mf,
        "parameter_hash": spec["parameter_hash"],
        "segment": seg,
        "sealed_inputs_sha256": sha256_hex(sealed_bytes),
        "status": "PASS",
    }
    publish_bytes(gdir / RECEIPT, canonical_json_bytes(receipt), state=state)
    return gdir


def _bundle_output_digests(bundle: Path) -> dict[str, str]:
    """Relative path → sha256 of every output file the bundle's state reports vouch for."""
    reports = json.loads((bundle / "state_reports.json").read_text())
    return {o["path"]: o["sha256"] for doc in reports.values() for o in doc.get("outputs", [])}


def upstream_partitions(spec: dict[str, Any], name: str) -> list[tuple[str, dict[str, Any]]]:
    """The partitions of upstream dataset `name` a seed's world holds, as (sealed-id prefix, path tokens):
    one for a layer-1 dataset, one per scenario and shard where its path carries those tokens."""
    from engine.core.contracts import path_tokens

    tokens = path_tokens(name)
    scenarios: list[str | None] = list(spec["scenarios"]) if "scenario" in tokens else [None]
    shards: list[int | None] = list(range(spec["shards"])) if "shard" in tokens else [None]
    out = []
    for scenario in scenarios:
        for shard in shards:
            prefix = name
            if scenario is not None:
                prefix += f"/scenario_id={scenario}"
            if shard is not None:
                prefix += f"/shard={shard}"
            out.append((prefix, {"scenario": scenario, "shard": shard}))
    return out


def seal_upstream(
    root: Path, spec: dict[str, Any], seeds: list[int], datasets: dict[str, list[str]], state: str
) -> None:
    """Per seed: verify every upstream segment's flag (no PASS, no read), digest the upstream datasets
    this segment reads, and publish gate/seed=…/…/sealed_upstream.json.

    A single-part layer-1 dataset is sealed under its name; a partition per scenario or shard, or one of
    several parts, under `name/scenario_id=…/shard=…/part-…` (read back with SealedInputs.parts)."""
    from engine.core.contracts import PART_GLOB, dataset_dir, dictionary
    from engine.core.gates import UPSTREAM, require_passed
    from engine.core.layout import bundle_dir

    seg, mf = spec["segment"], spec["manifest_fingerprint"]
    for seed in seeds:
        flags, inputs = {}, []
        for up, names in sorted(datasets.items()):
            up_mf = spec["upstream"][up]
            bundle = bundle_dir(root, up, seed, up_mf)
            flags[up] = require_passed(bundle, upstream=up, state=state)
            passed = _bundle_output_digests(bundle)
            for name in names:
                seeded = "{seed}" in dictionary()[name]["path"]
                for prefix, tokens in upstream_partitions(spec, name):
                    folder = dataset_dir(root, name, mf=up_mf, seed=seed if seeded else None, **tokens)
                    parts = sorted(folder.glob(PART_GLOB))
                    for path in parts or [folder / "part-00000.parquet"]:
                        rel = str(path.relative_to(root))
                        digest = sha256_file(path)
                        if passed.get(rel) != digest:
                            raise EngineError(
                                "E_SEALED_INPUT_DIGEST_MISMATCH",
                                f"{name} differs from the bytes {up}'s validation passed",
                                where=str(path),
                                fix=f"delete the partition and rerun seg{up} to rebuild and revalidate it",
                                state=state,
                            )
                        single = prefix == name and len(parts) == 1
                        input_id = name if single else f"{prefix}/{path.name}"
                        inputs.append(
                            {"id": input_id, "kind": "upstream_dataset", "path": rel, "sha256": digest}
                        )
        doc = {
            "flags": flags,
            "inputs": sorted(inputs, key=lambda i: i["id"]),
            "manifest_fingerprint": mf,
            "seed": seed,
            "segment": seg,
        }
        publish_bytes(gate_dir(root, seg, mf, seed) / UPSTREAM, canonical_json_bytes(doc), state=state)


def check_same_as_upstream(
    root: Path,
    spec: dict[str, Any],
    inputs: list[dict[str, str]],
    upstream: str,
    key: str,
    code: str,
    state: str,
) -> None:
    """A policy sealed by this segment and an upstream one (the horizon: 2A, 2B, 5A, 5B) must be the same
    bytes in both, or the segments would describe different worlds (README §6)."""
    ours = {i["id"]: i["sha256"] for i in inputs}.get(key)
    path = gate_dir(root, upstream, spec["upstream"][upstream]) / SEALED
    theirs = {i["id"]: i["sha256"] for i in json.loads(path.read_text())["inputs"]}.get(key)
    if ours is None or ours != theirs:
        raise EngineError(
            code,
            f"{key} sealed here ({(ours or 'absent')[:12]}) differs from {upstream}'s "
            f"({(theirs or 'absent')[:12]})",
            where=str(path),
            fix=f"rerun snakemake so {upstream} and this segment seal the same {key}",
            state=state,
        )
