"""Canonical JSON bytes and length-prefixed hashing (design README §3, §5)."""

from __future__ import annotations

import hashlib
import json
import math
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.canonical import canonical_json_bytes, encode_part, hash_parts, lp, sha256_file, sha256_hex


def _lp(data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + data


# --- canonical_json_bytes ---------------------------------------------------------------------------


def test_canonical_json_exact_bytes() -> None:
    obj = {"b": 1, "a": [1, 2.5, None, True, False], "é": "ü€", "n": {"z": "x", "y": -3}}
    want = b'{"a":[1,2.5,null,true,false],"b":1,"n":{"y":-3,"z":"x"},"\xc3\xa9":"\xc3\xbc\xe2\x82\xac"}\n'
    assert canonical_json_bytes(obj) == want


def test_canonical_json_keeps_non_ascii_as_utf8_not_escapes() -> None:
    data = canonical_json_bytes({"city": "Zürich"})
    assert data == '{"city":"Zürich"}\n'.encode()
    assert b"\\u" not in data


def test_canonical_json_single_trailing_newline_and_no_whitespace() -> None:
    data = canonical_json_bytes([{"k": [1, {"x": 2}]}])
    assert data == b'[{"k":[1,{"x":2}]}]\n'
    assert data.count(b"\n") == 1
    assert b" " not in data


def test_canonical_json_scalars() -> None:
    assert canonical_json_bytes(None) == b"null\n"
    assert canonical_json_bytes("a\nb") == b'"a\\nb"\n'
    assert canonical_json_bytes(2**63) == b"9223372036854775808\n"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_canonical_json_rejects_non_finite_floats(bad: float) -> None:
    with pytest.raises(ValueError):
        canonical_json_bytes({"x": [1.0, bad]})


json_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
json_leaves = json_leaves | st.text(max_size=8)
json_values = st.recursive(
    json_leaves,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
    max_leaves=20,
)


def _reinsert(obj: object, rnd: random.Random) -> object:
    """Same value, with every dict rebuilt in a shuffled insertion order."""
    if isinstance(obj, dict):
        items = list(obj.items())
        rnd.shuffle(items)
        return {k: _reinsert(v, rnd) for k, v in items}
    if isinstance(obj, list):
        return [_reinsert(v, rnd) for v in obj]
    return obj


@settings(max_examples=60, deadline=None)
@given(obj=st.dictionaries(st.text(max_size=6), json_values, max_size=6), rnd=st.randoms())
def test_equal_dicts_in_any_insertion_order_give_equal_bytes(obj: dict, rnd: random.Random) -> None:
    other = _reinsert(obj, rnd)
    assert other == obj
    data = canonical_json_bytes(obj)
    assert canonical_json_bytes(other) == data
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert json.loads(data.decode("utf-8")) == obj


@settings(max_examples=100, deadline=None)
@given(a=st.dictionaries(st.text(max_size=4), st.integers(), max_size=4), b=st.text(max_size=4))
def test_different_dicts_give_different_bytes(a: dict, b: str) -> None:
    other = dict(a)
    other[b] = other.get(b, 0) + 1
    assert canonical_json_bytes(a) != canonical_json_bytes(other)


# --- lp / encode_part / hash_parts -------------------------------------------------------------------


def test_lp_is_u32_le_length_prefix() -> None:
    assert lp(b"") == b"\x00\x00\x00\x00"
    assert lp(b"abc") == b"\x03\x00\x00\x00abc"
    assert lp(b"x" * 258) == b"\x02\x01\x00\x00" + b"x" * 258


def test_encode_part_exact() -> None:
    assert encode_part("é") == b"\xc3\xa9"
    assert encode_part("") == b""
    assert encode_part(1) == b"\x01" + b"\x00" * 7
    assert encode_part(0x0102030405060708) == bytes([8, 7, 6, 5, 4, 3, 2, 1])
    assert encode_part(-1) == b"\xff" * 8  # two's complement
    assert encode_part(2**64 - 1) == b"\xff" * 8
    assert encode_part(b"\x00\x01") == b"\x00\x01"


@pytest.mark.parametrize("bad", [True, False])
def test_encode_part_rejects_booleans(bad: bool) -> None:
    with pytest.raises(TypeError):
        encode_part(bad)


def test_hash_parts_exact_digest() -> None:
    want = hashlib.sha256(
        _lp(b"engine") + _lp(struct.pack("<Q", 42)) + _lp("zürich".encode()) + _lp(b"\x00\x01")
    ).digest()
    got = hash_parts("engine", 42, "zürich", b"\x00\x01")
    assert got == want
    assert len(got) == 32
    # pinned, so the law cannot drift together with this test's re-derivation
    assert got.hex() == "0ba809557bd005403315c3b1b1da675474414cd3b4e89ebe8a295d35a510bb61"


def test_hash_parts_empty_is_sha256_of_nothing() -> None:
    assert hash_parts() == hashlib.sha256(b"").digest()


def test_hash_parts_boundaries_are_unambiguous() -> None:
    assert hash_parts("ab", "c") != hash_parts("a", "bc")
    assert hash_parts("abc") != hash_parts("ab", "c")
    assert hash_parts("", "a") != hash_parts("a", "")
    # an int and the string of its bytes differ only if the encoding differs; same bytes hash the same
    assert hash_parts(1) == hash_parts(b"\x01\x00\x00\x00\x00\x00\x00\x00")
    assert hash_parts(1) != hash_parts("1")


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(st.text(max_size=10) | st.integers(0, 2**64 - 1) | st.binary(max_size=10), max_size=5))
def test_hash_parts_matches_independent_encoding(parts: list) -> None:
    buf = b""
    for p in parts:
        if isinstance(p, int):
            raw = struct.pack("<Q", p)
        elif isinstance(p, str):
            raw = p.encode("utf-8")
        else:
            raw = p
        buf += struct.pack("<I", len(raw)) + raw
    assert hash_parts(*parts) == hashlib.sha256(buf).digest()


def test_sha256_helpers(tmp_path) -> None:
    data = b"hello\n" * 300_000  # > 1 MiB, so the chunked reader loops
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
