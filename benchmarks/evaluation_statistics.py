"""How far the statistics batch norm and Dice evaluate with are from a whole epoch's.

    python -m benchmarks.evaluation_statistics [--dataset default] [--models gru din sarn ...]
    python -m benchmarks.evaluation_statistics --sample-sizes 640 1280 2560 [--draws 5]

For each trained Table II run of the pipeline (``results/table2/<dataset>/<model>``: its
``run.json``, ``runs.csv`` and each seed's reported checkpoint), evaluates the test set twice:
with the statistics the checkpoint holds (measured before its evaluation on the run's sample
of one buffer of training batches, :mod:`sarn.nn.statistics`), and with statistics
re-estimated at the same weights over one whole training epoch (every batch alike, cut as
training cuts them). It prints the mean test AUC over seeds both ways, their mean difference
and the paired t-test's p. A small difference means the sample's statistics are those of the
training distribution, not of a biased share of its batches.

With ``--sample-sizes``, it asks how many training samples the measurement needs: at each
checkpoint's weights, the statistics are measured on ``--draws`` random samples of each size
(the first drawn as the run draws its own, so the run's size reproduces the stored column), and
it prints, per size, the test AUC's mean absolute distance from the whole epoch's and its
standard deviation over draws (the sampling noise), beside the std over seeds of Table II.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from sarn.data.processed import SPLITS, load_meta, load_split
from sarn.nn import EvaluationStatistics
from sarn.train.batching import DeviceSamples
from sarn.train.checkpoint import load_trained
from sarn.train.loop import STATISTICS_SEED_OFFSET, calibrate, predict
from sarn.train.metrics import auc
from sarn.train.record import RUN_FILE, read_run_record

ROOT = Path(__file__).resolve().parents[1]


def reestimate(net: torch.nn.Module, train: DeviceSamples, batch_size: int, sort_chunk: int, seed: int) -> None:
    """Replace ``net``'s evaluation statistics by their average over one whole training epoch."""
    calibrate(net, train, train.training_batches(batch_size, sort_chunk, torch.Generator().manual_seed(seed)))


def checkpoints(folder: Path, data_dir: Path) -> Iterator[tuple[int, torch.nn.Module, dict, dict[str, DeviceSamples]]]:
    """Each seed of a trained run: its seed, its reported checkpoint, the run's training
    settings and the splits cut to the run's history length."""
    run = read_run_record(folder)
    data = {split: DeviceSamples(load_split(data_dir, split), torch.device("cpu"), run["max_len"]) for split in SPLITS}
    meta = load_meta(data_dir)
    for seed in pd.read_csv(folder / "runs.csv")["seed"]:
        yield int(seed), load_trained(folder, f"checkpoints/seed{seed}.pt", meta), run["training"], data


def keeps_statistics(net: torch.nn.Module) -> bool:
    return any(isinstance(m, EvaluationStatistics) for m in net.modules())


def compare(folder: Path, data_dir: Path, eval_batch_size: int) -> dict[str, float] | None:
    """Mean test AUC over the run's seeds with stored and with re-estimated statistics."""
    stored, again = [], []
    for seed, net, training, data in checkpoints(folder, data_dir):
        if not keeps_statistics(net):
            return None
        test = data["test"]
        stored.append(auc(test.label, predict(net, test, eval_batch_size)))
        reestimate(net, data["train"], training["batch_size"], training["length_sort_chunk"], seed)
        again.append(auc(test.label, predict(net, test, eval_batch_size)))
    diff = np.array(again) - np.array(stored)
    return {"seeds": len(stored), "stored": float(np.mean(stored)), "whole_epoch": float(np.mean(again)),
            "difference": float(diff.mean()), "p": float(stats.ttest_rel(again, stored).pvalue)}


def sample_sizes(folder: Path, data_dir: Path, eval_batch_size: int, sizes: list[int],
                 draws: int) -> dict[int, dict[str, float]] | None:
    """Per sample size: the mean over seeds and draws of |AUC − AUC with a whole epoch's
    statistics|, the mean over seeds of the AUC's std over draws, and Table II's std over seeds."""
    distance: dict[int, list[float]] = {size: [] for size in sizes}
    noise: dict[int, list[float]] = {size: [] for size in sizes}
    whole = []
    for seed, net, training, data in checkpoints(folder, data_dir):
        if not keeps_statistics(net):
            return None
        train, test = data["train"], data["test"]
        reestimate(net, train, training["batch_size"], training["length_sort_chunk"], seed)
        whole.append(auc(test.label, predict(net, test, eval_batch_size)))
        for size in sizes:
            aucs = []
            for draw in range(draws):  # draw 0: the run's own stream
                generator = torch.Generator().manual_seed(STATISTICS_SEED_OFFSET + seed + 1_000_003 * draw)
                calibrate(net, train, train.sample_batches(size, training["batch_size"], generator))
                aucs.append(auc(test.label, predict(net, test, eval_batch_size)))
            distance[size] += [abs(a - whole[-1]) for a in aucs]
            noise[size].append(float(np.std(aucs, ddof=1)) if draws > 1 else float("nan"))
    spread = float(np.std(whole, ddof=1)) if len(whole) > 1 else float("nan")
    return {size: {"seeds": len(whole), "distance": float(np.mean(distance[size])),
                   "noise": float(np.mean(noise[size])), "seed_std": spread} for size in sizes}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--models", nargs="+", help="run folders of results/table2/<dataset> (default: all)")
    parser.add_argument("--eval-batch-size", type=int, default=256)
    parser.add_argument("--sample-sizes", type=int, nargs="+", help="compare these statistics sample sizes instead")
    parser.add_argument("--draws", type=int, default=5, help="random samples of each size a checkpoint")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    root = ROOT / "results" / "table2" / args.dataset
    if not root.is_dir():
        parser.error(f"{root}: not found (run the pipeline's Table II stages first)")
    names = args.models or sorted(p.name for p in root.iterdir() if (p / RUN_FILE).is_file())
    data_dir = ROOT / "data" / "processed" / args.dataset
    if args.sample_sizes:
        print("| model | samples | mean abs. distance from a whole epoch's | std over draws | std over seeds |\n"
              "|---|---|---|---|---|")
        for name in names:
            rows = sample_sizes(root / name, data_dir, args.eval_batch_size, args.sample_sizes, args.draws)
            for size, row in (rows or {}).items():
                print(f"| {name} | {size} | {row['distance']:.5f} | {row['noise']:.5f} | {row['seed_std']:.4f} |",
                      flush=True)
        return
    print("| model | seeds | stored statistics | whole-epoch statistics | difference | p |\n|---|---|---|---|---|---|")
    for name in names:
        row = compare(root / name, data_dir, args.eval_batch_size)
        if row is None:
            print(f"| {name} | | no batch norm or Dice statistics kept | | | |")
            continue
        print(f"| {name} | {row['seeds']} | {row['stored']:.4f} | {row['whole_epoch']:.4f} | "
              f"{row['difference']:+.4f} | {row['p']:.2g} |", flush=True)


if __name__ == "__main__":
    main()
