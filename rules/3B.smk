# Segment 3B — virtual merchants and CDN edges. One rule per state; see engine/segments/l1/s3b/<state>.py,
# contracts/3B.yaml, docs/datasets/3B.md and tests/segments/test_3b_*.py.
from engine.segments.l1.s3b.files import file_path as file_3B

MF_3B = PLAN["3B"].manifest_fingerprint
GATE_3B = gate_dir(ROOT, "3B", MF_3B)
SEALED_3B = str(GATE_3B / "sealed_inputs.json")
UPSTREAM_3B = str(gate_dir(ROOT, "3B", MF_3B, "{seed}") / "sealed_upstream.json")
RUN_3B_SEED = run_state(MF_3B)


rule seg3B_s0_gate:
    """Seed-free seal of 3B's policies, 2A's resolver settings, the horizon and the references, plus every
    seed's 1A, 1B and 2A flags and the merchants, tiles, tile sampler and tz cache 3B reads."""
    input:
        policy_files("3B"),
        reference_files("3B"),
        SEALED_2A,
        expand(f"{BUNDLE_1A}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_1B}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_2A}/_passed.flag", seed=SEEDS),
        expand(ds("merchant_catalogue", MF_1A), seed=SEEDS),
        ds("tile_index", MF_1B, seed=None),
        ds("tile_sampler", MF_1B, seed=None),
        ds("tz_transitions", MF_2A, seed=None),
        spec=spec_file("3B"),
    output:
        sealed=SEALED_3B,
        receipt=str(GATE_3B / "s0_gate_receipt.json"),
        upstream=expand(UPSTREAM_3B, seed=SEEDS),
    log:
        job_log("3B", "s0_gate", seeded=False),
    benchmark:
        job_benchmark("3B", "s0_gate", seeded=False),
    resources:
        mem_mb=500,
    conda:
        CONDA_ENV
    shell:
        run_spec_state("3B.S0")


rule seg3B_s1_classify_settle:
    input:
        SEALED_3B,
        UPSTREAM_3B,
    output:
        ds("virtual_classification", MF_3B),
        ds("virtual_settlement", MF_3B),
        state_report("3B", "s1_classify_settle"),
    log:
        job_log("3B", "s1_classify_settle"),
    benchmark:
        job_benchmark("3B", "s1_classify_settle"),
    resources:
        mem_mb=1300,
    params:
        state="3B.S1",
    conda:
        CONDA_ENV
    shell:
        RUN_3B_SEED


rule seg3B_s2_edges:
    input:
        SEALED_3B,
        UPSTREAM_3B,
        rules.seg3B_s1_classify_settle.output,
    output:
        ds("edge_catalogue", MF_3B),
        state_report("3B", "s2_edges"),
    log:
        job_log("3B", "s2_edges"),
    benchmark:
        job_benchmark("3B", "s2_edges"),
    resources:
        mem_mb=5000,
    params:
        state="3B.S2",
    conda:
        CONDA_ENV
    shell:
        RUN_3B_SEED


rule seg3B_s3_edge_alias:
    input:
        SEALED_3B,
        UPSTREAM_3B,
        rules.seg3B_s1_classify_settle.output,
        rules.seg3B_s2_edges.output,
    output:
        ds("s3_edge_alias_members", MF_3B),
        str(file_3B(ROOT, "edge_alias.bin", "{seed}", MF_3B)),
        str(file_3B(ROOT, "edge_alias_index.json", "{seed}", MF_3B)),
        str(file_3B(ROOT, "edge_universe.json", "{seed}", MF_3B)),
        state_report("3B", "s3_edge_alias"),
    log:
        job_log("3B", "s3_edge_alias"),
    benchmark:
        job_benchmark("3B", "s3_edge_alias"),
    resources:
        mem_mb=500,
    params:
        state="3B.S3",
    conda:
        CONDA_ENV
    shell:
        RUN_3B_SEED


rule seg3B_s4_routing_policy:
    input:
        SEALED_3B,
        UPSTREAM_3B,
        rules.seg3B_s1_classify_settle.output,
        rules.seg3B_s3_edge_alias.output,
    output:
        str(file_3B(ROOT, "virtual_routing_policy.json", "{seed}", MF_3B)),
        state_report("3B", "s4_routing_policy"),
    log:
        job_log("3B", "s4_routing_policy"),
    benchmark:
        job_benchmark("3B", "s4_routing_policy"),
    resources:
        mem_mb=300,
    params:
        state="3B.S4",
    conda:
        CONDA_ENV
    shell:
        RUN_3B_SEED


BUNDLE_3B = str(bundle_dir(ROOT, "3B", "{seed}", MF_3B))


rule seg3B_s5_validation:
    input:
        SEALED_3B,
        UPSTREAM_3B,
        rules.seg3B_s1_classify_settle.output,
        rules.seg3B_s2_edges.output,
        rules.seg3B_s3_edge_alias.output,
        rules.seg3B_s4_routing_policy.output,
    output:
        [f"{BUNDLE_3B}/{name}" for name in [*BUNDLE_FILES, "edge_geography.json"]],
    log:
        job_log("3B", "s5_validation"),
    benchmark:
        job_benchmark("3B", "s5_validation"),
    resources:
        mem_mb=6000,
    params:
        state="3B.S5",
    conda:
        CONDA_ENV
    shell:
        RUN_3B_SEED


rule seg3B:
    """3B's validation bundle with _passed.flag and every 3B output, for every configured seed."""
    input:
        rules.seg2A.input,
        expand(rules.seg3B_s5_validation.output, seed=SEEDS),
        expand(rules.seg3B_s5_validation.input, seed=SEEDS),
        rules.seg3B_s0_gate.input,
