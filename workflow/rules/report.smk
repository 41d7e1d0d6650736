rule aggregate:
    input:
        runs=TABLE2_RUNS,
        stamps=stamps("aggregate"),
        code=code("aggregate"),
    output:
        table="reports/table2.csv",
        metrics="reports/metrics.json",
        curves=directory("reports/curves"),
    log:
        "logs/aggregate.log",
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn aggregate --results results/table2 --table {output.table}"
        " --metrics {output.metrics} --curves {output.curves} 2> {log}"


rule table3:
    input:
        runs=TABLE3_RUNS,
        stamps=stamps("table3"),
        code=code("table3"),
    output:
        "reports/table3.csv",
    log:
        "logs/table3.log",
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn table3 --results results/table3 --table {output} 2> {log}"


rule effects_table:
    input:
        runs=EFFECTS_RUNS,
        baseline=expand(
            "results/table2/{dataset}/{model}",
            dataset=sarn.params.effects_datasets(PARAMS),
            model=PARAMS.protocol_effects.models,
        ),
        stamps=stamps("effects_table"),
        code=code("effects_table"),
    output:
        "reports/effects.csv",
    log:
        "logs/effects_table.log",
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn effects-table --results results/effects --baseline results/table2"
        " --table {output} 2> {log}"


rule report_tables:
    input:
        table2="reports/table2.csv",
        table3="reports/table3.csv",
        effects="reports/effects.csv",
        runs=TABLE2_RUNS,
        processed=expand("data/processed/{dataset}", dataset=DATASETS),
        notebook="workflow/notebooks/tables.ipynb",
        code=code("report_tables"),
    output:
        notebook="reports/tables.ipynb",
        html="reports/tables.html",
    log:
        "logs/report/tables.log",
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn report --notebook {input.notebook} --param table2_path={input.table2}"
        " --param table3_path={input.table3} --param results_root=results/table2"
        " --param processed_root=data/processed --param effects_path={input.effects}"
        " --out {output.notebook} --html {output.html} 2> {log}"
