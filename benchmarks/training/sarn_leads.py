"""Part 2: what each of SARN's leads over the straightforward graph buys at Amazon Electronics' lengths.

    python -m benchmarks.training.sarn_leads [--lead-steps 80]
                                             [--device cpu|cuda] [--precision fp32|tf32|bf16]

SARN at batch 128 on histories with Electronics' lengths (up to 30), the straightforward
graph first, then the known leads added one at a time, ending with the project's SARN as the
pipeline trains it. All rows train on the same batches' samples.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.training.rows import (
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
from benchmarks.training.samples import LENGTHS_USERS, electronics_arrays
from sarn.params import Params, Precision
from sarn.train.batching import DeviceSamples

# SARN with the leads added one at a time: (row, model, batches grouped by length?, allocator settings?)
LEADS = [
    ("straightforward graph, shuffled batches", "sarn_straightforward", False, False),
    ("+ allocator settings", "sarn_straightforward", False, True),
    ("+ project SARN (per-item layers, no stored pairs)", "sarn", False, True),
    ("+ length-grouped batches (as trained)", "sarn", True, True),
]


def lead_row(params: Params, row: int, steps: int, device: torch.device, precision: Precision,
             n_users: int = LENGTHS_USERS) -> dict:
    """One row of ``LEADS``, trained on the same ``128 * steps`` samples as every row."""
    label, name, grouped, _ = LEADS[row]
    arrays, meta = electronics_arrays(n_users, 30)
    pick = np.sort(np.random.default_rng(0).permutation(arrays["label"].size)[: 128 * steps])
    samples = DeviceSamples({key: value[pick] for key, value in arrays.items()}, device)
    chunk = params.models["sarn"].training.length_sort_chunk if grouped else 1
    batches = samples.training_batches(128, chunk, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    net = build_row_model(params, name, meta["n_items"], meta["n_categories"], device)
    _, seconds = time_training(pipeline_trainer(params, name, net, samples, precision), batches, device)
    return {"row": label, "samples_per_s": samples.size / seconds, "peak_mb": peak_mb(device),
            "mean_width": float(np.mean([part.width for part in batches])),
            "mean_history": float(arrays["length"][pick].mean())}


def sarn_leads(setting: Setting, args: argparse.Namespace) -> None:
    """Every row of ``LEADS`` (on CUDA, the allocator's left out), each against the first."""
    print(f"\n## 2. SARN, batch 128, Electronics-like lengths (histories up to 30), "
          f"{args.lead_steps} batches a row")
    base = None
    for k, (label, _, _, allocator) in enumerate(LEADS):
        if setting.device.type == "cuda" and k == 1:
            continue  # the allocator settings concern the host's malloc only
        r = run_row(setting, lead_row, allocator=allocator, row=k, steps=args.lead_steps)
        if r is None:
            continue
        base = base or r
        print(f"  {label:50s} {r['samples_per_s']:8.0f} samples/s {r['peak_mb']:7.0f} MB peak  "
              f"mean width {r['mean_width']:4.1f} (mean history {r['mean_history']:.1f})  "
              f"{r['samples_per_s'] / base['samples_per_s']:5.2f}x the first row", flush=True)


PART = Part(2, (option("--lead-steps", type=int, default=80, help="batches of 128 a row in part 2"),),
            sarn_leads)


def main(argv: list[str] | None = None) -> None:
    run_alone(PART, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
