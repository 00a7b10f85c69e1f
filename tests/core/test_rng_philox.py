"""Philox4x64-10 bit-exactness, open uniforms, lane streams and family keys (design README §4)."""

from __future__ import annotations

import hashlib
import struct
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.rng import family_key, uniforms_for_ids
from engine.kernels.philox import (
    philox4x64_10,
    stream_blocks,
    stream_draws,
    stream_new,
    stream_next_raw,
    stream_next_u01,
    u01,
)

U64 = (1 << 64) - 1
u64s = st.integers(min_value=0, max_value=U64)

# Random123 kat_vectors, philox4x64 10: (counter c0..c3, key k0 k1) -> (w0..w3).
RANDOM123_KAT = [
    (
        (0, 0, 0, 0),
        (0, 0),
        ("16554d9eca36314c", "db20fe9d672d0fdc", "d7e772cee186176b", "7e68b68aec7ba23b"),
    ),
    (
        (U64, U64, U64, U64),
        (U64, U64),
        ("87b092c3013fe90b", "438c3c67be8d0224", "9cc7d7c69cd777b6", "a09caebf594f0ba0"),
    ),
    (
        (0x243F6A8885A308D3, 0x13198A2E03707344, 0xA4093822299F31D0, 0x082EFA98EC4E6C89),
        (0x452821E638D01377, 0xBE5466CF34E90C6C),
        ("a528f45403e61d95", "38c72dbd566e9788", "a5a1610e72fd18b5", "57bd43b5e52b7fe6"),
    ),
]


def _words_to_int(words: tuple[int, ...]) -> int:
    return sum(w << (64 * i) for i, w in enumerate(words))


def numpy_block(counter: tuple[int, int, int, int], key: tuple[int, int]) -> tuple[int, ...]:
    """Our block at `counter` via numpy: numpy bumps its counter before the first block, so start at c − 1."""
    before = (_words_to_int(counter) - 1) % (1 << 256)
    gen = np.random.Philox(counter=before, key=_words_to_int(key))
    return tuple(int(w) for w in gen.random_raw(4))


def block(counter: tuple[int, ...], key: tuple[int, int]) -> tuple[int, ...]:
    return tuple(int(w) for w in philox4x64_10(*counter, *key))


@pytest.mark.parametrize(("counter", "key", "expected"), RANDOM123_KAT)
def test_random123_known_answers(counter, key, expected):
    assert tuple(f"{w:016x}" for w in block(counter, key)) == expected


@pytest.mark.parametrize(
    ("counter", "key"),
    [
        ((0, 0, 0, 0), (0, 0)),
        ((U64, U64, U64, U64), (U64, U64)),
        ((U64, 0, U64, 0), (0, U64)),
        ((1, 2, 3, 4), (5, 6)),
        ((2**63, 2**63 - 1, 12345678901234567890, 7), (0xDEADBEEFCAFEBABE, 1)),
    ],
)
def test_matches_numpy_philox(counter, key):
    assert block(counter, key) == numpy_block(counter, key)


def test_numpy_increments_counter_before_first_block():
    """np Philox(counter=c).random_raw is philox(c+1), philox(c+2), ... with carry across counter words."""
    key = (11, 22)
    counter = np.array([U64, 0, 0, 0], dtype=np.uint64)  # a list would go through float64 and lose bits
    gen = np.random.Philox(counter=counter, key=np.array(key, dtype=np.uint64))
    raw = [int(w) for w in gen.random_raw(8)]
    assert tuple(raw[:4]) == block((0, 1, 0, 0), key)
    assert tuple(raw[4:]) == block((1, 1, 0, 0), key)
    assert tuple(raw[:4]) != block((U64, 0, 0, 0), key)


@settings(max_examples=200, deadline=None)
@given(st.tuples(u64s, u64s, u64s, u64s), st.tuples(u64s, u64s))
def test_matches_numpy_philox_property(counter, key):
    assert block(counter, key) == numpy_block(counter, key)


def test_u01_extremes_are_exact_and_open():
    assert u01(0) == 2.0**-54
    assert u01((1 << 11) - 1) == 2.0**-54
    assert u01(U64) == 1.0 - 2.0**-53 == np.nextafter(1.0, 0.0)
    assert 0.0 < u01(0) < u01(U64) < 1.0
    # The clamp is needed: evaluated naively in float64, (2^53 − 1) + 0.5 rounds (half to even) to 2^53.
    assert ((U64 >> 11) + 0.5) * 2.0**-53 == 1.0


@settings(max_examples=300, deadline=None)
@given(u64s)
def test_u01_is_the_formula_within_half_an_ulp(x):
    u = u01(x)
    assert 0.0 < u < 1.0
    exact = Fraction(2 * (x >> 11) + 1, 2**54)
    assert abs(Fraction(u) - exact) <= Fraction(1, 2**54)
    if x < 2**63:  # below one half every (m + 0.5)·2^-53 is a double: exact
        assert Fraction(u) == exact


def test_stream_lane_order_and_accounting():
    key = (0x0123456789ABCDEF, 0xFEDCBA9876543210)
    st_ = stream_new(*key, 42, 7, 0, 0, 3)
    assert (stream_draws(st_), stream_blocks(st_)) == (0, 0)
    lanes = [int(stream_next_raw(st_)) for _ in range(10)]
    expected = [*block((42, 7, 0, 0), key), *block((42, 7, 0, 1), key), *block((42, 7, 0, 2), key)[:2]]
    assert lanes == expected
    assert (stream_draws(st_), stream_blocks(st_)) == (10, 3)


def test_stream_block_word_and_start_value():
    key = (3, 4)
    st_ = stream_new(*key, 9, 5, 8, 1, 1)
    assert int(stream_next_raw(st_)) == block((9, 5, 8, 1), key)[0]
    assert (stream_draws(st_), stream_blocks(st_)) == (1, 1)
    for _ in range(3):
        stream_next_raw(st_)
    assert int(stream_next_raw(st_)) == block((9, 6, 8, 1), key)[0]
    assert (stream_draws(st_), stream_blocks(st_)) == (5, 2)


def test_stream_blocks_are_lazy_and_u01_reads_the_same_lanes():
    key = (1, 2)
    raw = stream_new(*key, 5, 0, 0, 0, 3)
    uni = stream_new(*key, 5, 0, 0, 0, 3)
    for i in range(8):
        assert stream_next_u01(uni) == u01(stream_next_raw(raw))
        assert stream_blocks(uni) == i // 4 + 1
    assert (stream_draws(uni), stream_blocks(uni)) == (8, 2)


@pytest.mark.parametrize("bad", [-1, 4])
def test_stream_rejects_bad_block_word(bad):
    with pytest.raises(ValueError, match="block_word"):
        stream_new(0, 0, 0, 0, 0, 0, bad)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(u64s, st.integers(0, 9)), min_size=1, max_size=6, unique_by=lambda t: t[0]),
    st.randoms(use_true_random=False),
)
def test_stream_values_do_not_depend_on_evaluation_order(requests, rnd):
    """Interleave draws across entity streams in a random order: each entity sees its own lanes."""
    key = (0xA5A5A5A5A5A5A5A5, 0x5A5A5A5A5A5A5A5A)
    streams = {eid: stream_new(*key, eid, 17, 0, 0, 3) for eid, _ in requests}
    schedule = [eid for eid, n in requests for _ in range(n)]
    rnd.shuffle(schedule)
    got: dict[int, list[int]] = {eid: [] for eid, _ in requests}
    for eid in schedule:
        got[eid].append(int(stream_next_raw(streams[eid])))
    for eid, n in requests:
        assert got[eid] == [block((eid, 17, 0, i // 4), key)[i % 4] for i in range(n)]
        assert stream_draws(streams[eid]) == n
        assert stream_blocks(streams[eid]) == -(-n // 4)


def test_uniforms_for_ids_match_blocks_and_any_subset():
    key = family_key(1, "f" * 64, "test.ids")
    ids = np.array([0, 1, 2**63, U64, 123456789], dtype=np.uint64)
    got = uniforms_for_ids(*key, ids, c1=3, c2=4, c3=5, lane=2)
    assert got.tolist() == [u01(block((int(i), 3, 4, 5), key)[2]) for i in ids]
    subset = uniforms_for_ids(*key, ids[::-2], c1=3, c2=4, c3=5, lane=2)
    assert subset.tolist() == got[::-2].tolist()


def test_uniforms_for_ids_rejects_bad_input():
    with pytest.raises(TypeError, match="uint64"):
        uniforms_for_ids(1, 2, np.array([1, 2], dtype=np.int64))
    with pytest.raises(ValueError, match="lane"):
        uniforms_for_ids(1, 2, np.array([1], dtype=np.uint64), lane=4)


def test_family_key_exact_digest():
    seed, phash, label = 42, "ab" * 32, "1A.ztp"
    assert family_key(seed, phash, label) == (15162268304181286099, 4974379525447155023)

    def lp(b: bytes) -> bytes:
        return struct.pack("<I", len(b)) + b

    parts = [b"engine", struct.pack("<Q", seed), phash.encode(), label.encode()]
    digest = hashlib.sha256(b"".join(lp(p) for p in parts)).digest()
    assert family_key(seed, phash, label) == (
        int.from_bytes(digest[:8], "little"),
        int.from_bytes(digest[8:16], "little"),
    )


def test_family_key_separates_inputs_and_checks_seed():
    inputs = [(1, "00" * 32, "1A.a"), (2, "00" * 32, "1A.a"), (1, "01" * 32, "1A.a"), (1, "00" * 32, "1A.b")]
    assert len({family_key(*args) for args in inputs}) == len(inputs)
    assert family_key(U64, "", "x")[0] <= U64
    for bad in (-1, 1 << 64, True):
        with pytest.raises(ValueError, match="seed"):
            family_key(bad, "", "x")
