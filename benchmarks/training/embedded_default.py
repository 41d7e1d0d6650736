"""Part 4: how long the embedded default's Table II takes end to end through the stages' own code.

    python -m benchmarks.training.embedded_default

Raw, preprocess, then every model of ``experiment.models`` with ``experiment.n_seeds``
seeds, one job after another, in build/bench-default, on the device and at the precision
params.yaml's ``runtime`` gives (the pipeline's own runs).
"""

from __future__ import annotations

import shutil
import time

from benchmarks.training.rows import ROOT, Part, run_alone
from sarn.params import Params


def embedded_default(params: Params) -> None:
    """The embedded default's Table II as the pipeline computes it, each stage's time printed."""
    from sarn.data.preprocess import preprocess
    from sarn.data.sources import make_raw
    from sarn.train.runner import train_model

    work = ROOT / "build" / "bench-default"
    shutil.rmtree(work, ignore_errors=True)
    dataset, seeds = "default", params.experiment.n_seeds
    print(f"\n## 4. The embedded default end to end: {len(params.experiment.models)} models x {seeds} seeds")
    start = time.perf_counter()
    make_raw(dataset, params.datasets[dataset], work / "raw")
    preprocess(dataset, params.datasets[dataset], work / "raw", work / "processed")
    print(f"  raw + preprocess {time.perf_counter() - start:8.1f} s", flush=True)
    for model in params.experiment.models:
        begin = time.perf_counter()
        train_model(params, dataset, model, work / "processed", work / "results" / model, seeds)
        print(f"  {model:16s} {time.perf_counter() - begin:8.1f} s", flush=True)
    print(f"  total            {time.perf_counter() - start:8.1f} s")


PART = Part(4, (), lambda setting, args: embedded_default(setting.params))


def main(argv: list[str] | None = None) -> None:
    run_alone(PART, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
