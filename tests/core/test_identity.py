"""Identity laws: parameter_hash, manifest_fingerprint (Merkle chain), run_id (design README §3)."""

from __future__ import annotations

import hashlib
import json
import re
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.identity import manifest_fingerprint, new_run_id, parameter_hash

TWO_FILES = {"b.yaml": b"beta: 2\n", "a.yaml": b"alpha: 1\n"}


def _independent_parameter_hash(files: dict[str, bytes]) -> str:
    concat = b""
    for name in sorted(files):
        raw = name.encode("utf-8")
        per_file = struct.pack("<I", len(raw)) + raw + hashlib.sha256(files[name]).digest()
        concat += hashlib.sha256(per_file).digest()
    return hashlib.sha256(concat).hexdigest()


# --- parameter_hash ----------------------------------------------------------------------------------


def test_parameter_hash_exact_for_two_files() -> None:
    a = hashlib.sha256(b"\x06\x00\x00\x00a.yaml" + hashlib.sha256(b"alpha: 1\n").digest()).digest()
    b = hashlib.sha256(b"\x06\x00\x00\x00b.yaml" + hashlib.sha256(b"beta: 2\n").digest()).digest()
    want = hashlib.sha256(a + b).hexdigest()
    assert parameter_hash(TWO_FILES) == want
    assert want == "4e6f6a720dbb216d43f945ff441c3897be6d963cf9e02ae928bec312d70e05d0"


def test_parameter_hash_of_no_files_is_sha256_of_nothing() -> None:
    assert parameter_hash({}) == hashlib.sha256(b"").hexdigest()


def test_parameter_hash_is_name_aware() -> None:
    swapped = {"a.yaml": TWO_FILES["b.yaml"], "b.yaml": TWO_FILES["a.yaml"]}
    renamed = {"c.yaml": TWO_FILES["a.yaml"], "b.yaml": TWO_FILES["b.yaml"]}
    assert parameter_hash(swapped) != parameter_hash(TWO_FILES)
    assert parameter_hash(renamed) != parameter_hash(TWO_FILES)


def test_parameter_hash_sees_every_byte_and_every_file() -> None:
    base = parameter_hash(TWO_FILES)
    assert parameter_hash({**TWO_FILES, "a.yaml": b"alpha: 1 \n"}) != base
    assert parameter_hash({**TWO_FILES, "c.yaml": b""}) != base
    assert parameter_hash({"a.yaml": TWO_FILES["a.yaml"]}) != base


def test_parameter_hash_name_and_content_boundary_is_unambiguous() -> None:
    # without the length prefix, ("ab", x) and ("a", "b"+x) could collide; with it they must not
    assert parameter_hash({"ab": b"x"}) != parameter_hash({"a": b"bx"})


file_maps = st.dictionaries(st.text(min_size=1, max_size=12), st.binary(max_size=40), max_size=6)


@settings(max_examples=80, deadline=None)
@given(files=file_maps, order=st.randoms())
def test_parameter_hash_is_order_independent(files: dict[str, bytes], order) -> None:
    items = list(files.items())
    order.shuffle(items)
    reordered = dict(items)
    assert parameter_hash(reordered) == parameter_hash(files)
    assert parameter_hash(files) == _independent_parameter_hash(files)


@settings(max_examples=60, deadline=None)
@given(files=file_maps.filter(lambda d: len(set(d.values())) >= 2))
def test_parameter_hash_swapping_distinct_contents_changes_it(files: dict[str, bytes]) -> None:
    names = sorted(files)
    a = next(n for n in names if files[n] != files[names[0]])
    swapped = dict(files)
    swapped[names[0]], swapped[a] = files[a], files[names[0]]
    assert parameter_hash(swapped) != parameter_hash(files)


# --- manifest_fingerprint ----------------------------------------------------------------------------

BASE = {
    "segment": "1A",
    "parameter_hash_hex": "ab" * 32,
    "upstream": {"ING": "cd" * 32},
    "references": {"ref_mcc": "ef" * 32},
    "contract_version": "1.0.0",
}


def test_manifest_fingerprint_exact() -> None:
    doc = {
        "contract_version": "1.0.0",
        "extra": {},
        "parameter_hash": "ab" * 32,
        "references": {"ref_mcc": "ef" * 32},
        "segment": "1A",
        "upstream": {"ING": "cd" * 32},
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"
    want = hashlib.sha256(text.encode()).hexdigest()
    assert manifest_fingerprint(**BASE) == want
    assert want == "87e1b5447ed403a887a37655bb33d6db844bfac83ef7759cacae588f67f2a611"


def _independent_fingerprint(fields: dict) -> str:
    """The design's fingerprint by hand: sha256 of the sorted-key compact UTF-8 JSON of six fields + LF."""
    doc = {
        "contract_version": fields["contract_version"],
        "extra": dict(fields.get("extra") or {}),
        "parameter_hash": fields["parameter_hash_hex"],
        "references": fields["references"],
        "segment": fields["segment"],
        "upstream": fields["upstream"],
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


names = st.text(min_size=1, max_size=8)
hexes = st.text("0123456789abcdef", min_size=64, max_size=64)


@settings(max_examples=80, deadline=None)
@given(
    upstream=st.dictionaries(names, hexes, max_size=4),
    references=st.dictionaries(
        names, st.fixed_dictionaries({"recipe_id": hexes, "sha256": hexes}), max_size=4
    ),
    extra=st.none() | st.dictionaries(names, names, max_size=3),
    order=st.randoms(),
)
def test_manifest_fingerprint_matches_an_independent_derivation_in_any_order(
    upstream: dict, references: dict, extra: dict | None, order
) -> None:
    """Any keys (non-ASCII too) in any insertion order; no extra and an empty extra are the same world."""
    fields = {**BASE, "upstream": upstream, "references": references, "extra": extra}
    want = _independent_fingerprint(fields)

    def shuffled(mapping: dict) -> dict:
        items = list(mapping.items())
        order.shuffle(items)
        return dict(items)

    reordered = {**fields, "upstream": shuffled(upstream), "references": shuffled(references)}
    if extra is not None:
        reordered["extra"] = shuffled(extra)
    assert manifest_fingerprint(**fields) == want
    assert manifest_fingerprint(**reordered) == want


VARIANTS = {
    "segment": {"segment": "1B"},
    "parameter_hash": {"parameter_hash_hex": "ab" * 31 + "ac"},
    "upstream_value": {"upstream": {"ING": "cd" * 31 + "ce"}},
    "upstream_added": {"upstream": {"ING": "cd" * 32, "1A": "00" * 32}},
    "upstream_renamed": {"upstream": {"ING2": "cd" * 32}},
    "reference_digest": {"references": {"ref_mcc": "ef" * 31 + "ee"}},
    "reference_added": {"references": {"ref_mcc": "ef" * 32, "ref_countries": "11" * 32}},
    "reference_removed": {"references": {}},
    "contract_version": {"contract_version": "1.0.1"},
    "extra": {"extra": {"universe": "file"}},
}


@pytest.mark.parametrize("field", sorted(VARIANTS))
def test_manifest_fingerprint_changes_with_any_single_field(field: str) -> None:
    assert manifest_fingerprint(**{**BASE, **VARIANTS[field]}) != manifest_fingerprint(**BASE)


def test_manifest_fingerprint_variants_are_all_distinct() -> None:
    fps = {manifest_fingerprint(**{**BASE, **v}) for v in VARIANTS.values()}
    fps.add(manifest_fingerprint(**BASE))
    assert len(fps) == len(VARIANTS) + 1


def _chain(policies: dict[str, dict[str, bytes]]) -> dict[str, str]:
    """ING → 1A → 1B, each segment reading its direct upstream's fingerprint."""
    out: dict[str, str] = {}
    upstream_of = {"ING": [], "1A": ["ING"], "1B": ["1A"]}
    for seg in ("ING", "1A", "1B"):
        out[seg] = manifest_fingerprint(
            segment=seg,
            parameter_hash_hex=parameter_hash(policies[seg]),
            upstream={u: out[u] for u in upstream_of[seg]},
            references={"ref_countries": "aa" * 32},
            contract_version="1.0.0",
        )
    return out


POLICIES = {
    "ING": {"ING/merchant_universe.yaml": b"n_merchants: 200\n"},
    "1A": {"1A/hurdle_nb.yaml": b"beta0: 0.2\n"},
    "1B": {"1B/placement.yaml": b"jitter: 0.1\n"},
}


def test_merkle_upstream_change_propagates_downstream() -> None:
    base = _chain(POLICIES)
    changed = _chain({**POLICIES, "ING": {"ING/merchant_universe.yaml": b"n_merchants: 201\n"}})
    assert changed["ING"] != base["ING"]
    assert changed["1A"] != base["1A"]  # direct reader
    assert changed["1B"] != base["1B"]  # transitive reader (via 1A's fingerprint)


def test_merkle_downstream_change_leaves_upstream_untouched() -> None:
    base = _chain(POLICIES)
    changed = _chain({**POLICIES, "1B": {"1B/placement.yaml": b"jitter: 0.2\n"}})
    assert changed["ING"] == base["ING"]
    assert changed["1A"] == base["1A"]
    assert changed["1B"] != base["1B"]


# --- run_id ------------------------------------------------------------------------------------------


def test_run_id_is_16_hex_and_unique() -> None:
    ids = [new_run_id() for _ in range(200)]
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert len(set(ids)) == len(ids)
