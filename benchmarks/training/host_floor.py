"""Part 5: what an eager training step costs the host, the operators it dispatches and their time.

    python -m benchmarks.training.host_floor [--floor-steps 200] [--models ...]
                                             [--device cpu|cuda] [--precision fp32|tf32|bf16]

The operators a step dispatches (on a GPU most of them a kernel launch) and its time at a
size where the arithmetic is negligible. A GPU runs behind the host, which launches each
operator at a cost comparable to running it on tiny tensors, so this time a step times the
number of steps estimates the floor of an eager epoch there, which only fewer operators, a
faster host or CUDA graphs lower.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.training.rows import (
    MODELS_OPTION,
    Part,
    Setting,
    build_row_model,
    option,
    run_alone,
    run_name,
    synchronize,
)
from benchmarks.training.samples import ELECTRONICS_STEPS, random_samples
from sarn.params import Params, Precision
from sarn.train.loop import make_optimizer, train_step

# A batch this small, with tables this small, costs next to nothing to compute, so what a
# step takes is what the host spends dispatching it (with Electronics' 63,001 items, the
# dense gradient and Adam update of the item table alone cost a CPU more than that); the
# width is the mean padded width of an Electronics epoch as the pipeline batches it (8.7,
# part 2), since GRU and DIEN dispatch per position.
FLOOR_BATCH, FLOOR_WIDTH, FLOOR_ITEMS, FLOOR_CATEGORIES = 8, 9, 1_000, 100
FLOOR_TURNS = 5  # the models take this many turns each


class OperatorCount(TorchDispatchMode):
    """Counts the operators dispatched inside it, views (which launch nothing) left out."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.calls[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def floor_rows(params: Params, names: list[str], steps: int, device: torch.device, precision: Precision
               ) -> list[dict]:
    """The operators of one eager training step of each model and the host time of
    a step at ``FLOOR_BATCH`` × ``FLOOR_WIDTH``, Adam fused as the pipeline runs it, after a warm-up step.

    A step includes cutting its batch from the device-resident samples, as in
    :func:`sarn.train.loop.train_epoch`. The models take ``FLOOR_TURNS`` turns of
    ``steps / FLOOR_TURNS`` steps, and each keeps its fastest turn (as timeit keeps its best repeat): this
    machine's speed drifts by tens of percent over a minute, and turns expose every model to
    the same drift. The rows run in this process (on the CPU without the allocator settings
    of the other parts' child processes, which concern large tensors).
    """
    if steps < FLOOR_TURNS:
        raise ValueError(f"part 5 needs at least {FLOOR_TURNS} timed steps (one a turn), got {steps}")
    runs = []
    for name in names:
        torch.manual_seed(0)
        samples = random_samples(FLOOR_BATCH * (steps + 2), FLOOR_WIDTH, FLOOR_ITEMS, FLOOR_CATEGORIES,
                                 device)
        net = build_row_model(params, name, FLOOR_ITEMS, FLOOR_CATEGORIES, device).train()
        spec = params.models[run_name(name)].training
        optimizer = make_optimizer(net, spec)  # fused, as the pipeline's Adam
        parts = samples.training_batches(FLOOR_BATCH, 1, torch.Generator().manual_seed(0))
        train_step(net, optimizer, samples.batch(parts[0]), spec, precision)
        with OperatorCount() as count:
            train_step(net, optimizer, samples.batch(parts[1]), spec, precision)
        runs.append((net, optimizer, spec, samples, parts[2:], count))
    best = [float("inf")] * len(names)
    for k in range(FLOOR_TURNS):
        for i, (net, optimizer, spec, samples, parts, _) in enumerate(runs):
            block = parts[k::FLOOR_TURNS]
            synchronize(device)
            start = time.perf_counter()
            for part in block:
                train_step(net, optimizer, samples.batch(part), spec, precision)
            synchronize(device)
            best[i] = min(best[i], (time.perf_counter() - start) / len(block))
    return [{"model": name, "operators": sum(count.calls.values()), "ms_a_step": 1000 * seconds,
             "top": count.calls.most_common(5)}
            for name, (*_, count), seconds in zip(names, runs, best, strict=True)]


def host_floor(setting: Setting, args: argparse.Namespace) -> None:
    """Every model of ``--models`` (DeepCTR's has no pipeline step), each against DIN."""
    print(f"\n## 5. The host's cost of an eager training step: batch {FLOOR_BATCH}, width {FLOOR_WIDTH}, "
          f"{args.floor_steps} timed steps a row in five turns (the fastest counts), fused Adam")
    print(f"  floor: that time a step times the {ELECTRONICS_STEPS:,} steps of an Electronics epoch (part 3)")
    models = [m for m in args.models if m != "deepctr_din"]
    rows = floor_rows(setting.params, models, args.floor_steps, setting.device, setting.precision)
    din = next((r for r in rows if r["model"] == "din"), rows[0])
    for r in rows:
        top = ", ".join(f"{op.split('.')[-1]} {n}" for op, n in r["top"])
        print(f"  {r['model']:22s} {r['operators']:6d} operators  {r['ms_a_step']:6.2f} ms a step  "
              f"floor {ELECTRONICS_STEPS * r['ms_a_step'] / 1000:6.1f} s  "
              f"{r['ms_a_step'] / din['ms_a_step']:5.2f}x "
              f"{din['model']}'s  (most: {top})", flush=True)


def _too_few_steps(args: argparse.Namespace) -> str | None:
    if args.floor_steps < FLOOR_TURNS:
        return f"--floor-steps must be at least {FLOOR_TURNS} (one step a turn), got {args.floor_steps}"
    return None


PART = Part(5, (option("--floor-steps", type=int, default=200, help="timed steps a row in part 5"),
                MODELS_OPTION), host_floor, refusal=_too_few_steps)


def main(argv: list[str] | None = None) -> None:
    run_alone(PART, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
