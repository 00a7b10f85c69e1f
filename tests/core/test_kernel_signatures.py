"""The kernel signature registry and the warm-up that compiles it (engine/kernels/signatures.py)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from numba import njit
from numba.core import types
from numba.core.registry import CPUDispatcher

from engine.kernels.attach import AliasSlices
from engine.kernels.signatures import (
    REGISTRY,
    decode_type,
    encode_type,
    load_registry,
    merge,
    record,
    registry_text,
    warm,
)
from engine.kernels.window_hits import hits_within
from engine.states import STATES


class Pair(NamedTuple):
    a: float
    b: float


@njit
def _scaled(x: np.ndarray, k: np.int64) -> np.ndarray:
    return x * k


@njit
def _first(x: np.ndarray) -> float:
    return x[0]


ARR_U64_RO = {"array": "uint64", "ndim": 1, "layout": "C", "readonly": True}


@pytest.mark.parametrize(
    ("numba_type", "encoded"),
    [
        (types.uint64, "uint64"),
        (types.boolean, "bool"),
        (types.Array(types.uint64, 1, "C", readonly=True), ARR_U64_RO),
        (
            types.Array(types.float64, 2, "A"),
            {"array": "float64", "ndim": 2, "layout": "A", "readonly": False},
        ),
        (types.literal(64), {"literal": 64}),
        (types.literal(False), {"literal": False}),
        (types.Omitted(7), {"omitted": 7}),
        (types.UniTuple(types.int64, 3), {"UniTuple": ["int64", "int64", "int64"]}),
        (types.Tuple([types.int64, types.float64]), {"Tuple": ["int64", "float64"]}),
        (
            types.NamedUniTuple(types.float64, 2, Pair),
            {"NamedUniTuple": f"{__name__}.Pair", "items": ["float64", "float64"]},
        ),
        (
            types.NamedTuple(
                [types.Array(types.int64, 1, "C"), types.Array(types.uint32, 1, "C")] * 2, AliasSlices
            ),
            {
                "NamedTuple": "engine.kernels.attach.AliasSlices",
                "items": [
                    {"array": "int64", "ndim": 1, "layout": "C", "readonly": False},
                    {"array": "uint32", "ndim": 1, "layout": "C", "readonly": False},
                ]
                * 2,
            },
        ),
    ],
)
def test_types_encode_to_known_json_and_decode_to_the_same_type(numba_type: types.Type, encoded: Any) -> None:
    assert encode_type(numba_type) == encoded
    assert decode_type(encoded) == numba_type  # equal types are one numba cache key


def test_types_without_a_json_form_are_refused() -> None:
    with pytest.raises(TypeError, match="no JSON form"):
        encode_type(types.unicode_type)
    with pytest.raises(ValueError, match="not an encoded numba type"):
        decode_type({"dict": "int64"})


def test_record_writes_what_the_process_called_with_read_only_flags(tmp_path: Path) -> None:
    first = np.array([0, 2, 3], dtype=np.int64)
    ts = np.array([5, 9, 4], dtype=np.int64)
    ts.setflags(write=False)  # as a zero-copy column from Arrow arrives
    out = np.zeros(2, dtype=np.bool_)
    hits_within(first, ts, np.array([0, 1]), np.array([9, 3]), np.int64(4), out)
    assert out.tolist() == [True, False]
    record(tmp_path, "6B.S5")
    (written,) = tmp_path.glob("6B.S5-*.json")
    rows = [r for r in json.loads(written.read_text()) if r["function"] == "hits_within"]
    arr = {"array": "int64", "ndim": 1, "layout": "C", "readonly": False}
    assert {
        "state": "6B.S5",
        "module": "engine.kernels.window_hits",
        "function": "hits_within",
        "args": [arr, {**arr, "readonly": True}, arr, arr, "int64", {**arr, "array": "bool"}],
    } in rows


def test_merge_keeps_one_entry_per_signature_with_every_state_in_run_order() -> None:
    sig_a = ["int64"]
    sig_b = ["float64"]
    rows = [
        {"state": "6B.S4", "module": "m", "function": "f", "args": sig_a},
        {"state": "1A.S2", "module": "m", "function": "f", "args": sig_a},
        {"state": "6B.S4", "module": "m", "function": "f", "args": sig_a},
        {"state": "5B.S4", "module": "m", "function": "f", "args": sig_b},
    ]
    assert merge(rows, list(STATES)) == [
        {"module": "m", "function": "f", "args": sig_a, "states": ["1A.S2", "6B.S4"]},
        {"module": "m", "function": "f", "args": sig_b, "states": ["5B.S4"]},
    ]


def test_warm_compiles_the_chosen_segments_in_the_order_given(tmp_path: Path) -> None:
    arr = {"array": "float64", "ndim": 1, "layout": "C", "readonly": False}
    entries = [
        {"module": __name__, "function": "_first", "args": [arr], "states": ["5B.S4"]},
        {"module": __name__, "function": "_scaled", "args": [arr, "int64"], "states": ["1A.S2", "6B.S2"]},
        {"module": __name__, "function": "_first", "args": [{**arr, "readonly": True}], "states": ["1B.S4"]},
    ]
    registry = tmp_path / "signatures.json"
    registry.write_text(json.dumps({"kernels": entries}))
    done = warm(["6B", "5B"], registry)
    assert [(d["function"], d["states"]) for d in done] == [
        ("_scaled", ["1A.S2", "6B.S2"]),
        ("_first", ["5B.S4"]),
    ]
    assert all(d["seconds"] >= 0 for d in done)
    assert _scaled.signatures == [(types.Array(types.float64, 1, "C"), types.int64)]
    assert _first.signatures == [
        (types.Array(types.float64, 1, "C"),)
    ]  # 1B's read-only one was not asked for


def test_every_registry_entry_names_a_kernel_its_states_and_types_that_decode() -> None:
    entries = load_registry()
    assert entries, "the registry is empty: run scripts/kernel_signatures.py"
    order = list(STATES)
    firsts = [order.index(e["states"][0]) for e in entries]
    assert firsts == sorted(firsts)
    seen = set()
    for e in entries:
        assert e["states"] == sorted(set(e["states"]), key=order.index)
        dispatcher = getattr(importlib.import_module(e["module"]), e["function"])
        assert isinstance(dispatcher, CPUDispatcher), f"{e['module']}.{e['function']}"
        signature = tuple(decode_type(a) for a in e["args"])
        assert [encode_type(t) for t in signature] == e["args"]
        key = (e["module"], e["function"], signature)
        assert key not in seen
        seen.add(key)
    assert REGISTRY.read_text() == registry_text(entries)  # as scripts/kernel_signatures.py writes it
