"""Training throughput and peak memory of every model, and SARN against a straightforward graph.

    python benchmarks/train_speed.py [--steps 3] [--batches 128 1024] [--lengths 30 50]

Each (model, batch size, history length) runs in its own process so that its peak
resident memory (``ru_maxrss``) is its own. Histories are full length (the worst case:
every batch padded to L). ``sarn_straightforward`` is SARN with the attention MLP's
first layer and the distance regressor applied to every pair g_ij (the reference
graph); ``sarn`` applies them per item and combines per pair (exact by linearity). The
ratios compare the two in the same run. Every child runs under the allocator settings
that ``python -m sarn`` applies to the stages. Figures are CPU figures of this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def straightforward_sarn(n_items: int, n_categories: int, architecture: dict):
    """SARN whose per-pair layers run on every materialised pair (no factorisation)."""
    import torch

    from sarn.models.sarn import SARN
    from sarn.nn import relation_combine

    class StraightforwardSARN(SARN):
        def pair_vectors(self, history: torch.Tensor):
            rel = self.relation(history)
            return relation_combine(rel, history), None, rel  # pooling applies W₁ per pair

        def _position_loss(self, history, rel, mask):
            length = history.shape[1]
            pairs = relation_combine(rel, history)
            pred = self.regressor_out(torch.relu(self.regressor_in(pairs))).squeeze(-1)
            pos = torch.arange(length, dtype=history.dtype)
            gap = pos.unsqueeze(0) - pos.unsqueeze(1)
            target = torch.sign(gap) * torch.sqrt(gap.abs() / length)
            return (mask.unsqueeze(2) * (pred - target) ** 2).mean()

    return StraightforwardSARN(n_items, n_categories, **architecture)


def measure(model_name: str, batch: int, length: int, steps: int) -> dict:
    """Training samples per second and peak memory of one configuration (child process)."""
    import torch

    from sarn.models import Batch, build_model
    from sarn.params import load
    from sarn.train.loop import click_loss

    params = load(ROOT / "params.yaml")
    torch.set_num_threads(params.runtime.threads)
    torch.manual_seed(0)
    n_items, n_cats = 50_000, 800
    run = "sarn" if model_name == "sarn_straightforward" else model_name
    spec = params.models[run]
    if model_name == "sarn_straightforward":
        net = straightforward_sarn(n_items, n_cats, spec.architecture)
    else:
        net = build_model(spec.model, n_items, n_cats, spec.architecture)
    opt = (torch.optim.Adam if spec.training.optimizer == "adam" else torch.optim.SGD)(
        net.parameters(), lr=spec.training.lr)
    g = torch.Generator().manual_seed(1)

    def ids(n, *shape):
        return torch.randint(1, n, shape, generator=g)

    data = Batch(item=ids(n_items, batch), category=ids(n_cats, batch),
                 timestamp=torch.full((batch,), 1_400_000_000),
                 hist_item=ids(n_items, batch, length), hist_category=ids(n_cats, batch, length),
                 hist_timestamp=1_400_000_000 - ids(10**7, batch, length),
                 neg_item=ids(n_items, batch, length), neg_category=ids(n_cats, batch, length),
                 mask=torch.ones(batch, length), label=torch.randint(0, 2, (batch,), generator=g).float())
    net.train()

    def step():
        out = net(data)
        loss = spec.training.click_loss_weight * click_loss(out.logit, data.label) + out.aux_loss
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"model": model_name, "batch": batch, "length": length,
            "samples_per_s": batch * steps / seconds, "peak_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--lengths", type=int, nargs="+", default=[30, 50])
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--one", nargs=3, metavar=("MODEL", "BATCH", "LENGTH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        model, batch, length = args.one
        print(json.dumps(measure(model, int(batch), int(length), args.steps)))
        return

    from sarn import ALLOCATOR_ENV
    from sarn.models import MODELS

    models = args.models or [*MODELS, "sarn_straightforward"]
    rows = []
    for batch in args.batches:
        for length in args.lengths:
            for model in models:
                proc = subprocess.run(
                    [sys.executable, __file__, "--steps", str(args.steps), "--one", model, str(batch), str(length)],
                    capture_output=True, text=True, cwd=ROOT, env={**ALLOCATOR_ENV, **os.environ},
                )
                if proc.returncode != 0:
                    print(f"{model} B={batch} L={length} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                    continue
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                r = rows[-1]
                print(f"{r['model']:22s} B={batch:5d} L={length:3d} {r['samples_per_s']:10.0f} samples/s "
                      f"{r['peak_mb']:8.0f} MB peak", flush=True)
    print("\nSARN against the straightforward graph (same run):")
    for batch in args.batches:
        for length in args.lengths:
            ours = [r for r in rows if (r["model"], r["batch"], r["length"]) == ("sarn", batch, length)]
            ref = [r for r in rows if (r["model"], r["batch"], r["length"]) == ("sarn_straightforward", batch, length)]
            if ours and ref:
                print(f"  B={batch:5d} L={length:3d}: {ours[0]['samples_per_s'] / ref[0]['samples_per_s']:.2f}x "
                      f"throughput, {ours[0]['peak_mb']:.0f} MB vs {ref[0]['peak_mb']:.0f} MB peak")


if __name__ == "__main__":
    main()
