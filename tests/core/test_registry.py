"""The segment registry (engine/states.py): engine/core names no segment, and the registry is complete."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from engine.core.horizon import POLICIES as CFG_POLICIES
from engine.core.policy import POLICY_DIR
from engine.states import SEGMENTS, STATES, PolicyField

CORE = Path(__file__).resolve().parents[2] / "engine" / "core"
SEGMENT_IMPORT = re.compile(r"\bengine\.segments\b")


def test_core_imports_no_segment() -> None:
    """A new segment registers in engine/states.py; it never edits engine/core to be found."""
    found = [
        f"{path.relative_to(CORE.parent.parent)}:{i}: {line.strip()}"
        for path in sorted(CORE.rglob("*.py"))
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if SEGMENT_IMPORT.search(line)
    ]
    assert not found, "engine/core names engine.segments (read it through engine/states.py):\n" + "\n".join(
        found
    )


def test_importing_core_loads_no_segment() -> None:
    """The registry names policy modules by path: importing the config, policy and plan modules loads none."""
    code = (
        "import sys, engine.core.config, engine.core.policy, engine.core.plan\n"
        "print(sorted(m for m in sys.modules if m.startswith('engine.segments')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_segment_with_states_is_registered_and_vice_versa() -> None:
    assert sorted({s.segment for s in STATES.values()}) == sorted(SEGMENTS)


def test_segments_are_in_dependency_order() -> None:
    seen: set[str] = set()
    for seg, sdef in SEGMENTS.items():
        assert sdef.id == seg
        missing = [u for u in sdef.upstream if u not in seen]
        assert not missing, f"{seg}'s upstream {missing} must be registered before it"
        seen.add(seg)


def test_sealed_policies_have_models_and_every_shipped_pack_is_sealed() -> None:
    sealed: set[tuple[str, str]] = set()
    for seg, sdef in SEGMENTS.items():
        assert len(set(sdef.policies)) == len(sdef.policies), f"{seg} seals a policy twice"
        for owner, name in sdef.policies:
            models = CFG_POLICIES if owner == "CFG" else SEGMENTS[owner].policy_models()
            assert name in models, f"{seg} seals {owner}/{name}, which has no model"
            sealed.add((owner, name))
        for ref in sdef.references:
            if isinstance(ref, PolicyField):
                assert (ref.seg, ref.name) in sdef.policies, f"{seg}: {ref} is not sealed"
                models = SEGMENTS[ref.seg].policy_models()
                assert ref.field in models[ref.name].model_fields
    packs = {(seg, name) for seg, sdef in SEGMENTS.items() for name in sdef.policy_models()}
    shipped = (p.relative_to(POLICY_DIR).with_suffix("").parts for p in POLICY_DIR.glob("*/**/*.yaml"))
    assert packs == {(seg, "/".join(name)) for seg, *name in shipped}  # 5A's packs: scenarios/<id>
    assert packs <= sealed, f"shipped packs no segment seals: {sorted(packs - sealed)}"
