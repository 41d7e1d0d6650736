"""How far the statistics batch norm and Dice evaluate with are from a whole epoch's.

    python -m benchmarks.evaluation_statistics [--dataset default] [--models gru din sarn ...]

For each trained Table II run of the pipeline (``results/table2/<dataset>/<model>``: its
``run.json``, ``runs.csv`` and each seed's reported checkpoint), evaluates the test set twice:
with the statistics the checkpoint holds (measured before its evaluation on the run's sample
of one buffer of training batches, :mod:`sarn.nn.statistics`), and with statistics
re-estimated at the same weights over one whole training epoch (every batch alike, cut as
training cuts them). It prints the mean test AUC over seeds both ways, their mean difference
and the paired t-test's p. A small difference means the sample's statistics are those of the
training distribution, not of a biased share of its batches.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from sarn.data.processed import SPLITS, load_meta, load_split
from sarn.nn import EvaluationStatistics
from sarn.train.batching import DeviceSamples
from sarn.train.checkpoint import RUN_FILE, load_trained
from sarn.train.loop import calibrate, predict
from sarn.train.metrics import auc

ROOT = Path(__file__).resolve().parents[1]


def reestimate(net: torch.nn.Module, train: DeviceSamples, batch_size: int, sort_chunk: int, seed: int) -> None:
    """Replace ``net``'s evaluation statistics by their average over one whole training epoch."""
    calibrate(net, train, train.training_batches(batch_size, sort_chunk, torch.Generator().manual_seed(seed)))


def compare(folder: Path, data_dir: Path, eval_batch_size: int) -> dict[str, float] | None:
    """Mean test AUC over the run's seeds with stored and with re-estimated statistics."""
    run = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    training, max_len = run["training"], run["max_len"]
    data = {split: DeviceSamples(load_split(data_dir, split), torch.device("cpu"), max_len) for split in SPLITS}
    meta = load_meta(data_dir)
    stored, again = [], []
    for seed in pd.read_csv(folder / "runs.csv")["seed"]:
        net = load_trained(folder, f"checkpoints/seed{seed}.pt", meta)
        if not any(isinstance(m, EvaluationStatistics) for m in net.modules()):
            return None
        test = data["test"]
        stored.append(auc(test.label, predict(net, test, eval_batch_size)))
        reestimate(net, data["train"], training["batch_size"], training["length_sort_chunk"], seed)
        again.append(auc(test.label, predict(net, test, eval_batch_size)))
    diff = np.array(again) - np.array(stored)
    return {"seeds": len(stored), "stored": float(np.mean(stored)), "whole_epoch": float(np.mean(again)),
            "difference": float(diff.mean()), "p": float(stats.ttest_rel(again, stored).pvalue)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--models", nargs="+", help="run folders of results/table2/<dataset> (default: all)")
    parser.add_argument("--eval-batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    root = ROOT / "results" / "table2" / args.dataset
    if not root.is_dir():
        parser.error(f"{root}: not found (run the pipeline's Table II stages first)")
    names = args.models or sorted(p.name for p in root.iterdir() if (p / RUN_FILE).is_file())
    print("| model | seeds | stored statistics | whole-epoch statistics | difference | p |\n|---|---|---|---|---|---|")
    for name in names:
        row = compare(root / name, ROOT / "data" / "processed" / args.dataset, args.eval_batch_size)
        if row is None:
            print(f"| {name} | | no batch norm or Dice statistics kept | | | |")
            continue
        print(f"| {name} | {row['seeds']} | {row['stored']:.4f} | {row['whole_epoch']:.4f} | "
              f"{row['difference']:+.4f} | {row['p']:.2g} |", flush=True)


if __name__ == "__main__":
    main()
