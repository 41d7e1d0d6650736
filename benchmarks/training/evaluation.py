"""Part 8: what the evaluation batch size (``runtime.eval_batch_size``) buys an evaluation, at
Amazon Electronics' size.

    python -m benchmarks.training.evaluation [--eval-samples 8192] [--eval-batch-sizes 128 256 1024 4096]
                                             [--turns 2] [--models wide_deep gru din dien sarn]

On the paper's datasets evaluating costs about as much as training (``python -m sarn plan``): the
reference code's interval means the validation and test sets are evaluated every 100 steps.
Each row predicts ``--eval-samples`` of part 3's Electronics-sized samples through the pipeline's
own :func:`sarn.train.loop.predict` at each batch size, in ``--turns`` turns that alternate the
order of the sizes, and keeps each size's fastest turn. Every size predicts the same samples with
the same weights; the largest difference between two sizes' logits is printed too (a prediction
does not depend on its batch here, so it is rounding only). Each row runs in its own process,
so its peak memory is that of its largest batch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.training.rows import (
    MODELS_OPTION,
    TURNS_OPTION,
    Part,
    Setting,
    build_row_model,
    option,
    peak_mb,
    run_alone,
    run_row,
    synchronize,
)
from benchmarks.training.samples import cached_samples, load_cached
from sarn.params import Params, Precision
from sarn.train.batching import DeviceSamples
from sarn.train.loop import predict

EVALUATION_MODELS = ("wide_deep", "pnn", "gru", "atrank", "din", "dien", "rn", "sarn")  # rows of --models


def evaluation_row(params: Params, name: str, samples_file: str, size: int, batch_sizes: list[int],
                   turns: int, device: torch.device, precision: Precision) -> dict:
    """Samples a second that ``predict`` evaluates at each of ``batch_sizes``, the fastest of ``turns``."""
    arrays, meta = load_cached(samples_file)
    samples = DeviceSamples({key: value[:size] for key, value in arrays.items()}, device)
    torch.manual_seed(0)
    net = build_row_model(params, name, meta["n_items"], meta["n_categories"], device)
    best: dict[int, float] = {}
    logits: dict[int, np.ndarray] = {}
    predict(net, samples, min(batch_sizes), precision)  # warm-up
    for turn in range(turns):
        for batch_size in (batch_sizes if turn % 2 == 0 else batch_sizes[::-1]):
            start = time.perf_counter()
            logits[batch_size] = predict(net, samples, batch_size, precision)
            synchronize(device)
            rate = samples.size / (time.perf_counter() - start)
            best[batch_size] = max(best.get(batch_size, rate), rate)
    first = logits[batch_sizes[0]]
    spread = max(float(np.abs(out - first).max()) for out in logits.values())
    return {"model": name, "rates": {str(k): v for k, v in best.items()}, "spread": spread,
            "peak_mb": peak_mb(device)}


def evaluation_sizes(setting: Setting, args: argparse.Namespace) -> None:
    """Each model of ``--models`` among ``EVALUATION_MODELS`` at each evaluation batch size."""
    sizes = args.eval_batch_sizes
    print(f"\n## 8. Evaluation batch size ({args.eval_samples:,} Electronics-sized samples, samples a second, "
          f"fastest of {args.turns} turns; ratio against {sizes[0]})")
    samples_file = str(cached_samples(setting.params, "Electronics-sized"))
    for model in (m for m in EVALUATION_MODELS if m in args.models):
        r = run_row(setting, evaluation_row, name=model, samples_file=samples_file, size=args.eval_samples,
                    batch_sizes=sizes, turns=args.turns)
        if r is not None:
            base = r["rates"][str(sizes[0])]
            cells = ", ".join(f"{k} {v:8,.0f} ({v / base:4.2f}x)" for k, v in r["rates"].items())
            print(f"  {model:10s} {cells}; logits within {r['spread']:.1e}; peak {r['peak_mb']:,.0f} MB",
                  flush=True)


def _refusal(args: argparse.Namespace) -> str | None:
    if args.eval_samples < 1 or args.turns < 1 or min(args.eval_batch_sizes) < 1:
        return ("--eval-samples, --turns and every --eval-batch-sizes must be 1 or more, got "
                f"{args.eval_samples}, {args.turns} and {args.eval_batch_sizes}")
    return None


OPTIONS = (option("--eval-samples", type=int, default=8192, help="part 8's evaluated samples a row"),
           option("--eval-batch-sizes", type=int, nargs="+", default=[256, 1024, 4096],
                  help="part 8's evaluation batch sizes; the first is the ratios' baseline"),
           TURNS_OPTION,
           MODELS_OPTION)
PART = Part(8, OPTIONS, evaluation_sizes, _refusal)


def main(argv: list[str] | None = None) -> None:
    run_alone(PART, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
