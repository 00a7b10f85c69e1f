"""`python -m engine …`: run one state, build a reference, verify bundles, list worlds, sync contracts."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

from engine.core.errors import EngineError
from engine.core.publish import coded_os_error


def _run_state(args: argparse.Namespace) -> int:
    from engine.core.state import StateContext
    from engine.states import STATES

    sdef = STATES.get(args.state)
    if sdef is None:
        raise EngineError(
            "E_UNKNOWN_STATE", f"no state {args.state!r}", fix=f"use one of {', '.join(STATES)}"
        )
    root = Path(args.root)
    module = sdef.load()
    if sdef.kind in ("ingress", "gate"):
        module.run(root, _spec(args.spec_file, sdef.id))
        return 0
    if sdef.per_seed and args.seed is None:
        raise EngineError(
            "E_CONFIG_INVALID", f"{sdef.id} runs per seed", where="--seed", fix="pass --seed", state=sdef.id
        )
    ctx = StateContext(
        root,
        sdef.segment,
        sdef.id,
        sdef.name,
        args.mf,
        args.seed if sdef.per_seed else None,
        scenario=_partition_arg(args.scenario, sdef.per_scenario, "scenario", sdef.id),
        shard=_partition_arg(args.shard, sdef.sharded, "shard", sdef.id),
        shards=args.shards,
        scenarios=tuple(s for s in (args.scenarios or "").split(",") if s),
    )
    if ctx.shard is not None and not 0 <= ctx.shard < ctx.shards:
        raise EngineError(
            "E_CONFIG_INVALID",
            f"shard {ctx.shard} is outside 0..{ctx.shards - 1}",
            where="--shard",
            fix="pass a shard below --shards",
            state=sdef.id,
        )
    module.run(ctx)
    ctx.finish()
    _record_kernels(sdef.id)
    return 0


def _record_kernels(state: str) -> None:
    """With ENGINE_KERNEL_SIGNATURES set, note the numba signatures this state used (for the warm-up's
    registry, engine/kernels/signatures.py); numba is imported only then."""
    folder = os.environ.get("ENGINE_KERNEL_SIGNATURES")
    if folder:
        from engine.kernels.signatures import record

        record(Path(folder), state)


def _partition_arg(value: object, needed: bool, name: str, state: str) -> object:
    """--scenario / --shard: required by a state that runs per scenario / shard, refused by one that does not
    (a stray token would name a partition the state never writes)."""
    if needed and value is None:
        raise EngineError(
            "E_CONFIG_INVALID",
            f"{state} runs per {name}",
            where=f"--{name}",
            fix=f"pass --{name}",
            state=state,
        )
    if not needed and value is not None:
        raise EngineError(
            "E_CONFIG_INVALID",
            f"{state} does not run per {name}",
            where=f"--{name}",
            fix=f"drop --{name}",
            state=state,
        )
    return value


def _spec(path: str | None, state: str) -> dict[str, object]:
    """The segment spec the plan wrote (rule spec_file): a file, so no JSON floods the job's command line."""
    if path is None or not Path(path).is_file():
        raise EngineError(
            "E_CONFIG_INVALID",
            f"{state} needs the segment spec file the workflow plans",
            where=f"--spec-file {path}",
            fix="run it through snakemake, or pass an existing plan/<SEG>/spec-sha256=….json",
            state=state,
        )
    spec: dict[str, object] = json.loads(Path(path).read_text())
    return spec


def _ref_build(args: argparse.Namespace) -> int:
    from engine.core.publish import publish_dir, staging_dir
    from engine.core.reflock import check_locked_bytes
    from engine.refdata.registry import build, recipe, recipe_id

    target = Path(args.out)
    want = target.name.removeprefix("build=")
    if want != recipe_id(args.name):
        raise EngineError(
            "E_REFERENCE_RECIPE",
            f"{args.name}: folder names recipe {want[:12]}, installed recipe is {recipe_id(args.name)[:12]}",
            where=str(target),
            fix="rerun snakemake so paths are re-planned",
            state="ref-build",
        )
    with staging_dir(target, state="ref-build") as tmp:
        build(args.name, tmp)
        check_locked_bytes(args.name, want, tmp / recipe(args.name).filename, state="ref-build")
    publish_dir(tmp, target, state="ref-build")
    return 0


def _lock_references(args: argparse.Namespace) -> int:
    from engine.core.reflock import lock_references

    return lock_references(args.write)


def _verify(args: argparse.Namespace) -> int:
    from engine.core.verify import verify

    return verify(Path(args.path))


def _warm_kernels(args: argparse.Namespace) -> int:
    from engine.core.canonical import canonical_json_bytes
    from engine.core.publish import clean_stale_temps, replace_bytes
    from engine.kernels.signatures import warm

    segments = [s for s in args.segments.split(",") if s]
    os.nice(19)  # background work: only CPU time the states leave idle
    t0 = time.perf_counter()
    done = warm(segments)
    seconds = round(time.perf_counter() - t0, 1)
    report = {"segments": segments, "seconds": seconds, "kernels": done}
    out = Path(args.out)
    clean_stale_temps(out.parent)  # a report a killed run left half-written
    replace_bytes(out, canonical_json_bytes(report), state="warm-kernels")
    print(f"[warm-kernels] {len(done)} signatures of {','.join(segments)} ready in {seconds} s")
    return 0


def _worlds(args: argparse.Namespace) -> int:
    from engine.core.verify import BUNDLE_RE, WorldVerifier, find_bundles

    root = Path(args.path)
    world = WorldVerifier(root)
    for bundle in find_bundles(root):
        m = BUNDLE_RE.search(bundle.as_posix())
        if m is not None and (bundle / "_passed.flag").is_file():
            status = "FAIL" if world.bundle(bundle) else "PASS"
            print(f"{m['seg']}\tseed={m['seed']}\t{m['mf']}\t{status}")
    return 0


def _contracts(args: argparse.Namespace) -> int:
    from engine.core.policy import policy_models, schema_path, schema_text

    stale = []
    for seg, models in policy_models().items():
        for name in models:
            path = schema_path(seg, name)
            text = schema_text(seg, name)
            if args.write:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            elif not path.is_file() or path.read_text() != text:
                stale.append(str(path))
    if stale:
        raise EngineError(
            "E_CONTRACT_DRIFT",
            "policy schemas differ from the pydantic models",
            where=", ".join(stale),
            fix="run python -m engine contracts --write",
            state="contracts",
        )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="engine", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run one state (e.g. 1A.S2)")
    run.add_argument("state")
    run.add_argument("--root", default=".")
    run.add_argument("--seed", type=int)
    run.add_argument("--mf", help="the segment's manifest_fingerprint")
    run.add_argument("--scenario", help="layer 2/3: the scenario a per-scenario state builds")
    run.add_argument("--shard", type=int, help="layer 2/3: the shard a sharded state builds")
    run.add_argument("--shards", type=int, default=1, help="layer 2/3: the run's shard count")
    run.add_argument("--scenarios", help="layer 2/3: the run's scenarios, comma-separated")
    run.add_argument("--spec-file", help="S0/ingress: the segment spec JSON file the plan wrote")
    run.set_defaults(func=_run_state)
    ref = sub.add_parser("ref-build", help="build one reference artefact into its build folder")
    ref.add_argument("name")
    ref.add_argument("--out", required=True)
    ref.set_defaults(func=_ref_build)
    lock = sub.add_parser(
        "lock-references", help="rebuild every reference and check (or --write) resources/lock.json"
    )
    lock.add_argument("--write", action="store_true")
    lock.set_defaults(func=_lock_references)
    ver = sub.add_parser("verify", help="re-check every validation bundle under a root (or one bundle)")
    ver.add_argument("path")
    ver.set_defaults(func=_verify)
    wk = sub.add_parser(
        "warm-kernels", help="compile the registry's numba signatures of some segments into numba's cache"
    )
    wk.add_argument(
        "--segments", required=True, help="comma-separated segment ids, warmed in that order (e.g. 6B,5B,6A)"
    )
    wk.add_argument("--out", required=True, help="the report to write (what was compiled, in seconds)")
    wk.set_defaults(func=_warm_kernels)
    wor = sub.add_parser("worlds", help="list the validated worlds under a root")
    wor.add_argument("path")
    wor.set_defaults(func=_worlds)
    con = sub.add_parser("contracts", help="check (or --write) the policy schemas generated from the models")
    con.add_argument("--write", action="store_true")
    con.set_defaults(func=_contracts)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except EngineError as err:
        print(err.line(), file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk or a read-only root is the user's to fix; other OS errors are not
        where = exc.filename or getattr(args, "root", None) or getattr(args, "out", "")
        coded = coded_os_error(exc, where=str(where), state=getattr(args, "state", None) or args.cmd)
        if coded is not None:
            print(coded.line(), file=sys.stderr)
            return 2
        return _internal(exc)
    except Exception as exc:
        return _internal(exc)


def _internal(exc: Exception) -> int:
    """A defect, not a user error: keep the traceback, name it clearly."""
    traceback.print_exc()
    print(
        f"ERROR E_INTERNAL engine: {type(exc).__name__}: {exc} — this is a bug; please report it",
        file=sys.stderr,
    )
    return 3
