# Paths, identity and helpers shared by every segment's rules. The world plan (policies, references,
# parameter hashes, manifest fingerprints) is computed here, at parse time, so the DAG knows every path.
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir)))

from snakemake.settings.types import DeploymentMethod

from engine.core.config import load_run_config
from engine.core.contracts import dataset_file
from engine.core.digest_cache import DigestCache
from engine.core.errors import EngineError
from engine.core.layout import bundle_dir, gate_dir, ingress_report_path, report_file
from engine.core.plan import build_plan

try:
    CFG = load_run_config(dict(config))
    ROOT = Path(CFG.output_root).resolve()
    _cache = DigestCache(ROOT / ".cache" / "digests.json")
    PLAN = build_plan(CFG, _cache)
    _cache.save()
except EngineError as _err:
    print(_err.line(), file=sys.stderr)
    raise SystemExit(1)

# Each output root is its own Snakemake working directory: its metadata and lock live in ROOT/.snakemake,
# so two roots never touch each other and can be built at the same time.
workdir: str(ROOT)


SEEDS = list(CFG.seeds)
_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
ENGINE = ("python" if _CONDA else shlex.quote(sys.executable)) + " -m engine"
ENV = f"PYTHONPATH={shlex.quote(str(Path(workflow.basedir)))}${{PYTHONPATH:+:$PYTHONPATH}}"
CONDA_ENV = str(Path(workflow.basedir) / "envs" / "engine.yaml")
QROOT = shlex.quote(str(ROOT))

wildcard_constraints:
    seed=r"\d+",


def ds(name, mf, seed="{seed}"):
    """A dataset's part file; `seed` stays a wildcard unless given."""
    return str(dataset_file(ROOT, name, mf=mf, seed=seed))


def policy_files(seg):
    return [str(ROOT / p.relpath) for p in PLAN[seg].policies]


def reference_files(seg):
    out = []
    for r in PLAN[seg].references:
        out += [str(ROOT / r.relpath), str(ROOT / r.reldir / "provenance.json")]
    return out


def spec_arg(seg):
    return shlex.quote(json.dumps(PLAN[seg].spec(), sort_keys=True))


def state_report(seg, name, seeded=True):
    return str(report_file(ROOT, seg, name, PLAN[seg].manifest_fingerprint, "{seed}" if seeded else None))


POLICY_BYTES = {(p.seg, p.name, p.sha256): p.data for plan in PLAN.values() for p in plan.policies}


localrules:
    policy_file,


rule policy_file:
    """A resolved policy (shipped policy + run-config overrides), content-addressed by its sha256."""
    output:
        str(ROOT / "policies/{pseg}/{pname}/sha256={digest}.yaml"),
    run:
        from engine.core.publish import publish_bytes

        publish_bytes(Path(output[0]), POLICY_BYTES[(wildcards.pseg, wildcards.pname, wildcards.digest)])
