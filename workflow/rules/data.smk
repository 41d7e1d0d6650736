rule raw:
    input:
        stamps=lambda w: stamps("raw", dataset=w.dataset),
        source=lambda w: source_files(w.dataset),
        code=code("raw"),
    output:
        directory("data/raw/{dataset}"),
    log:
        "logs/raw/{dataset}.log",
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn raw --dataset {wildcards.dataset} --out {output} 2> {log}"


rule preprocess:
    input:
        raw="data/raw/{dataset}",
        stamps=lambda w: stamps("preprocess", dataset=w.dataset),
        code=code("preprocess"),
    output:
        directory("data/processed/{dataset}"),
    log:
        "logs/preprocess/{dataset}.log",
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn preprocess --dataset {wildcards.dataset} --raw {input.raw} --out {output} 2> {log}"
