rule aggregate:
    input:
        runs=expand("results/{dataset}/{model}", dataset=DATASETS, model=MODELS),
        stamps=stamps("aggregate"),
        code="sarn/report.py",
    output:
        table="reports/table2.csv",
        metrics="reports/metrics.json",
    log:
        "logs/aggregate.log",
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn aggregate --results results --table {output.table}"
        " --metrics {output.metrics} 2> {log}"


rule report_table2:
    input:
        table="reports/table2.csv",
        notebook="workflow/notebooks/table2.ipynb",
        code="sarn/report.py",
    output:
        notebook="reports/table2.ipynb",
        html="reports/table2.html",
    log:
        "logs/report/table2.log",
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn report --notebook {input.notebook} --table {input.table}"
        " --out {output.notebook} --html {output.html} 2> {log}"
