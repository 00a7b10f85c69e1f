"""The Parquet floor of 6B's sharded states: decode what each state reads of 6B's own sharded tables,
re-encode what it writes, and nothing else.

No state can run faster than its floor, whatever its code does between reading and writing. The floor is a
lower bound: it leaves out 5B's arrival_events (each state reads a different subset of its columns), 6A's
tables and every computation. It runs on one thread (POLARS_MAX_THREADS=1 before polars loads, Arrow's pools
at 1), as the workflow runs one job per core. Each re-encoded part must be byte-identical to the published
one, so what is timed is exactly the engine's own encoding: streamed through `PartWriter` in 2^20-row batches
as `StreamOut` hands them over, or whole through `write_parquet` as `StateContext.publish` writes.

    python scripts/io_floor.py ROOT [--seed 42] [--scenario baseline] [--shard 0] [--json OUT]

Prints one line per state and, with --json, writes the figures (docs/benchmarks.md records them).
"""

from __future__ import annotations

import os

os.environ["POLARS_MAX_THREADS"] = "1"  # before polars loads: a job has one core

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.core.canonical import sha256_file  # noqa: E402
from engine.core.contracts import PART_GLOB, dataset_dir, dictionary  # noqa: E402
from engine.core.parquet_io import ROW_GROUP_SIZE, PartWriter, write_parquet  # noqa: E402
from engine.segments.l3.s6b.s2_flows import ATTACH_COLUMNS  # noqa: E402

# What each sharded state reads of 6B's sharded tables: None is every column (the state streams them all).
READS: dict[str, list[tuple[str, list[str] | None]]] = {
    "6B.S1": [],
    "6B.S2": [("s1_attachments", ATTACH_COLUMNS)],
    "6B.S4": [("s1_attachments", None), ("s2_flow_plan", None)],
    "6B.S5": [("s4_flows", None)],
    "6B.S5a": [("s4_flows", None)],
    "6B.S7a": [("transactions", None), ("events", None)],
}


def fingerprint(root: Path, seed: int, scenario: str, shard: int) -> str:
    """6B's one manifest fingerprint in `root`, from where its `transactions` partition lies."""
    pattern = dataset_dir(Path(), "transactions", mf="*", seed=seed, scenario=scenario, shard=shard)
    found = sorted(root.glob(str(pattern)))
    if len(found) != 1:
        what = f"{root / pattern} matches {len(found)} partitions"
        raise SystemExit(f"E_IO_FLOOR_INPUT: {what}; fix: build 6B into this root first")
    return next(p for p in found[0].parts if p.startswith("manifest_fingerprint=")).split("=", 1)[1]


def parts(folder: Path) -> list[Path]:
    return sorted(folder.glob(PART_GLOB))


def decode(folder: Path, columns: list[str] | None) -> tuple[pl.DataFrame, float]:
    start = time.perf_counter()
    frame = pl.read_parquet(parts(folder), columns=columns)
    return frame, time.perf_counter() - start


def encode_streamed(frame: pl.DataFrame, scratch: Path) -> list[Path]:
    """As `StreamOut` writes: batches of 2^20 rows into `PartWriter`."""
    writer = PartWriter(scratch)
    for offset in range(0, frame.height, ROW_GROUP_SIZE):
        writer.write(frame.slice(offset, ROW_GROUP_SIZE).to_arrow())
    return [scratch / name for name, _ in writer.close()]


def encode_whole(frame: pl.DataFrame, scratch: Path) -> list[Path]:
    """As `StateContext.publish` writes a table held whole."""
    path = scratch / "part-00000.parquet"
    write_parquet(frame, path)
    return [path]


def encode(frame: pl.DataFrame, published: Path, scratch: Path) -> float:
    """Seconds to write `frame` as the engine wrote it (streamed or whole, whichever reproduces the published
    bytes); exits if neither does."""
    theirs = [sha256_file(p) for p in parts(published)]
    for writer in (encode_streamed, encode_whole):
        start = time.perf_counter()
        mine = writer(frame, scratch)
        seconds = time.perf_counter() - start
        same = [sha256_file(p) for p in mine] == theirs
        for p in mine:
            p.unlink()
        if same:
            return seconds
    raise SystemExit(f"E_IO_FLOOR_BYTES: re-encoding {published} gave other bytes; fix: the writer changed")


def outputs_of(state: str) -> list[str]:
    """The state's sharded datasets (the dictionary's owner)."""
    return [
        name
        for name, spec in dictionary().items()
        if spec["owner"] == state and "shard" in spec.get("partition", [])
    ]


def floor(root: Path, seed: int, scenario: str, shard: int) -> list[dict[str, object]]:
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    mf = fingerprint(root, seed, scenario, shard)

    def partition(dataset: str) -> Path:
        folder = dataset_dir(root, dataset, mf=mf, seed=seed, scenario=scenario, shard=shard)
        if not parts(folder):
            raise SystemExit(f"E_IO_FLOOR_INPUT: {folder} holds no part; fix: build 6B into this root first")
        return folder

    flows = pl.scan_parquet(parts(partition("transactions"))).select(pl.len())
    n_flows = int(flows.collect().item())
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for state, reads in READS.items():
            decoded = 0.0
            for dataset, columns in reads:
                frame, seconds = decode(partition(dataset), columns)
                decoded += seconds
                del frame
            encoded = 0.0
            written = 0
            for dataset in outputs_of(state):
                folder = partition(dataset)
                frame, _ = decode(folder, None)
                scratch = Path(tmp) / dataset
                scratch.mkdir()
                encoded += encode(frame, folder, scratch)
                written += frame.height
            total = decoded + encoded
            rows.append(
                {
                    "state": state,
                    "flows": n_flows,
                    "rows_written": written,
                    "decode_s": round(decoded, 2),
                    "encode_s": round(encoded, 2),
                    "floor_s": round(total, 2),
                    "floor_flows_per_s_per_core": round(n_flows / total) if total else None,
                }
            )
            print(
                f"{state:7s} decode {decoded:6.1f} s  encode {encoded:6.1f} s  floor {total:6.1f} s  "
                f"{n_flows / total if total else float('inf'):>12,.0f} flows/s per core",
                flush=True,
            )
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path, help="a built world's output_root")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--scenario", default="baseline")
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the figures here")
    a = p.parse_args()
    rows = floor(a.root.resolve(), a.seed, a.scenario, a.shard)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
