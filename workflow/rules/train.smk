rule train:
    input:
        data="data/processed/{dataset}",
        stamps=lambda w: stamps("train", model=w.model),
        code=code("models", "nn", "train"),
    output:
        directory("results/{dataset}/{model}"),
    log:
        "logs/train/{dataset}/{model}.log",
    # The job reads its thread count from params.yaml (runtime.threads), not from
    # Snakemake, so that a capped --cores never changes the numbers it produces.
    threads: PARAMS.runtime.threads
    resources:
        gpu=1 if PARAMS.runtime.device == "cuda" else 0,
    conda:
        "../envs/sarn.yaml"
    shell:
        "python -m sarn train --dataset {wildcards.dataset} --model {wildcards.model}"
        " --data {input.data} --out {output} 2> {log}"
