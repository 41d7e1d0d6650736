"""What ``runtime.precision`` (fp32, tf32, bf16) does to test AUC and training time on CUDA.

    python -m benchmarks.precision_auc [--dataset default] [--models din sarn] [--seeds 3]

Builds the dataset's samples with the raw and preprocess stages' code (into
build/bench-precision), then trains each model once per precision through the train
stage's own code (``sarn.train.runner.train_model``) with the same seeds, and prints the
mean and standard deviation over seeds of the test AUC (at the epoch validation chose)
and the seconds each precision took. On a CPU every precision computes in fp32, so the
rows only differ on CUDA.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import pandas as pd

from sarn.data.preprocess import preprocess
from sarn.data.sources import make_raw
from sarn.params import load
from sarn.train.runner import train_model

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "bench-precision"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--models", nargs="+", default=["din", "sarn"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "tf32", "bf16"])
    args = parser.parse_args(argv)
    params = load(ROOT / "params.yaml")
    if args.dataset not in params.datasets:
        parser.error(f"unknown dataset {args.dataset!r}; params.yaml defines: {', '.join(sorted(params.datasets))}")
    unknown = [m for m in args.models if m not in params.models]
    if unknown:
        parser.error(f"unknown model run(s) {', '.join(unknown)}; params.yaml defines: {', '.join(params.models)}")
    spec = params.datasets[args.dataset]
    shutil.rmtree(WORK, ignore_errors=True)
    make_raw(args.dataset, spec, WORK / "raw")
    preprocess(args.dataset, spec, WORK / "raw", WORK / "processed")
    print(f"| model | precision | test AUC (mean ± std over {args.seeds} seeds) | seconds |")
    print("|---|---|---|---|")
    for model in args.models:
        for precision in args.precisions:
            run = params.model_copy(update={"runtime": params.runtime.model_copy(update={"precision": precision})})
            out = WORK / "results" / model / precision
            start = time.perf_counter()
            train_model(run, args.dataset, model, WORK / "processed", out, args.seeds)
            seconds = time.perf_counter() - start
            auc = pd.read_csv(out / "runs.csv")["test_auc"]
            print(f"| {model} | {precision} | {auc.mean():.4f} ± {auc.std(ddof=1):.4f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
