# The jobs read their thread count from params.yaml (runtime.threads), not from
# Snakemake, so that a capped --cores never changes the numbers they produce. A job asks for
# the cores its seeds use at once (runtime.parallel_seeds x runtime.threads); where --cores
# gives it fewer, it says so in its log and run.json.


rule train:
    input:
        data="data/processed/{dataset}",
        stamps=lambda w: stamps("train", dataset=w.dataset, model=w.model),
        code=code("train"),
    output:
        directory("results/table2/{dataset}/{model}"),
    log:
        "logs/train/{dataset}/{model}.log",
    threads: PARAMS.runtime.stage_threads(PARAMS.experiment.n_seeds)
    resources:
        gpu=1 if PARAMS.runtime.device == "cuda" else 0,
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn train --dataset {wildcards.dataset} --model {wildcards.model}"
        " --data {input.data} --out {output} 2> {log}"


rule sweep:
    input:
        data="data/processed/{dataset}",
        stamps=lambda w: stamps("sweep", dataset=w.dataset, model=w.model),
        code=code("sweep"),
    output:
        directory("results/table3/{dataset}/{model}/len{length}"),
    log:
        "logs/sweep/{dataset}/{model}/len{length}.log",
    wildcard_constraints:
        length=r"\d+",
    threads: PARAMS.runtime.stage_threads(PARAMS.table3.n_seeds)
    resources:
        gpu=1 if PARAMS.runtime.device == "cuda" else 0,
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn sweep --dataset {wildcards.dataset} --model {wildcards.model}"
        " --max-len {wildcards.length} --data {input.data} --out {output} 2> {log}"


rule effects:
    input:
        data="data/processed/{dataset}",
        stamps=lambda w: stamps("effects", dataset=w.dataset, model=w.model),
        code=code("effects"),
    output:
        directory("results/effects/{dataset}/{model}"),
    log:
        "logs/effects/{dataset}/{model}.log",
    threads: effects_threads
    resources:
        gpu=1 if PARAMS.runtime.device == "cuda" else 0,
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn effects --dataset {wildcards.dataset} --model {wildcards.model}"
        " --data {input.data} --out {output} 2> {log}"
