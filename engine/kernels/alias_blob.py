"""Alias tables on disk in layer1 §2B.S2's binary layout: a writer, and an auditor that trusts none of it.

The writer encodes with the shared kernels of `engine.kernels.alias`. The auditor re-parses the bytes with
numpy alone and decodes each slice back to integer masses by its own arithmetic, so a fault in the writer or
the encoder cannot vouch for itself (§2B.S7). Two index shapes share one slice layout: one entry per slice
(site tables, 3B's edge tables) and one entry per merchant holding a block of `days` equally spaced slices
(group tables, §2B.S5: day d's slice at `offset + d·slice_length`; the block digest covers days·slice_length).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.core.errors import EngineError
from engine.kernels.alias import PROB_QBITS, encode, integer_masses

MAGIC = 0x31534C41  # b"ALS1" read as a little-endian u32
HEADER_BYTES = 16
_HEADER = struct.Struct("<4I")


@dataclass(frozen=True)
class AliasLayout:
    """`alias_layout.yaml` (§2B policies); defaults are the spec's."""

    layout_version: int = 1
    magic: str = "ALS1"
    endianness: str = "little"
    alignment_bytes: int = 8
    mass_bits: int = 24
    prob_qbits: int = 32

    def index_head(self) -> dict[str, Any]:
        return {
            "layout_version": self.layout_version,
            "magic": self.magic,
            "endianness": self.endianness,
            "alignment_bytes": self.alignment_bytes,
            "mass_bits": self.mass_bits,
            "prob_qbits": self.prob_qbits,
        }


def _align(x: int, a: int) -> int:
    return -(-x // a) * a


def slice_bytes(weights: np.ndarray, layout: AliasLayout) -> tuple[bytes, np.ndarray]:
    """One slice (header + interleaved prob_q/alias pairs) and the integer masses it encodes."""
    if layout.prob_qbits != PROB_QBITS:  # the shared decoder's coin is the lane's low 32 bits
        raise ValueError(f"prob_qbits must be {PROB_QBITS}, got {layout.prob_qbits}")
    w = np.ascontiguousarray(weights, dtype=np.float64)
    if w.size == 0 or w.size > 1 << layout.mass_bits:
        raise ValueError(f"a slice needs 1..2^mass_bits members, got {w.size}")
    mass = integer_masses(w, layout.mass_bits)
    prob_q, alias = encode(mass, layout.mass_bits)
    pairs = np.empty(2 * w.size, dtype="<u4")
    pairs[0::2] = prob_q
    pairs[1::2] = alias
    head = _HEADER.pack(MAGIC, w.size, layout.prob_qbits, layout.mass_bits)
    return head + pairs.tobytes(), mass


def _ids(key: Mapping[str, Any]) -> dict[str, Any]:
    """Index keys as JSON wants them: *_id values as decimal strings (JSON numbers lose bits above 2^53)."""
    return {k: str(int(v)) if k.endswith("_id") else v for k, v in key.items()}


def write_slices(
    items: Sequence[tuple[Mapping[str, Any], np.ndarray]], layout: AliasLayout
) -> tuple[bytes, dict[str, Any], list[np.ndarray]]:
    """Blob, index and masses for slices in the caller's order (§2B.S2: (merchant_id, tz_index) order)."""
    buf = bytearray()
    entries, masses = [], []
    for key, weights in items:
        data, mass = slice_bytes(weights, layout)
        buf += b"\x00" * (_align(len(buf), layout.alignment_bytes) - len(buf))
        entries.append(
            {
                **_ids(key),
                "offset": len(buf),
                "length": len(data),
                "n": int(mass.size),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
        buf += data
        masses.append(mass)
    blob = bytes(buf)
    index = {**layout.index_head(), "blob_bytes": len(blob), "blob_sha256": hashlib.sha256(blob).hexdigest()}
    return blob, {**index, "slices": entries}, masses


def write_day_blocks(
    items: Sequence[tuple[Mapping[str, Any], Sequence[int], np.ndarray]], layout: AliasLayout
) -> tuple[bytes, dict[str, Any], list[np.ndarray]]:
    """Group blob (§2B.S5): per merchant (key, tz_indexes, p[days, n_groups]) → a block of `days` slices,
    each padded to slice_length = 16 + 8n rounded up to the alignment. Masses come back as [days, n]."""
    buf = bytearray()
    entries, masses = [], []
    memo: dict[bytes, tuple[bytes, np.ndarray]] = {}
    for key, tz_indexes, p in items:
        p = np.asarray(p, dtype=np.float64)
        days, n = p.shape
        if n != len(tz_indexes):
            raise ValueError("p_group columns must match tz_indexes")
        stride = _align(HEADER_BYTES + 8 * n, layout.alignment_bytes)
        buf += b"\x00" * (_align(len(buf), layout.alignment_bytes) - len(buf))
        start = len(buf)
        block = bytearray(days * stride)
        mass = np.empty((days, n), dtype=np.uint64)
        for d in range(days):
            key_d = p[d].tobytes()  # most merchants have one group: every day is the same slice
            if key_d not in memo:
                memo[key_d] = slice_bytes(p[d], layout)
            data, mass[d] = memo[key_d]
            block[d * stride : d * stride + len(data)] = data
        entries.append(
            {
                **_ids(key),
                "offset": start,
                "n_groups": n,
                "slice_length": stride,
                "days": days,
                "tz_indexes": [int(t) for t in tz_indexes],
                "sha256": hashlib.sha256(block).hexdigest(),
            }
        )
        buf += block
        masses.append(mass)
    blob = bytes(buf)
    index = {**layout.index_head(), "blob_bytes": len(blob), "blob_sha256": hashlib.sha256(blob).hexdigest()}
    return blob, {**index, "merchants": entries}, masses


# ---------------------------------------------------------------------------------------------- auditor


def alias_error(code: str, what: str, where: str) -> EngineError:
    fixes = {
        "E_2B_ALIAS_DIGEST": "the blob changed after it was written; delete it and rerun its state",
        "E_2B_ALIAS_HEADER": "the table was written under another alias_layout or is corrupt; rebuild it",
        "E_ALIAS_DECODE": "the encoder wrote a table that does not decode to its masses; report it as a bug",
    }
    return EngineError(code, what, where=where, fix=fixes[code])


def check_blob(blob: bytes, index: Mapping[str, Any], layout: AliasLayout, where: str = "alias blob") -> None:
    """Whole-blob checks done before anything is trusted: size, sha256 and the index head against policy."""
    check_index_head(index, len(blob), hashlib.sha256(blob).hexdigest(), layout, where)


def check_index_head(
    index: Mapping[str, Any], size: int, sha256: str, layout: AliasLayout, where: str
) -> None:
    """As `check_blob` for a blob hashed elsewhere (a memory-mapped file)."""
    if size != index["blob_bytes"] or sha256 != index["blob_sha256"]:
        raise alias_error("E_2B_ALIAS_DIGEST", "blob sha256 or size differs from its index", where)
    for k, v in layout.index_head().items():
        if index.get(k) != v:
            raise alias_error("E_2B_ALIAS_HEADER", f"index {k}={index.get(k)!r}, policy says {v!r}", where)


def _decode_slice(
    blob: bytes, offset: int, n: int, layout: AliasLayout, expected: np.ndarray | None, where: str
) -> np.ndarray:
    """Parse one slice at `offset` with numpy and return its masses; the inverse of integer Walker–Vose:
    column j keeps prob_j/G of its 1/n share for j and gives the rest to alias[j], so Σ = mass·n exactly."""
    if offset % layout.alignment_bytes or offset + HEADER_BYTES + 8 * n > len(blob):
        raise alias_error("E_2B_ALIAS_HEADER", f"slice at {offset} (n={n}) misaligned or past the end", where)
    magic, hn, qbits, mbits = (int(x) for x in np.frombuffer(blob, "<u4", 4, offset))
    if magic != MAGIC or hn != n or qbits != layout.prob_qbits or mbits != layout.mass_bits:
        got = f"magic={magic:#x} n={hn} prob_qbits={qbits} mass_bits={mbits}"
        raise alias_error("E_2B_ALIAS_HEADER", f"header {got}, expected n={n} and the policy's layout", where)
    pairs = np.frombuffer(blob, "<u4", 2 * n, offset + HEADER_BYTES).astype(np.int64)
    prob_q, alias = pairs[0::2], pairs[1::2]
    if (alias >= n).any():
        raise alias_error("E_ALIAS_DECODE", f"alias index ≥ n={n}", where)
    g = 1 << layout.mass_bits
    shift = layout.prob_qbits - layout.mass_bits
    full = alias == np.arange(n)
    if (~full & ((prob_q & ((1 << shift) - 1)) != 0)).any():  # a kept share must be an exact multiple of 1/G
        raise alias_error("E_ALIAS_DECODE", "a split column's prob_q is not an integer mass", where)
    keep = np.where(full, g, prob_q >> shift)
    if (keep > g).any():
        raise alias_error("E_ALIAS_DECODE", "a column keeps more than G", where)
    acc = keep.copy()  # int64 throughout: Σ = mass·n ≤ 2^32·n stays exact (float bincount would not)
    np.add.at(acc, alias, g - keep)
    mass = acc // n
    if (acc % n).any() or (expected is not None and not np.array_equal(mass, np.asarray(expected, np.int64))):
        raise alias_error("E_ALIAS_DECODE", f"slice at offset {offset} does not decode to its masses", where)
    return mass


def _span(blob: bytes, off: int, length: int, end: int, digest: str, what: str, at: str) -> int:
    """A slice or block at [off, off + length): after the previous one's `end`, its sha256 as indexed."""
    if off < end:
        raise alias_error(
            "E_2B_ALIAS_HEADER", f"offset {off} overlaps the previous {what} (ends at {end})", at
        )
    if hashlib.sha256(blob[off : off + length]).hexdigest() != digest:
        raise alias_error("E_2B_ALIAS_DIGEST", f"{what} sha256 differs from its index", at)
    return off + length


def audit_slices(
    blob: bytes,
    index: Mapping[str, Any],
    layout: AliasLayout,
    expected: Sequence[np.ndarray] | None = None,
    where: str = "alias blob",
) -> list[np.ndarray]:
    """Every check of §2B.S7 on a per-slice index; returns the decoded masses in slice order."""
    check_blob(blob, index, layout, where)
    out, end = [], 0
    for i, s in enumerate(index["slices"]):
        at = f"{where} slice {i}"
        off, n, length = int(s["offset"]), int(s["n"]), int(s["length"])
        if length != HEADER_BYTES + 8 * n:
            raise alias_error("E_2B_ALIAS_HEADER", f"length {length} for n={n}", at)
        end = _span(blob, off, length, end, s["sha256"], "slice", at)
        out.append(_decode_slice(blob, off, n, layout, None if expected is None else expected[i], at))
    return out


def audit_day_blocks(
    blob: bytes,
    index: Mapping[str, Any],
    layout: AliasLayout,
    expected: Sequence[np.ndarray] | None = None,
    where: str = "group alias blob",
) -> list[np.ndarray]:
    """As `audit_slices` for a per-merchant block index (§2B.S5); returns [days, n_groups] masses each."""
    check_blob(blob, index, layout, where)
    out, end = [], 0
    for i, m in enumerate(index["merchants"]):
        at = f"{where} merchant {m.get('merchant_id', i)}"
        off, n, stride, days = (int(m[k]) for k in ("offset", "n_groups", "slice_length", "days"))
        if stride % layout.alignment_bytes or stride < HEADER_BYTES + 8 * n or len(m["tz_indexes"]) != n:
            raise alias_error("E_2B_ALIAS_HEADER", f"slice_length {stride} or n_groups {n}", at)
        end = _span(blob, off, days * stride, end, m["sha256"], "block", at)
        exp = None if expected is None else np.asarray(expected[i])
        masses = [
            _decode_slice(blob, off + d * stride, n, layout, None if exp is None else exp[d], f"{at} day {d}")
            for d in range(days)
        ]
        out.append(np.array(masses, dtype=np.int64).reshape(days, n))
    return out
