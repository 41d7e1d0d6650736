"""Part 3: how long one training epoch of DIN and SARN (both forms) takes at Amazon Electronics' size.

    python -m benchmarks.training.electronics_epoch [--models din sarn sarn_materialised]
                                                    [--compile default reduce-overhead]
                                                    [--device cpu|cuda] [--precision fp32|tf32|bf16]

Generated data of Electronics' size and lengths (192,403 users, 8.78 clicks a user,
histories up to 30), batched as the pipeline batches. Each row prints its warm-up (one step
on a batch of each shape), where a compiled model compiles, apart from the epoch.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.training.rows import (
    MODELS_OPTION,
    Part,
    Setting,
    build_row_model,
    option,
    peak_mb,
    pipeline_trainer,
    run_alone,
    run_name,
    run_row,
    time_training,
)
from benchmarks.training.samples import ELECTRONICS, electronics_arrays
from sarn.params import CompileMode, Params, Precision
from sarn.train.batching import DeviceSamples
from sarn.train.loop import compile_mode_on, compile_model

EPOCH_MODELS = ("din", "sarn", "sarn_materialised")  # the rows of --models this part runs


def epoch_row(params: Params, name: str, device: torch.device, precision: Precision,
              compile_mode: CompileMode = "eager") -> dict:
    """One training epoch on Electronics-sized data, batched as the pipeline batches,
    the model compiled as ``runtime.compile: compile_mode`` would compile it."""
    arrays, meta = electronics_arrays(ELECTRONICS["n_users"], 30)
    samples = DeviceSamples(arrays, device)
    spec = params.models[run_name(name)].training
    batches = samples.training_batches(spec.batch_size, spec.length_sort_chunk,
                                       torch.Generator().manual_seed(0), spec.batch_order)
    torch.manual_seed(0)
    net = build_row_model(params, name, meta["n_items"], meta["n_categories"], device)
    torch._dynamo.reset()  # rows share a process on CUDA: each compiles from scratch
    mode = compile_model(net, compile_mode, device)
    warm_up, seconds = time_training(pipeline_trainer(params, name, net, samples, precision), batches, device)
    return {"model": name + ("" if mode == "eager" else f" (compile: {mode})"), "train_samples": samples.size,
            "seconds": seconds, "warm_up": warm_up, "steps": len(batches),
            "samples_per_s": samples.size / seconds, "mean_history": float(arrays["length"].mean()),
            "peak_mb": peak_mb(device)}


def electronics_epoch(setting: Setting, args: argparse.Namespace) -> None:
    """An epoch of each of ``EPOCH_MODELS`` in ``--models``, eager, then under each ``--compile`` mode."""
    print(f"\n## 3. One training epoch on generated data of Amazon Electronics' size "
          f"({ELECTRONICS['n_users']:,} users, 8.78 clicks a user, histories up to 30)")
    # each mode once: reduce-overhead is default on the CPU
    modes = dict.fromkeys(["eager", *(compile_mode_on(setting.device, mode) for mode in args.compile)])
    for mode in modes:
        for model in (m for m in EPOCH_MODELS if m in args.models):
            r = run_row(setting, epoch_row, name=model, compile_mode=mode)
            if r is not None:
                print(f"  {r['model']:34s} {r['seconds']:8.1f} s  {r['samples_per_s']:8.0f} samples/s  "
                      f"{1000 * r['seconds'] / r['steps']:6.2f} ms a step, {r['train_samples']:,} samples, "
                      f"mean history {r['mean_history']:.1f}, {r['peak_mb']:.0f} MB peak, "
                      f"warm-up (one step a batch shape; compiling) {r['warm_up']:.1f} s", flush=True)


COMPILE_OPTION = option("--compile", nargs="+", default=[], choices=["default", "reduce-overhead"],
                        help="part 3 also times DIN and SARN with runtime.compile set to each of these")
PART = Part(3, (MODELS_OPTION, COMPILE_OPTION), electronics_epoch)


def main(argv: list[str] | None = None) -> None:
    run_alone(PART, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
