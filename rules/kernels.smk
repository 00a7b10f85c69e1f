# Numba's cache is empty in a fresh clone, so each state that calls a kernel compiles it first: over two
# minutes of the default world's critical path, both shards of a state compiling the same kernels at once.
# kernels_warm compiles the signatures 6B, 5B and 6A use (engine/kernels/signatures.json) into the cache
# while the earlier segments run. It takes no core slot (threads 0) and runs at the lowest CPU priority, so it
# only uses CPU time the states leave idle. It changes no output byte: a signature it has not reached yet is
# compiled by its state as before. Its report is keyed by the registry and the source of every module the
# registry names, so an edited kernel is warmed again. While scripts/kernel_signatures.py records the
# registry (ENGINE_KERNEL_SIGNATURES set) no warm-up runs: each state must compile its own kernels to name them.
import hashlib
import json
import os

# 6B first: its states are surely on the critical path and its kernels cost the most to compile (6B.S2's
# plan_kernel alone ≈ 30 s). Then 5B, whose S4 shards otherwise compile the same kernels on both cores at once
# and hold up 6A; 6A's kernels are small and its states run one at a time.
WARM_SEGMENTS = ["6B", "5B", "6A"]


def _kernel_sources_digest():
    registry = Path(workflow.basedir) / "engine" / "kernels" / "signatures.json"
    h = hashlib.sha256(registry.read_bytes())
    for module in sorted({e["module"] for e in json.loads(registry.read_text())["kernels"]}):
        h.update((Path(workflow.basedir) / (module.replace(".", "/") + ".py")).read_bytes())
    return h.hexdigest()[:16]


KERNELS_WARM_REPORT = str(ROOT / ".cache" / "kernels" / f"warm-{_kernel_sources_digest()}.json")
# what seg6B (and so `all`) asks for
KERNELS_WARM = [] if os.environ.get("ENGINE_KERNEL_SIGNATURES") else [KERNELS_WARM_REPORT]


rule kernels_warm:
    """Numba's cache filled for the signatures 6B, 5B and 6A compile; its report lists them with seconds."""
    output:
        KERNELS_WARM_REPORT,
    log:
        str(ROOT / "logs" / "kernels" / f"{Path(KERNELS_WARM_REPORT).stem}.log"),
    benchmark:
        str(ROOT / "benchmarks" / "kernels" / f"{Path(KERNELS_WARM_REPORT).stem}.tsv"),
    threads: 0
    resources:
        mem_mb=1500,
    conda:
        CONDA_ENV
    shell:
        f"{{ENV}} {{ENGINE}} warm-kernels --segments {','.join(WARM_SEGMENTS)} --out {{output:q}}{TO_LOG}"
