"""2B.S5 and the S7 auditor: one block of `days` slices per merchant; a flipped byte or a foreign header is
caught with its code."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.core.errors import EngineError
from engine.kernels.alias_blob import AliasLayout, audit_day_blocks, audit_slices
from tests.segments.test_2b_s1_site_weights import part
from tests.segments.test_2b_s2_site_alias import files as site_files


def files(root: Path) -> tuple[bytes, dict]:
    base = next(root.glob("data/layer1/2B/group_alias/seed=42/*"))
    return (base / "group_alias.bin").read_bytes(), json.loads((base / "group_alias_index.json").read_text())


def test_one_block_per_merchant_and_day(tiny_world: Path) -> None:
    blob, index = files(tiny_world)
    mix = part(tiny_world, "2B", "s4_group_weights")
    assert len(index["merchants"]) == mix["merchant_id"].n_unique()
    for m in index["merchants"]:
        assert m["days"] == 14 and m["slice_length"] == 16 + 8 * m["n_groups"]  # already 8-aligned
        tz = mix.filter(pl.col("merchant_id") == int(m["merchant_id"]))["tz_index"].unique().sort().to_list()
        assert m["tz_indexes"] == tz
    masses = audit_day_blocks(blob, index, AliasLayout())
    assert all(int(x.sum()) == (1 << 24) * x.shape[0] for x in masses)


@pytest.mark.parametrize("which", ["site", "group"])
def test_a_flipped_byte_is_caught(tiny_world: Path, which: str) -> None:
    blob, index = site_files(tiny_world) if which == "site" else files(tiny_world)
    audit = audit_slices if which == "site" else audit_day_blocks
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 0x01
    with pytest.raises(EngineError) as err:
        audit(bytes(bad), index, AliasLayout())
    assert err.value.code == "E_2B_ALIAS_DIGEST"
    # the same bytes under another policy's mass_bits: the header disagrees
    with pytest.raises(EngineError) as err:
        audit(blob, {**index, "mass_bits": 20}, AliasLayout(mass_bits=20))
    assert err.value.code == "E_2B_ALIAS_HEADER"


def test_digest_fixed_but_masses_wrong_is_a_decode_error(tiny_world: Path) -> None:
    blob, index = site_files(tiny_world)
    expected = [np.full(s["n"], (1 << 24) // s["n"]) for s in index["slices"]]
    with pytest.raises(EngineError) as err:
        audit_slices(blob, index, AliasLayout(), expected)
    assert err.value.code == "E_ALIAS_DECODE"


def test_a_rewritten_index_is_refused_before_any_state_reads_it(tiny_world: Path, tmp_path: Path) -> None:
    """An index rewritten with its blob untouched (its own digests still agree) is not the file 2B.S5
    recorded: 2B.S7 stops on the recorded digest and names the file."""
    import shutil
    import subprocess
    import sys

    root = tmp_path / "world"
    shutil.copytree(tiny_world, root, symlinks=True)
    path = next(root.glob("data/layer1/2B/group_alias/seed=42/*/group_alias_index.json"))
    path.chmod(0o644)
    path.write_text(json.dumps(json.loads(path.read_text()), indent=1))
    mf = path.parent.name.removeprefix("manifest_fingerprint=")
    cmd = [sys.executable, "-m", "engine", "run", "2B.S7", "--root", str(root), "--mf", mf, "--seed", "42"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2
    assert "ERROR E_SEALED_INPUT_DIGEST_MISMATCH 2B.S7: group_alias_index does not match" in res.stderr
    assert str(path) in res.stderr
