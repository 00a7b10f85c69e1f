"""Digest cache for large files, keyed by (path, size, mtime_ns), so parse-time hashing stays cheap."""

from __future__ import annotations

import json
import os
from pathlib import Path

from engine.core.canonical import sha256_file


class DigestCache:
    """sha256 of files, remembered on disk; a changed size or mtime means the file is hashed again."""

    def __init__(self, cache_file: Path | None = None) -> None:
        self.cache_file = cache_file
        self._entries: dict[str, list] = {}
        if cache_file is not None and cache_file.is_file():
            try:
                self._entries = json.loads(cache_file.read_text())
            except (OSError, ValueError):
                self._entries = {}
        self._dirty = False

    def digest(self, path: Path) -> str:
        st = path.stat()
        key = str(path.resolve())
        hit = self._entries.get(key)
        if hit is not None and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return str(hit[2])
        value = sha256_file(path)
        self._entries[key] = [st.st_size, st.st_mtime_ns, value]
        self._dirty = True
        return value

    def save(self) -> None:
        if self.cache_file is None or not self._dirty:
            return
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_name(f".tmp-{os.getpid()}-{self.cache_file.name}")
        tmp.write_text(json.dumps(self._entries, sort_keys=True))
        os.replace(tmp, self.cache_file)
        self._dirty = False
