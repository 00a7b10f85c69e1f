# The closed-world fraud data engine. `snakemake --cores N --config preset=tiny output_root=DIR`.
# Targets: all, seg1A, seg1B, seg2A, seg2B, seg3A, seg3B, seg5A, seg5B, seg6A, seg6B. See README.md and docs/

configfile: f"{workflow.basedir}/config/config.yaml"


include: "rules/common.smk"
include: "rules/kernels.smk"
include: "rules/resources.smk"
include: "rules/ingress.smk"
include: "rules/1A.smk"
include: "rules/1B.smk"
include: "rules/2A.smk"
include: "rules/2B.smk"
include: "rules/3A.smk"
include: "rules/3B.smk"
include: "rules/5A.smk"
include: "rules/5B.smk"
include: "rules/6A.smk"
include: "rules/6B.smk"


rule all:
    input:
        rules.seg2B.input,
        rules.seg3A.input,
        rules.seg3B.input,
        rules.seg5A.input,
        rules.seg5B.input,
        rules.seg6A.input,
        rules.seg6B.input,
    default_target: True


onerror:
    report_failures(workflow.scheduler.failed, log)
