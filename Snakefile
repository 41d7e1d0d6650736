# Entry point from the repository root (`snakemake --cores 8 reports/table2.csv`); the
# rules follow Snakemake's deployment layout under workflow/.


include: "workflow/Snakefile"


rule all:
    input:
        FINAL_TARGETS,
    default_target: True
