# The closed-world fraud data engine. `snakemake --cores N --config preset=tiny output_root=DIR`.
# Targets: all, seg1A (later: seg1B … seg6B). See README.md and docs/.

configfile: f"{workflow.basedir}/config/config.yaml"


include: "rules/common.smk"
include: "rules/resources.smk"
include: "rules/ingress.smk"
include: "rules/1A.smk"


rule all:
    input:
        rules.seg1A.input,
    default_target: True
