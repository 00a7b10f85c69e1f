"""Build the tiny world in a temporary root and record its data digests in tests/golden/tiny_world.json.

Usage: `python scripts/update_golden.py` (≈2 min). Refuses to record changed bytes unless CONTRACT_VERSION
was bumped; see engine/core/golden.py.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.core.errors import EngineError  # noqa: E402
from engine.core.golden import GOLDEN_PATH, build_tiny, write_golden  # noqa: E402


def main() -> int:
    try:
        with tempfile.TemporaryDirectory(prefix="engine-golden-") as tmp:
            build_tiny(Path(tmp) / "world")
            changed = write_golden(Path(tmp) / "world")
    except EngineError as err:
        print(err.line(), file=sys.stderr)
        return 2
    print(f"{GOLDEN_PATH}: {'updated' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
