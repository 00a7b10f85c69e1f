"""The world plan: every segment's policies, references, parameter_hash and manifest_fingerprint.

Computed when Snakemake parses the workflow (rules/common.smk), so every output path is known to the DAG,
and recomputed by each S0 gate, which refuses to run if the two disagree. What each segment seals, and in
which order, is the segment registry's (engine/states.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import CONTRACT_VERSION
from engine.core import yaml12
from engine.core.canonical import sha256_hex
from engine.core.config import RunConfig
from engine.core.digest_cache import DigestCache
from engine.core.errors import EngineError
from engine.core.identity import manifest_fingerprint, parameter_hash, reference_identity
from engine.core.policy import resolve_policy
from engine.core.reflock import locked_sha256
from engine.refdata.registry import recipe, recipe_id
from engine.states import SEGMENTS, PolicyField


@dataclass(frozen=True)
class PolicyFile:
    seg: str
    name: str
    data: bytes

    @property
    def key(self) -> str:
        return f"{self.seg}/{self.name}.yaml"

    @property
    def sha256(self) -> str:
        return sha256_hex(self.data)

    @property
    def relpath(self) -> str:
        return f"policies/{self.seg}/{self.name}/sha256={self.sha256}.yaml"


@dataclass(frozen=True)
class Reference:
    """A sealed reference artefact: built by `recipe_id`, whose bytes the reference lock pins to `sha256`."""

    name: str
    recipe_id: str
    filename: str
    sha256: str

    @property
    def reldir(self) -> str:
        return f"resources/{self.name}/build={self.recipe_id}"

    def spec(self) -> dict[str, str]:
        return {"id": self.name, "path": self.relpath, "recipe_id": self.recipe_id, "sha256": self.sha256}

    @property
    def relpath(self) -> str:
        return f"{self.reldir}/{self.filename}"


@dataclass(frozen=True)
class SegmentPlan:
    segment: str
    policies: tuple[PolicyFile, ...]
    references: tuple[Reference, ...]
    upstream: dict[str, str]
    parameter_hash: str
    manifest_fingerprint: str
    extra: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)
    shards: int = 0

    def spec(self) -> dict[str, Any]:
        """What the segment's S0 needs to seal and to recompute the identity."""
        return {
            "contract_version": CONTRACT_VERSION,
            "extra": self.extra,
            "manifest_fingerprint": self.manifest_fingerprint,
            "parameter_hash": self.parameter_hash,
            "policies": [{"key": p.key, "path": p.relpath, "sha256": p.sha256} for p in self.policies],
            "references": [r.spec() for r in self.references],
            "segment": self.segment,
            "upstream": self.upstream,
            **self.files,
            **({"seeds": self.seeds} if self.seeds else {}),
            **({"scenarios": self.scenarios, "shards": self.shards} if self.scenarios else {}),
        }


def _universe_extra(cfg: RunConfig, cache: DigestCache) -> dict[str, str]:
    src = cfg.merchant_universe
    if src.source == "generate":
        return {"universe_source": "generate"}
    path = Path(src.path or "")
    if path.is_file():
        try:
            return {"universe_source": "file", "universe_sha256": cache.digest(path)}
        except OSError as exc:
            problem = f"cannot be read ({exc.strerror})"
    elif path.is_dir():
        problem = "is a directory"
    else:
        problem = "is not a regular file" if path.exists() else "does not exist"
    raise EngineError(
        "E_CONFIG_INVALID",
        f"merchant universe path {problem}",
        where=f"config field merchant_universe.path ({path})",
        fix="point merchant_universe.path at a readable CSV or Parquet file",
        state="config",
    )


def _reference(name: str) -> Reference:
    rid = recipe_id(name)
    return Reference(name, rid, recipe(name).filename, locked_sha256(name, rid))


def _reference_name(ref: str | PolicyField, policies: tuple[PolicyFile, ...]) -> str:
    """A reference id, or the one a sealed policy's field names."""
    if isinstance(ref, str):
        return ref
    policy = next(p for p in policies if p.key == f"{ref.seg}/{ref.name}.yaml")
    return str(yaml12.load(policy.data)[ref.field])


def build_plan(cfg: RunConfig, cache: DigestCache | None = None) -> dict[str, SegmentPlan]:
    """Resolve every segment in dependency order; a policy change moves only its segment and later ones."""
    cache = cache or DigestCache()
    plans: dict[str, SegmentPlan] = {}
    for seg, sdef in SEGMENTS.items():
        config_docs = {"horizon": cfg.horizon.as_policy()}
        policies = tuple(
            PolicyFile(s, n, resolve_policy(s, n, cfg.policy_overrides, config_docs))
            for s, n in sdef.policies
        )
        refs = tuple(_reference(_reference_name(ref, policies)) for ref in sdef.references)
        ph = parameter_hash({p.key: p.data for p in policies})
        upstream = {u: plans[u].manifest_fingerprint for u in sdef.upstream}
        extra = _universe_extra(cfg, cache) if sdef.seals_universe else {}
        files = (
            {"universe_path": str(Path(cfg.merchant_universe.path).resolve())}
            if "universe_sha256" in extra
            else {}
        )
        mf = manifest_fingerprint(
            segment=seg,
            parameter_hash_hex=ph,
            upstream=upstream,
            references=reference_identity(r.spec() for r in refs),
            contract_version=CONTRACT_VERSION,
            extra=extra,
        )
        seeds = list(cfg.seeds) if sdef.per_seed_upstream else []
        scenarios = list(cfg.scenarios) if sdef.per_scenario else []
        shards = cfg.shards if sdef.per_scenario else 0
        plans[seg] = SegmentPlan(
            seg, policies, refs, upstream, ph, mf, extra, files, seeds, scenarios, shards
        )
    return plans
