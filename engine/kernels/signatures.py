"""Record the numba signatures a world's states compile, and compile them ahead of those states.

In a fresh clone numba's cache is empty, and every state that calls a kernel first compiles it: on the default
world that is over two minutes of the critical path (5B.S4, 6B.S1, S2 and S4 each spend 10–30 s compiling,
both shards at once). The cache is keyed by signature (argument types, read-only flags included), so a job
that compiles the same signatures earlier fills it for them. The workflow's `kernels_warm` rule does that
on a core the early segments leave idle, from the registry beside this module; a signature the registry
misses is compiled by its state as before, so the registry only ever changes speed, never bytes.

A signature includes each array's read-only flag, which follows polars' chunking (a column handed over without
a copy is read-only). The kernels whose flags were seen to move with polars' thread count get their inputs as
read-only views (engine/kernels/frozen.py), so their signatures are the same on every machine; a kernel whose
flag still moved would be compiled by its state, as any signature the registry misses.

`record` writes the signatures a state process compiled or loaded (the CLI calls it when
ENGINE_KERNEL_SIGNATURES names a folder); scripts/kernel_signatures.py merges those into the registry.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numba.core import types
from numba.core.registry import CPUDispatcher
from numba.np.numpy_support import from_dtype

from engine.states import STATES

RECORD_ENV = "ENGINE_KERNEL_SIGNATURES"
REGISTRY = Path(__file__).with_name("signatures.json")

Encoded = str | dict[str, Any]


def encode_type(t: types.Type) -> Encoded:
    """A numba argument type as JSON: scalars by dtype name, arrays and (named) tuples by their parts."""
    if isinstance(t, types.Array):
        return {"array": str(t.dtype), "ndim": t.ndim, "layout": t.layout, "readonly": not t.mutable}
    if isinstance(t, types.BaseNamedTuple):
        kind = "NamedUniTuple" if isinstance(t, types.NamedUniTuple) else "NamedTuple"
        cls = t.instance_class
        return {kind: f"{cls.__module__}.{cls.__qualname__}", "items": [encode_type(x) for x in t.types]}
    if isinstance(t, types.BaseTuple):
        kind = "UniTuple" if isinstance(t, types.UniTuple) else "Tuple"
        return {kind: [encode_type(x) for x in t.types]}
    if isinstance(t, (types.IntegerLiteral, types.BooleanLiteral)):  # a constant numba specialised on
        return {"literal": t.literal_value}
    if isinstance(t, (types.Integer, types.Float, types.Boolean)):
        return str(t)
    if isinstance(t, types.Omitted):  # an argument left at its default
        return {"omitted": t.value}
    raise TypeError(f"no JSON form for numba type {t!r}")


def decode_type(obj: Encoded) -> types.Type:
    """The numba type `encode_type` wrote; equal (and so the same cache key) to the one recorded."""
    if isinstance(obj, str):
        return from_dtype(np.dtype(obj))
    if "array" in obj:
        return types.Array(decode_type(obj["array"]), obj["ndim"], obj["layout"], readonly=obj["readonly"])
    for kind in ("NamedUniTuple", "NamedTuple"):
        if kind in obj:
            module, _, name = obj[kind].rpartition(".")
            cls = getattr(importlib.import_module(module), name)
            items = [decode_type(x) for x in obj["items"]]
            if kind == "NamedUniTuple":
                return types.NamedUniTuple(items[0], len(items), cls)
            return types.NamedTuple(items, cls)
    if "literal" in obj:
        return types.literal(obj["literal"])
    if "omitted" in obj:
        return types.Omitted(obj["omitted"])
    if "UniTuple" in obj:
        items = [decode_type(x) for x in obj["UniTuple"]]
        return types.UniTuple(items[0], len(items))
    if "Tuple" in obj:
        return types.Tuple([decode_type(x) for x in obj["Tuple"]])
    raise ValueError(f"not an encoded numba type: {obj!r}")


def engine_dispatchers() -> Iterator[tuple[str, str, CPUDispatcher]]:
    """(module, name, dispatcher) for every numba function defined in a loaded engine module."""
    for module_name, module in sorted(sys.modules.items()):
        if module_name.split(".")[0] != "engine" or module is None:
            continue
        for name, obj in sorted(vars(module).items()):
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == module_name:
                yield module_name, name, obj


def record(folder: Path, state: str) -> None:
    """Write the signatures this process's dispatchers hold to `folder` (one file per process)."""
    rows = [
        {"state": state, "module": module, "function": name, "args": [encode_type(t) for t in sig]}
        for module, name, dispatcher in engine_dispatchers()
        for sig in dispatcher.signatures
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{state}-{os.getpid()}.json").write_text(json.dumps(rows, sort_keys=True))


def merge(rows: Iterable[dict[str, Any]], order: list[str]) -> list[dict[str, Any]]:
    """One entry per (module, function, args) with every state that uses it, in `order`; entries sorted by
    their first state (then by name)."""
    states: dict[str, set[str]] = {}
    for row in rows:
        key = json.dumps([row["module"], row["function"], row["args"]], sort_keys=True)
        states.setdefault(key, set()).add(row["state"])
    entries = []
    for key, used_by in states.items():
        module, function, args = json.loads(key)
        ordered = sorted(used_by, key=order.index)
        entries.append({"module": module, "function": function, "args": args, "states": ordered})
    return sorted(entries, key=lambda e: (order.index(e["states"][0]), json.dumps(e, sort_keys=True)))


def registry_text(entries: list[dict[str, Any]]) -> str:
    """The registry file: one entry per line, keys sorted, so a kernel's change is a one-line diff."""
    lines = ",\n".join(json.dumps(e, sort_keys=True) for e in entries)
    return '{"kernels": [\n' + lines + "\n]}\n"


def load_registry(path: Path = REGISTRY) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(path.read_text())["kernels"]
    return entries


def warm(segments: list[str], path: Path = REGISTRY) -> list[dict[str, Any]]:
    """Compile (or load from numba's cache) every registry signature that a state of `segments` uses:
    segment by segment in the order given, each in the order its states run. Returns what each took."""
    state_rank = {state: i for i, state in enumerate(STATES)}
    ranked = []
    for i, entry in enumerate(load_registry(path)):
        uses = [
            (segments.index(seg), state_rank[state])
            for state in entry["states"]
            if (seg := state.split(".")[0]) in segments
        ]
        if uses:
            ranked.append((min(uses), i, entry))
    done = []
    for _, _, entry in sorted(ranked, key=lambda r: (r[0], r[1])):
        t0 = time.perf_counter()
        dispatcher = getattr(importlib.import_module(entry["module"]), entry["function"])
        signature = tuple(decode_type(a) for a in entry["args"])
        if signature not in dispatcher.signatures:  # eager ones (explicit signatures) compiled on import
            dispatcher.compile(signature)
        done.append({**entry, "seconds": round(time.perf_counter() - t0, 3)})
    return done
