FIGURES = PARAMS.figures


rule snapshots:
    input:
        data=f"data/processed/{FIGURES.dataset}",
        stamps=stamps("snapshots", dataset=FIGURES.dataset, model=FIGURES.model),
        code=code("snapshots"),
    output:
        directory("results/figures/snapshots"),
    log:
        "logs/figures/snapshots.log",
    threads: PARAMS.runtime.stage_threads(1)
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn snapshots --data {input.data} --out {output} 2> {log}"


rule figure_data:
    input:
        data=f"data/processed/{FIGURES.dataset}",
        snapshots="results/figures/snapshots",
        stamps=stamps("figure_data", dataset=FIGURES.dataset, model=FIGURES.model),
        code=code("figure_data"),
    output:
        directory("reports/figures/data"),
    log:
        "logs/figures/figure_data.log",
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn figure-data --data {input.data} --snapshots {input.snapshots}"
        " --out {output} 2> {log}"


rule report_fig4:
    input:
        table2="reports/table2.csv",
        curves="reports/curves",
        stamps=stamps("report_fig4"),
        notebook="workflow/notebooks/fig4.ipynb",
        code=code("report_fig4"),
    output:
        notebook="reports/fig4.ipynb",
        html="reports/fig4.html",
        figures=multiext("reports/figures/fig4", ".png", ".svg", ".csv"),
    params:
        style=plot_args("fig4"),
        models=(
            f"--param with_model={FIGURES.with_positional}"
            f" --param without_model={FIGURES.without_positional}"
        ),
    log:
        "logs/report/fig4.log",
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn report --notebook {input.notebook} --param curves_root={input.curves}"
        " --param table2_path={input.table2} {params.models} --param out_dir=reports/figures"
        " {params.style} --out {output.notebook} --html {output.html} 2> {log}"


rule report_fig5:
    input:
        data="reports/figures/data",
        stamps=stamps("report_fig5"),
        notebook="workflow/notebooks/fig5.ipynb",
        code=code("report_fig5"),
    output:
        notebook="reports/fig5.ipynb",
        html="reports/fig5.html",
        figures=multiext("reports/figures/fig5", "a.png", "a.svg", "b.png", "b.svg"),
    params:
        style=plot_args("fig5"),
    log:
        "logs/report/fig5.log",
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn report --notebook {input.notebook} --param data_dir={input.data}"
        " --param out_dir=reports/figures {params.style}"
        " --out {output.notebook} --html {output.html} 2> {log}"


rule report_fig6:
    input:
        data="reports/figures/data",
        stamps=stamps("report_fig6"),
        notebook="workflow/notebooks/fig6.ipynb",
        code=code("report_fig6"),
    output:
        notebook="reports/fig6.ipynb",
        html="reports/fig6.html",
        figures=multiext("reports/figures/fig6", ".png", ".svg"),
    params:
        style=plot_args("fig6"),
    log:
        "logs/report/fig6.log",
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn report --notebook {input.notebook} --param data_dir={input.data}"
        " --param out_dir=reports/figures {params.style}"
        " --out {output.notebook} --html {output.html} 2> {log}"


rule index:
    input:
        params="params.yaml",
        processed=expand("data/processed/{dataset}", dataset=DATASETS),
        tables=["reports/table2.csv", "reports/table3.csv", "reports/effects.csv"],
        reports=["reports/tables.html", "reports/fig4.html", "reports/fig5.html", "reports/fig6.html"],
        code=code("index"),
    output:
        "reports/index.html",
    log:
        "logs/report/index.log",
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn index --reports reports --processed data/processed 2> {log}"
