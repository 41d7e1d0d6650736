"""Part 4: how long the embedded default's Table II takes end to end through the stages' own code.

    python -m benchmarks.training.embedded_default [--parallel-seeds 1 2]

Raw, preprocess, then every model of ``experiment.models`` with ``experiment.n_seeds``
seeds, in build/bench-default, on the device and at the precision params.yaml's ``runtime``
gives (the pipeline's own runs), once for each ``--parallel-seeds`` (``runtime.parallel_seeds``:
seeds trained at once, ``runtime.threads`` threads each), side by side: a model's stages run
one after another, in turns that alternate which goes first. The stages of every setting must
write the same runs.csv, which is checked.
"""

from __future__ import annotations

import argparse
import shutil
import time

from benchmarks.training.rows import ROOT, Part, option, run_alone
from sarn.params import Params


def embedded_default(params: Params, parallel_seeds: list[int]) -> None:
    """The embedded default's Table II as the pipeline computes it, each model's time at each setting."""
    from sarn.data.preprocess import preprocess
    from sarn.data.sources import make_raw
    from sarn.train.runner import train_model

    work = ROOT / "build" / "bench-default"
    shutil.rmtree(work, ignore_errors=True)
    dataset, seeds = "default", params.experiment.n_seeds
    print(f"\n## 4. The embedded default end to end: {len(params.experiment.models)} models x {seeds} seeds, "
          f"runtime.threads {params.runtime.threads}, seeds at once: {', '.join(map(str, parallel_seeds))}")
    start = time.perf_counter()
    make_raw(dataset, params.datasets[dataset], work / "raw")
    preprocess(dataset, params.datasets[dataset], work / "raw", work / "processed")
    print(f"  raw + preprocess {time.perf_counter() - start:8.1f} s", flush=True)
    totals = dict.fromkeys(parallel_seeds, 0.0)
    for turn, model in enumerate(params.experiment.models):
        seconds: dict[int, float] = {}
        for at_once in parallel_seeds if turn % 2 == 0 else parallel_seeds[::-1]:
            runtime = params.runtime.model_copy(update={"parallel_seeds": at_once})
            begin = time.perf_counter()
            train_model(params.model_copy(update={"runtime": runtime}), dataset, model, work / "processed",
                        work / f"results{at_once}" / model, seeds)
            seconds[at_once] = time.perf_counter() - begin
            totals[at_once] += seconds[at_once]
        runs = {(work / f"results{at_once}" / model / "runs.csv").read_bytes() for at_once in parallel_seeds}
        differs = "" if len(runs) == 1 else "  runs.csv DIFFERS"
        print(f"  {model:16s}{_cells(seconds, parallel_seeds)}{differs}", flush=True)
    print(f"  total training  {_cells(totals, parallel_seeds)}")


def _cells(seconds: dict[int, float], parallel_seeds: list[int]) -> str:
    """Each setting's seconds, and how many times faster than the first setting it is."""
    first = seconds[parallel_seeds[0]]
    return "".join(f" {n} at once {seconds[n]:7.1f} s ({first / seconds[n]:4.2f}x)" for n in parallel_seeds)


def _refusal(args: argparse.Namespace) -> str | None:
    if min(args.parallel_seeds) < 1:
        return f"--parallel-seeds must be 1 or more, got {' '.join(map(str, args.parallel_seeds))}"
    return None


PART = Part(4, (option("--parallel-seeds", type=int, nargs="+", default=[1, 2], metavar="N",
                       help="part 4's runtime.parallel_seeds, side by side (the first is the base)"),),
            lambda setting, args: embedded_default(setting.params, args.parallel_seeds), refusal=_refusal)


def main(argv: list[str] | None = None) -> None:
    run_alone(PART, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
