"""Digest cache keyed by (path, size, mtime_ns), persisted on disk (design README §3)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import engine.core.digest_cache as dc_mod
from engine.core.digest_cache import DigestCache


@pytest.fixture
def hashes(monkeypatch) -> list[Path]:
    """Record every real hashing the cache does."""
    calls: list[Path] = []
    real = dc_mod.sha256_file

    def counting(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(dc_mod, "sha256_file", counting)
    return calls


def _set_mtime(path: Path, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_digest_is_sha256_and_cached(tmp_path: Path, hashes: list[Path]) -> None:
    f = tmp_path / "ref.parquet"
    f.write_bytes(b"abc")
    cache = DigestCache()
    want = hashlib.sha256(b"abc").hexdigest()
    assert cache.digest(f) == want
    assert cache.digest(f) == want
    assert len(hashes) == 1


def test_same_size_and_mtime_is_trusted(tmp_path: Path, hashes: list[Path]) -> None:
    """The key really is (size, mtime_ns): same-size rewrite with restored mtime is not rehashed."""
    f = tmp_path / "ref.parquet"
    f.write_bytes(b"abc")
    _set_mtime(f, 1_700_000_000_000_000_000)
    cache = DigestCache()
    old = cache.digest(f)
    f.write_bytes(b"xyz")
    _set_mtime(f, 1_700_000_000_000_000_000)
    assert cache.digest(f) == old
    assert len(hashes) == 1


def test_mtime_change_rehashes(tmp_path: Path, hashes: list[Path]) -> None:
    f = tmp_path / "ref.parquet"
    f.write_bytes(b"abc")
    _set_mtime(f, 1_700_000_000_000_000_000)
    cache = DigestCache()
    cache.digest(f)
    f.write_bytes(b"xyz")  # same size
    _set_mtime(f, 1_700_000_000_000_000_001)
    assert cache.digest(f) == hashlib.sha256(b"xyz").hexdigest()
    assert len(hashes) == 2


def test_size_change_rehashes(tmp_path: Path, hashes: list[Path]) -> None:
    f = tmp_path / "ref.parquet"
    f.write_bytes(b"abc")
    _set_mtime(f, 1_700_000_000_000_000_000)
    cache = DigestCache()
    cache.digest(f)
    f.write_bytes(b"abcd")
    _set_mtime(f, 1_700_000_000_000_000_000)  # same mtime, different size
    assert cache.digest(f) == hashlib.sha256(b"abcd").hexdigest()
    assert len(hashes) == 2


def test_persists_across_instances(tmp_path: Path, monkeypatch) -> None:
    f = tmp_path / "ref.parquet"
    f.write_bytes(b"abc")
    cache_file = tmp_path / ".cache" / "digests.json"
    first = DigestCache(cache_file)
    want = first.digest(f)
    assert not cache_file.exists()  # nothing written before save()
    first.save()
    st = f.stat()
    assert json.loads(cache_file.read_text()) == {str(f.resolve()): [st.st_size, st.st_mtime_ns, want]}
    assert sorted(p.name for p in cache_file.parent.iterdir()) == ["digests.json"]

    def no_hashing(path: Path) -> str:
        raise AssertionError(f"rehashed {path}")

    monkeypatch.setattr(dc_mod, "sha256_file", no_hashing)
    second = DigestCache(cache_file)
    assert second.digest(f) == want


def test_save_only_when_dirty(tmp_path: Path) -> None:
    f = tmp_path / "ref.parquet"
    f.write_bytes(b"abc")
    cache_file = tmp_path / "digests.json"
    cache = DigestCache(cache_file)
    cache.save()
    assert not cache_file.exists()
    cache.digest(f)
    cache.save()
    mtime = cache_file.stat().st_mtime_ns
    _set_mtime(cache_file, mtime - 10**9)
    reloaded = DigestCache(cache_file)
    reloaded.digest(f)  # a hit: not dirty
    reloaded.save()
    assert cache_file.stat().st_mtime_ns == mtime - 10**9


def test_corrupt_cache_file_is_ignored(tmp_path: Path, hashes: list[Path]) -> None:
    f = tmp_path / "ref.parquet"
    f.write_bytes(b"abc")
    cache_file = tmp_path / "digests.json"
    cache_file.write_text("{not json")
    cache = DigestCache(cache_file)
    assert cache.digest(f) == hashlib.sha256(b"abc").hexdigest()
    assert len(hashes) == 1
    cache.save()
    assert json.loads(cache_file.read_text())[str(f.resolve())][2] == hashlib.sha256(b"abc").hexdigest()


def test_no_cache_file_save_is_a_noop(tmp_path: Path) -> None:
    f = tmp_path / "ref.parquet"
    f.write_bytes(b"abc")
    cache = DigestCache(None)
    cache.digest(f)
    cache.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.parquet"]
