# Paths, identity and helpers shared by every segment's rules. The world plan (policies, references,
# parameter hashes, manifest fingerprints) is computed here, at parse time, so the DAG knows every path.
import atexit
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir)))

from snakemake.settings.types import DeploymentMethod

from engine.core.canonical import canonical_json_bytes, sha256_hex
from engine.core.config import load_run_config
from engine.core.contracts import dataset_file, dictionary
from engine.core.gates import BUNDLE_FILES
from engine.core.digest_cache import DigestCache
from engine.core.errors import EngineError
from engine.core.layout import bundle_dir, gate_dir, ingress_report_path, report_file
from engine.core.output_root import check_output_root
from engine.core.plan import build_plan
from engine.core.publish import publish_bytes, replace_bytes

try:
    CFG = load_run_config(dict(config))
    ROOT = Path(CFG.output_root).resolve()
    check_output_root(ROOT)
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
# layer 2/3 partitions: which scenarios run and how many shards (paths only, never values or fingerprints)
SCENARIOS = list(CFG.scenarios)
SHARDS = list(range(CFG.shards))
_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
ENGINE = ("python" if _CONDA else shlex.quote(sys.executable)) + " -m engine"
ENV = f"PYTHONPATH={shlex.quote(str(Path(workflow.basedir)))}${{PYTHONPATH:+:$PYTHONPATH}} ENGINE_RNG_EVENT_LOG={CFG.rng_event_log}"
CONDA_ENV = str(Path(workflow.basedir) / "envs" / "engine.yaml")
QROOT = shlex.quote(str(ROOT))

wildcard_constraints:
    seed=r"\d+",
    scenario=r"[a-z][a-z0-9_]{0,31}",
    shard=r"\d+",


def ds(name, mf, seed="{seed}", scenario="{scenario}", shard="{shard}"):
    """A dataset's first part file; seed, scenario and shard stay wildcards unless given (a streamed
    partition may hold more parts: its run report, also an output, vouches for all of them)."""
    return str(dataset_file(ROOT, name, mf=mf, seed=seed, scenario=scenario, shard=shard))


def owned_datasets(state):
    """The datasets the dictionary names `state` the owner of, in its order."""
    return [name for name, entry in dictionary().items() if entry["owner"] == state]


def policy_files(seg):
    return [str(ROOT / p.relpath) for p in PLAN[seg].policies]


def reference_files(seg):
    out = []
    for r in PLAN[seg].references:
        out += [str(ROOT / r.relpath), str(ROOT / r.reldir / "provenance.json")]
    return out


def state_report(seg, name, seeded=True, scenario=False, shard=False):
    return str(
        report_file(
            ROOT,
            seg,
            name,
            PLAN[seg].manifest_fingerprint,
            "{seed}" if seeded else None,
            "{scenario}" if scenario else None,
            "{shard}" if shard else None,
        )
    )


def _job_file(kind, seg, name, seeded, filename, scenario=False, shard=False):
    """Per job, scoped like its outputs (seed, manifest_fingerprint, scenario, shard), never by run_id:
    Snakemake needs the same path at every parse, and a rerun of the job overwrites its own."""
    seed = ["seed={seed}"] if seeded else []
    mf = f"manifest_fingerprint={PLAN[seg].manifest_fingerprint}"
    parts = ["scenario_id={scenario}"] if scenario else []
    parts += ["shard={shard}"] if shard else []
    return str(ROOT.joinpath(kind, seg, name, *seed, mf, *parts, filename))


def job_log(seg, name, seeded=True, scenario=False, shard=False):
    """The job's stdout and stderr; Snakemake names it when the job fails, onerror reprints its ERROR line."""
    return _job_file("logs", seg, name, seeded, "job.log", scenario, shard)


def job_benchmark(seg, name, seeded=True, scenario=False, shard=False):
    """Snakemake's wall time and max RSS of the job (docs/benchmarks.md sizes mem_mb from these)."""
    return _job_file("benchmarks", seg, name, seeded, "benchmark.tsv", scenario, shard)


TO_LOG = " > {log:q} 2>&1"


def run_state(mf, seeded=True, scenario=False, shard=False, layer2=False):
    """The shell line of a state rule with `params.state`; all its output goes to the job's log. A layer-2/3
    state also gets the run's scenarios and shard count (`layer2`), and its own scenario and shard."""
    seed = " --seed {wildcards.seed}" if seeded else ""
    if layer2 or scenario or shard:
        seed += f" --scenarios {','.join(SCENARIOS)} --shards {len(SHARDS)}"
    seed += " --scenario {wildcards.scenario}" if scenario else ""
    seed += " --shard {wildcards.shard}" if shard else ""
    return f"{{ENV}} {{ENGINE}} run {{params.state}} --root {{QROOT}} --mf {mf}{seed}{TO_LOG}"


def run_spec_state(state):
    """The shell line of an S0 or ingress rule, which reads its segment's spec file (input `spec`)."""
    return f"{{ENV}} {{ENGINE}} run {state} --root {{QROOT}} --spec-file {{input.spec:q}}{TO_LOG}"


POLICY_BYTES = {(p.seg, p.name, p.sha256): p.data for plan in PLAN.values() for p in plan.policies}
_SPECS = {seg: canonical_json_bytes(plan.spec()) for seg, plan in PLAN.items()}
SPEC_BYTES = {(seg, sha256_hex(data)): data for seg, data in _SPECS.items()}


def spec_file(seg):
    """The segment spec its S0 (or ingress) checks the identity against, content-addressed like policies."""
    return str(ROOT / "plan" / seg / f"spec-sha256={sha256_hex(_SPECS[seg])}.json")


def publish_local(path, table, key, log):
    """Publish table[key] for a local rule (it runs inside Snakemake): its ERROR line goes to its log for
    onerror. A key missing from the table means the plan was recomputed from files edited mid-run."""
    try:
        if key not in table:
            raise EngineError(
                "E_PLAN_CHANGED",
                "this output is no longer in the plan: a policy, config or engine file changed while the "
                "workflow ran",
                where=path,
                fix="rerun the same command once the edits are done",
                state="plan",
            )
        publish_bytes(Path(path), table[key], state="plan")
    except EngineError as err:
        Path(log).write_text(err.line() + "\n")
        raise


localrules:
    policy_file,
    spec_file,


rule policy_file:
    """A resolved policy (shipped policy + run-config overrides), content-addressed by its sha256."""
    output:
        str(ROOT / "policies/{pseg}/{pname}/sha256={digest}.yaml"),
    log:
        str(ROOT / "logs/policies/{pseg}/{pname}/sha256={digest}.log"),
    wildcard_constraints:
        pseg=r"[^/]+",  # a pack name may hold a folder (5A's scenarios/<id>), a segment never
    run:
        publish_local(output[0], POLICY_BYTES, (wildcards.pseg, wildcards.pname, wildcards.digest), log[0])


rule spec_file:
    """A segment's spec (what its S0 seals and the identity it recomputes), content-addressed."""
    output:
        str(ROOT / "plan/{sseg}/spec-sha256={digest}.json"),
    log:
        str(ROOT / "logs/plan/{sseg}/spec-sha256={digest}.log"),
    run:
        publish_local(output[0], SPEC_BYTES, (wildcards.sseg, wildcards.digest), log[0])


ERROR_LINE = re.compile(r"^ERROR E_[A-Z0-9_]+ ")


def failure_lines(failed_jobs):
    """Each failed job's ERROR lines from its log, or where to look when it printed none (e.g. killed)."""
    lines = []
    for job in sorted(failed_jobs, key=str):
        logs = [Path(f) for f in job.log]
        found = [
            line
            for f in logs
            if f.is_file()
            for line in f.read_text(errors="replace").splitlines()
            if ERROR_LINE.match(line)
        ]
        where = ", ".join(map(str, logs)) or "no log"
        lines += found or [f"rule {job.rule.name} failed without an engine ERROR line; see {where}"]
    return "".join(f"{line}\n" for line in lines)


def report_failures(failed_jobs, snakemake_logs):
    """onerror: keep the failed jobs' ERROR lines in ROOT/logs/errors.log and in Snakemake's own log."""
    text = failure_lines(failed_jobs).encode("utf-8")
    try:
        replace_bytes(ROOT / "logs" / "errors.log", text)
        for f in snakemake_logs:
            with open(f, "ab") as fh:
                fh.write(text)
    except (OSError, EngineError):  # a full or read-only disk: the screen still gets the lines
        pass


@atexit.register
def _print_failures_last():
    """The failed jobs' ERROR lines, below everything Snakemake prints after onerror (its log path, run time,
    WorkflowError) or instead of onerror (a crash in its own cleanup, e.g. on a read-only root)."""
    scheduler = workflow.scheduler
    if scheduler is not None and scheduler.failed:
        sys.stderr.write(failure_lines(scheduler.failed))
