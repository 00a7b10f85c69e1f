# The closed-world fraud data engine. `snakemake --cores N --config preset=tiny output_root=DIR`.
# Targets: all, seg1A, seg1B, seg2A (later: seg2B … seg6B). See README.md and docs/.

configfile: f"{workflow.basedir}/config/config.yaml"


include: "rules/common.smk"
include: "rules/resources.smk"
include: "rules/ingress.smk"
include: "rules/1A.smk"
include: "rules/1B.smk"
include: "rules/2A.smk"


rule all:
    input:
        rules.seg2A.input,
    default_target: True


onerror:
    report_failures(workflow.scheduler.failed, log)
