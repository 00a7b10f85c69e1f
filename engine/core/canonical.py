"""Canonical JSON and hashing helpers: one byte form for every digest the engine takes."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def canonical_json_bytes(obj: Any) -> bytes:
    """Sorted keys, fixed separators, UTF-8, trailing newline: equal objects give equal bytes."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def lp(data: bytes) -> bytes:
    """Length prefix (u32 little-endian) + bytes: the unambiguous encoding every hashed tuple uses."""
    return struct.pack("<I", len(data)) + data


def encode_part(part: str | int | bytes) -> bytes:
    """Encode one hashed part: strings as UTF-8, integers as LE64 (two's complement for negatives)."""
    if isinstance(part, bool):
        raise TypeError("booleans are not hashable parts")
    if isinstance(part, int):
        return struct.pack("<Q", part & 0xFFFFFFFFFFFFFFFF)
    if isinstance(part, str):
        return part.encode("utf-8")
    return bytes(part)


def hash_parts(*parts: str | int | bytes) -> bytes:
    """SHA-256 over the length-prefixed encoding of the parts."""
    h = hashlib.sha256()
    for part in parts:
        h.update(lp(encode_part(part)))
    return h.digest()
