"""Part 7: what running Adam fused buys a training step, on the embedded default and at Amazon
Electronics' size.

    python -m benchmarks.training.optimizer [--optimizer-steps 150] [--turns 2] [--models gru dien din sarn]

Training steps of each model on part 6's two kinds of batches (the embedded default's, with
tables of about 2,000 items, and part 3's Electronics-sized ones, with tables of 63,001 items
whose dense Adam update every step is the biggest array work), with the pipeline's Adam
(:class:`sarn.train.optim.TensorFlowAdam`) in the form the CPU ran before (``fused=None``:
the multi-tensor form) and fused, as the pipeline runs it now
(:func:`sarn.train.loop.make_optimizer`). Both forms train the same model from the same
weights on the same batches (spread over an epoch) in one process, in ``--turns`` turns that
alternate which goes first; each keeps its fastest turn.
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from benchmarks.training.rows import (
    MODELS_OPTION,
    TURNS_OPTION,
    Part,
    Setting,
    build_row_model,
    option,
    run_alone,
    run_name,
    run_row,
)
from benchmarks.training.samples import DATA, cached_samples, load_cached
from sarn.params import Params, Precision
from sarn.train.batching import DeviceSamples
from sarn.train.loop import train_step
from sarn.train.optim import TensorFlowAdam

OPTIMIZER_MODELS = ("wide_deep", "gru", "din", "dien", "sarn")  # the rows of --models this part runs
FORMS = {"multi-tensor": None, "fused": True}
WARM_UP_STEPS = 3


def optimizer_row(params: Params, name: str, samples_file: str, steps: int, turns: int, device: torch.device,
                  precision: Precision) -> dict:
    """Milliseconds a step of run ``name`` with each form of Adam, the fastest of ``turns`` turns."""
    arrays, meta = load_cached(samples_file)
    samples = DeviceSamples(arrays, device)
    spec = params.models[run_name(name)].training
    epoch = samples.training_batches(spec.batch_size, spec.length_sort_chunk,
                                     torch.Generator().manual_seed(0), spec.batch_order)
    spread = epoch[::max(1, len(epoch) // (WARM_UP_STEPS + steps))]
    batches = list(itertools.islice(itertools.cycle(spread), WARM_UP_STEPS + steps))
    best: dict[str, float] = {}
    for turn in range(turns):
        for form in (list(FORMS) if turn % 2 == 0 else list(FORMS)[::-1]):
            torch.manual_seed(0)
            net = build_row_model(params, name, meta["n_items"], meta["n_categories"], device)
            optimizer = TensorFlowAdam(net.parameters(), lr=spec.lr, fused=FORMS[form])
            net.train()
            for part in batches[:WARM_UP_STEPS]:
                train_step(net, optimizer, samples.batch(part), spec, precision)
            start = time.perf_counter()
            for part in batches[WARM_UP_STEPS:]:
                train_step(net, optimizer, samples.batch(part), spec, precision)
            ms = 1000 * (time.perf_counter() - start) / steps
            best[form] = min(best.get(form, ms), ms)
    return {"model": name, **best}


def optimizer_forms(setting: Setting, args: argparse.Namespace) -> None:
    """Each model of ``--models`` among ``OPTIMIZER_MODELS`` on each kind of batches, both forms of Adam."""
    print(f"\n## 7. Adam multi-tensor and fused ({args.optimizer_steps} steps spread over an epoch, fastest "
          f"of {args.turns} turns)")
    for data in DATA:
        samples_file = str(cached_samples(setting.params, data))
        for model in (m for m in OPTIMIZER_MODELS if m in args.models):
            r = run_row(setting, optimizer_row, name=model, samples_file=samples_file,
                        steps=args.optimizer_steps, turns=args.turns)
            if r is not None:
                print(f"  {data:17s} {model:10s} multi-tensor {r['multi-tensor']:6.2f} ms a step, fused "
                      f"{r['fused']:6.2f} ms a step: {r['multi-tensor'] / r['fused']:4.2f}x", flush=True)


def _refusal(args: argparse.Namespace) -> str | None:
    if args.optimizer_steps < 1 or args.turns < 1:
        return f"--optimizer-steps and --turns must be 1 or more, got {args.optimizer_steps} and {args.turns}"
    return None


OPTIONS = (option("--optimizer-steps", type=int, default=150, help="part 7's timed steps a form and turn"),
           TURNS_OPTION,
           MODELS_OPTION)
PART = Part(7, OPTIONS, optimizer_forms, _refusal)


def main(argv: list[str] | None = None) -> None:
    run_alone(PART, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
