# Segment 6B — behaviour, fraud and labels (design layer2_3.md §4, §5). One rule per state; see
# engine/segments/l3/s6b/<state>.py, contracts/6B.yaml, docs/datasets/6B.md and tests/segments/test_6b_*.py.
# S1, S2, S4, S5a, S5 and S7a run per scenario and shard (streamed by arrival parts); S3 (the campaign plan), S5b
# (card blocks) and S6 (cases) run once per scenario because campaigns, cards and cases cross shards; S7 merges
# the shards' scans into the bundle.

MF_6B = PLAN["6B"].manifest_fingerprint
GATE_6B = gate_dir(ROOT, "6B", MF_6B)
SEALED_6B = str(GATE_6B / "sealed_inputs.json")
UPSTREAM_6B = str(gate_dir(ROOT, "6B", MF_6B, "{seed}") / "sealed_upstream.json")
RUN_6B_SHARD = run_state(MF_6B, scenario=True, shard=True)
RUN_6B_SCENARIO = run_state(MF_6B, scenario=True)
RUN_6B_SEED = run_state(MF_6B, layer2=True)


rule seg6B_s0_gate:
    """Seed-free seal of 6B's policies, the horizon and the references, plus every seed's upstream flags and the
    arrivals, entity tables and merchant data 6B reads; checks the catalogue is feasible in this world."""
    input:
        policy_files("6B"),
        reference_files("6B"),
        SEALED_2A,
        SEALED_5B,
        expand(f"{BUNDLE_1A}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_2A}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_2B}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_3A}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_3B}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_5A}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_5B}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_6A}/_passed.flag", seed=SEEDS),
        spec=spec_file("6B"),
    output:
        sealed=SEALED_6B,
        receipt=str(GATE_6B / "s0_gate_receipt.json"),
        upstream=expand(UPSTREAM_6B, seed=SEEDS),
    log:
        job_log("6B", "s0_gate", seeded=False),
    benchmark:
        job_benchmark("6B", "s0_gate", seeded=False),
    resources:
        mem_mb=1000,
    conda:
        CONDA_ENV
    shell:
        run_spec_state("6B.S0")


rule seg6B_s1_attach_sessions:
    input:
        SEALED_6B,
        UPSTREAM_6B,
    output:
        ds("s1_attachments", MF_6B),
        state_report("6B", "s1_attach_sessions", scenario=True, shard=True),
    log:
        job_log("6B", "s1_attach_sessions", scenario=True, shard=True),
    benchmark:
        job_benchmark("6B", "s1_attach_sessions", scenario=True, shard=True),
    resources:
        mem_mb=3000,
    params:
        state="6B.S1",
    conda:
        CONDA_ENV
    shell:
        RUN_6B_SHARD


rule seg6B_s2_flows:
    input:
        SEALED_6B,
        UPSTREAM_6B,
        rules.seg6B_s1_attach_sessions.output,
    output:
        ds("s2_flow_plan", MF_6B),
        state_report("6B", "s2_flows", scenario=True, shard=True),
    log:
        job_log("6B", "s2_flows", scenario=True, shard=True),
    benchmark:
        job_benchmark("6B", "s2_flows", scenario=True, shard=True),
    resources:
        mem_mb=2000,
    params:
        state="6B.S2",
    conda:
        CONDA_ENV
    shell:
        RUN_6B_SHARD


rule seg6B_s3_campaign_plan:
    input:
        SEALED_6B,
        UPSTREAM_6B,
    output:
        ds("breaches", MF_6B),
        ds("campaigns", MF_6B),
        ds("campaign_targets", MF_6B),
        ds("inserted_flows", MF_6B),
        ds("account_events", MF_6B),
        state_report("6B", "s3_campaign_plan", scenario=True),
    log:
        job_log("6B", "s3_campaign_plan", scenario=True),
    benchmark:
        job_benchmark("6B", "s3_campaign_plan", scenario=True),
    resources:
        mem_mb=3000,
    params:
        state="6B.S3",
    conda:
        CONDA_ENV
    shell:
        RUN_6B_SCENARIO


rule seg6B_s4_overlay_truth:
    input:
        SEALED_6B,
        UPSTREAM_6B,
        rules.seg6B_s1_attach_sessions.output,
        rules.seg6B_s2_flows.output,
        rules.seg6B_s3_campaign_plan.output,
    output:
        ds("s4_flows", MF_6B),
        state_report("6B", "s4_overlay_truth", scenario=True, shard=True),
    log:
        job_log("6B", "s4_overlay_truth", scenario=True, shard=True),
    benchmark:
        job_benchmark("6B", "s4_overlay_truth", scenario=True, shard=True),
    resources:
        mem_mb=3000,
    params:
        state="6B.S4",
    conda:
        CONDA_ENV
    shell:
        RUN_6B_SHARD


rule seg6B_s5a_block_candidates:
    """The detections that block a card, per shard (amendment 5): S5's bank view up to what the bank learns."""
    input:
        SEALED_6B,
        UPSTREAM_6B,
        rules.seg6B_s4_overlay_truth.output,
    output:
        ds("s5_block_candidates", MF_6B),
        state_report("6B", "s5a_block_candidates", scenario=True, shard=True),
    log:
        job_log("6B", "s5a_block_candidates", scenario=True, shard=True),
    benchmark:
        job_benchmark("6B", "s5a_block_candidates", scenario=True, shard=True),
    resources:
        mem_mb=3000,
    params:
        state="6B.S5a",
    conda:
        CONDA_ENV
    shell:
        RUN_6B_SHARD


rule seg6B_s5b_card_blocks:
    """Blocked cards and their replacements, per scenario: a card's flows cross shards."""
    input:
        SEALED_6B,
        UPSTREAM_6B,
        expand(rules.seg6B_s5a_block_candidates.output, shard=SHARDS, allow_missing=True),
    output:
        ds("card_reissues", MF_6B),
        state_report("6B", "s5b_card_blocks", scenario=True),
    log:
        job_log("6B", "s5b_card_blocks", scenario=True),
    benchmark:
        job_benchmark("6B", "s5b_card_blocks", scenario=True),
    resources:
        mem_mb=1000,
    params:
        state="6B.S5b",
    conda:
        CONDA_ENV
    shell:
        RUN_6B_SCENARIO


rule seg6B_s5_bank_events:
    input:
        SEALED_6B,
        UPSTREAM_6B,
        rules.seg6B_s4_overlay_truth.output,
        rules.seg6B_s5b_card_blocks.output,
    output:
        ds("transactions", MF_6B),
        ds("events", MF_6B),
        ds("s5_case_triggers", MF_6B),
        state_report("6B", "s5_bank_events", scenario=True, shard=True),
    log:
        job_log("6B", "s5_bank_events", scenario=True, shard=True),
    benchmark:
        job_benchmark("6B", "s5_bank_events", scenario=True, shard=True),
    resources:
        mem_mb=3000,
    params:
        state="6B.S5",
    conda:
        CONDA_ENV
    shell:
        RUN_6B_SHARD


rule seg6B_s6_cases:
    input:
        SEALED_6B,
        UPSTREAM_6B,
        expand(rules.seg6B_s5_bank_events.output, shard=SHARDS, allow_missing=True),
    output:
        ds("cases", MF_6B),
        ds("case_timeline", MF_6B),
        state_report("6B", "s6_cases", scenario=True),
    log:
        job_log("6B", "s6_cases", scenario=True),
    benchmark:
        job_benchmark("6B", "s6_cases", scenario=True),
    resources:
        mem_mb=2000,
    params:
        state="6B.S6",
    conda:
        CONDA_ENV
    shell:
        RUN_6B_SCENARIO


rule seg6B_s7a_shard_scan:
    """One shard's transactions and events read once for S7 (contract, structure, counts, the sample); per
    shard, so a shard's scan runs once its S5 is done, beside the shards still in S5."""
    input:
        SEALED_6B,
        UPSTREAM_6B,
        rules.seg6B_s3_campaign_plan.output,
        rules.seg6B_s5b_card_blocks.output,
        rules.seg6B_s5_bank_events.output,
    output:
        [ds(name, MF_6B) for name in owned_datasets("6B.S7a")],
        state_report("6B", "s7a_shard_scan", scenario=True, shard=True),
    log:
        job_log("6B", "s7a_shard_scan", scenario=True, shard=True),
    benchmark:
        job_benchmark("6B", "s7a_shard_scan", scenario=True, shard=True),
    resources:
        mem_mb=4000,
    params:
        state="6B.S7a",
    conda:
        CONDA_ENV
    shell:
        RUN_6B_SHARD


BUNDLE_6B = str(bundle_dir(ROOT, "6B", "{seed}", MF_6B))


rule seg6B_s7_validation:
    input:
        SEALED_6B,
        UPSTREAM_6B,
        expand(rules.seg6B_s3_campaign_plan.output, scenario=SCENARIOS, allow_missing=True),
        expand(rules.seg6B_s5_bank_events.output, scenario=SCENARIOS, shard=SHARDS, allow_missing=True),
        expand(rules.seg6B_s6_cases.output, scenario=SCENARIOS, allow_missing=True),
        expand(rules.seg6B_s7a_shard_scan.output, scenario=SCENARIOS, shard=SHARDS, allow_missing=True),
    output:
        [f"{BUNDLE_6B}/{name}" for name in [*BUNDLE_FILES, "summary.json", "label_stats.json", "separability.json"]],
    log:
        job_log("6B", "s7_validation"),
    benchmark:
        job_benchmark("6B", "s7_validation"),
    resources:
        mem_mb=6000,
    params:
        state="6B.S7",
    conda:
        CONDA_ENV
    shell:
        RUN_6B_SEED


rule seg6B:
    """6B's validation bundle with _passed.flag and every 6B output, for every configured seed."""
    input:
        rules.seg5B.input,
        rules.seg6A.input,
        expand(rules.seg6B_s7_validation.output, seed=SEEDS),
        expand(rules.seg6B_s7_validation.input, seed=SEEDS),
        rules.seg6B_s0_gate.input,
        KERNELS_WARM,
