"""Part 1: every model's training throughput and peak memory on full-length histories, beside references.

Each model at each batch size and history length, every history full length (the worst
case: each batch padded to L).

    python -m benchmarks.training.full_length [--batches 128 1024] [--lengths 30 50] [--steps 3]
                                              [--models ...] [--device cpu|cuda] [--precision fp32|tf32|bf16]

``sarn_straightforward`` is the reference graph and ``sarn_materialised`` the project's SARN
with its pairs held whole (benchmarks/straightforward_sarn.py); ``deepctr_din`` is
DeepCTR-Torch 0.3.0's DIN (benchmarks/training/deepctr.py) on the same fields, sizes and
optimizer as the project's DIN, trained with its own loss. Every ratio compares rows of
the same invocation.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.training.deepctr import DEEPCTR, deepctr_din, deepctr_trainer, install_deepctr
from benchmarks.training.rows import (
    MODELS_OPTION,
    Part,
    Setting,
    build_row_model,
    option,
    peak_mb,
    pipeline_trainer,
    run_alone,
    run_row,
    time_training,
)
from benchmarks.training.samples import random_samples
from sarn.params import Params, Precision
from sarn.train.loop import make_optimizer


def grid_row(params: Params, name: str, batch: int, length: int, steps: int, device: torch.device,
             precision: Precision) -> dict:
    """Throughput and peak memory of one (model, batch, length), full-length histories."""
    torch.manual_seed(0)
    n_items, n_categories = 50_000, 800
    samples = random_samples(batch * steps, length, n_items, n_categories, device)
    if name == "deepctr_din":
        net, inputs = deepctr_din(n_items, n_categories, length, params.models["din"].architecture, device)
        optimizer = make_optimizer(net, params.models["din"].training)
        train = deepctr_trainer(net, inputs, optimizer, samples)
    else:
        net = build_row_model(params, name, n_items, n_categories, device)
        train = pipeline_trainer(params, name, net, samples, precision)
    batches = samples.training_batches(batch, 1, torch.Generator().manual_seed(0))
    _, seconds = time_training(train, batches, device)
    return {"model": name, "batch": batch, "length": length, "samples_per_s": batch * steps / seconds,
            "peak_mb": peak_mb(device)}


def _ratios(rows: list[dict], ours: str, theirs: str, title: str) -> None:
    print(f"\n{title} (same run):")
    index = {(r["model"], r["batch"], r["length"]): r for r in rows}
    for (model, batch, length), a in index.items():
        b = index.get((theirs, batch, length))
        if model == ours and b:
            print(f"  B={batch:5d} L={length:3d}: {a['samples_per_s'] / b['samples_per_s']:.2f}x "
                  f"throughput, {a['peak_mb']:.0f} MB vs {b['peak_mb']:.0f} MB peak")


def full_length(setting: Setting, args: argparse.Namespace) -> None:
    """Every row of ``--models`` at each batch and length, then SARN and DIN against their references."""
    models = list(args.models)
    if "deepctr_din" in models and not install_deepctr():
        models.remove("deepctr_din")
    print(f"\n## 1. Full-length histories, {args.steps} timed steps a row")
    rows = []
    for batch in args.batches:
        for length in args.lengths:
            for model in models:
                r = run_row(setting, grid_row, name=model, batch=batch, length=length, steps=args.steps)
                if r is not None:
                    rows.append(r)
                    print(f"  {model:22s} B={batch:5d} L={length:3d} {r['samples_per_s']:10.0f} samples/s "
                          f"{r['peak_mb']:8.0f} MB peak", flush=True)
    _ratios(rows, "sarn", "sarn_straightforward", "SARN against the straightforward graph")
    _ratios(rows, "din", "deepctr_din", f"The project's DIN against {DEEPCTR}'s DIN")


PART = Part(1, (option("--steps", type=int, default=3, help="timed steps a row in part 1"),
                option("--batches", type=int, nargs="+", default=[128, 1024]),
                option("--lengths", type=int, nargs="+", default=[30, 50]),
                MODELS_OPTION), full_length)


def main(argv: list[str] | None = None) -> None:
    run_alone(PART, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
