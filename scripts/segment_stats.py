"""Per-segment job count, summed job wall time and largest job RSS of a built output root, from Snakemake's
benchmark files; the figures docs/benchmarks.md records. Usage: python scripts/segment_stats.py ROOT"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path


def segment_stats(root: Path) -> dict[str, tuple[int, float, float]]:
    """segment → (jobs, Σ wall seconds, max RSS MiB) over every benchmark.tsv under ROOT/benchmarks."""
    out: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for path in sorted((root / "benchmarks").rglob("benchmark.tsv")):
        seg = path.relative_to(root / "benchmarks").parts[0]
        with open(path, newline="") as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        stats = out[seg]
        stats[0] += 1
        stats[1] += float(row["s"])
        rss = row.get("max_rss", "NA")
        stats[2] = max(stats[2], float(rss) if rss not in ("NA", "-") else 0.0)
    return {seg: (int(s[0]), s[1], s[2]) for seg, s in out.items()}


def main(argv: list[str]) -> int:
    root = Path(argv[1])
    print("segment\tjobs\tsum_wall_s\tmax_rss_mib")
    for seg, (jobs, wall, rss) in sorted(segment_stats(root).items()):
        print(f"{seg}\t{jobs}\t{wall:.1f}\t{rss:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
