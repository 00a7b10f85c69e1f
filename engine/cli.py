"""`python -m engine …`: run one state, build a reference, verify bundles, list worlds, sync contracts."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from engine.core.errors import EngineError


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
        module.run(root, json.loads(args.spec))
        return 0
    if sdef.per_seed and args.seed is None:
        raise EngineError(
            "E_CONFIG_INVALID", f"{sdef.id} runs per seed", where="--seed", fix="pass --seed", state=sdef.id
        )
    ctx = StateContext(root, sdef.segment, sdef.id, sdef.name, args.mf, args.seed if sdef.per_seed else None)
    module.run(ctx)
    ctx.finish()
    return 0


def _ref_build(args: argparse.Namespace) -> int:
    from engine.core.publish import publish_dir, staging_dir
    from engine.refdata.registry import build, recipe_id

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
    with staging_dir(target) as tmp:
        build(args.name, tmp)
    publish_dir(tmp, target, state="ref-build")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from engine.core.gates import INDEX, verify_bundle

    root = Path(args.path)
    bundles = (
        [root]
        if (root / INDEX).is_file()
        else sorted(p.parent for p in root.glob("data/layer*/*/validation/*/*/" + INDEX))
    )
    if not bundles:
        print(
            f"ERROR E_VERIFY_NOTHING verify: no validation bundle under {root} — build a segment first",
            file=sys.stderr,
        )
        return 2
    failed = 0
    for bundle in bundles:
        ok, why = verify_bundle(bundle)
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {bundle}{'' if ok else ': ' + why}")
    return 1 if failed else 0


def _worlds(args: argparse.Namespace) -> int:
    from engine.core.gates import verify_bundle

    for flag in sorted(
        Path(args.path).glob("data/layer*/*/validation/seed=*/manifest_fingerprint=*/_passed.flag")
    ):
        ok, _ = verify_bundle(flag.parent)
        seg = flag.parents[3].name
        seed = flag.parents[1].name.split("=", 1)[1]
        mf = flag.parent.name.split("=", 1)[1]
        print(f"{seg}\tseed={seed}\t{mf}\t{'PASS' if ok else 'FAIL'}")
    return 0


def _contracts(args: argparse.Namespace) -> int:
    from engine.core.policy import MODELS, schema_path, schema_text

    stale = []
    for seg, models in MODELS.items():
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
    run.add_argument("--spec", help="S0/ingress: the segment spec JSON from the plan")
    run.set_defaults(func=_run_state)
    ref = sub.add_parser("ref-build", help="build one reference artefact into its build folder")
    ref.add_argument("name")
    ref.add_argument("--out", required=True)
    ref.set_defaults(func=_ref_build)
    ver = sub.add_parser("verify", help="re-check every validation bundle under a root (or one bundle)")
    ver.add_argument("path")
    ver.set_defaults(func=_verify)
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
    except Exception as exc:  # a defect, not a user error: keep the traceback, name it clearly
        traceback.print_exc()
        print(
            f"ERROR E_INTERNAL engine: {type(exc).__name__}: {exc} — this is a bug; please report it",
            file=sys.stderr,
        )
        return 3
