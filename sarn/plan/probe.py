"""A short timed probe of a run: its training steps and evaluations on generated batches shaped
like its dataset, through the pipeline's own step and prediction, here, as params.yaml's runtime
sets torch up (device, threads, precision; eagerly).

A probe draws the samples of a few batches with the dataset's history lengths (cut to the run's),
batches them as an epoch does (sorted by length in chunks, so that their widths spread as an epoch's
do), and times them in ``ROUNDS`` rounds, each on new samples. A figure is the rounds' mean, its
uncertainty half their range: how far the rounds disagree, which covers both the batches drawn and
the machine's drift during the probe (not a change of the machine's load afterwards).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from sarn.params import ModelSpec, Precision
from sarn.plan.shapes import DatasetShape
from sarn.train.batching import DeviceSamples
from sarn.train.checkpoint import model_for
from sarn.train.loop import (
    calibrate,
    evaluation_batches,
    make_optimizer,
    predict,
    train_step,
)
from sarn.train.metrics import evaluate

ROUNDS = 3
WARM_UP_STEPS = 2
EVAL_BATCHES = 2  # evaluation batches a round
STATISTICS_BATCHES = 2  # batches of the statistics' measurement a round


@dataclass(frozen=True)
class Timing:
    """Seconds something takes (the rounds' mean) and half the rounds' range, relative to it."""

    seconds: float
    spread: float

    @classmethod
    def of(cls, rounds: list[float]) -> Timing:
        mean = float(np.mean(rounds))
        return cls(mean, (max(rounds) - min(rounds)) / 2 / mean)


@dataclass(frozen=True)
class Probe:
    """Seconds an optimizer step of a run takes, an evaluated sample does, and a sample of the
    measurement of the statistics batch norm and Dice evaluate with does (0 without any)."""

    step: Timing
    evaluated_sample: Timing
    statistics_sample: Timing


def generated_samples(lengths: np.ndarray, width: int, meta: dict, rng: np.random.Generator
                      ) -> dict[str, np.ndarray]:
    """Random sample arrays in the preprocess stage's layout, one sample a history length of
    ``lengths``, histories stored ``width`` wide, ids within ``meta``'s vocabulary."""
    size, n_items, n_categories = lengths.size, meta["n_items"], meta["n_categories"]
    hist = {key: rng.integers(1, n, (size, width), dtype=np.int32) for key, n in
            [("hist_item", n_items), ("hist_category", n_categories), ("neg_item", n_items),
             ("neg_category", n_categories)]}
    contexts = meta.get("n_contexts")
    context = {"context": rng.integers(1, contexts, size, dtype=np.int32)} if contexts else {}
    return {"user": np.arange(size), "item": rng.integers(1, n_items, size, dtype=np.int32),
            "category": rng.integers(1, n_categories, size, dtype=np.int32),
            "timestamp": np.full(size, 1_400_000_000), "label": rng.integers(0, 2, size).astype(np.float32),
            "length": lengths, "full_length": lengths, "hist_timestamp": 1_400_000_000 - rng.integers(0, 10**7, (size, width)),
            **hist, **context}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def probe(spec: ModelSpec, shape: DatasetShape, max_len: int, steps: int, eval_batch_size: int,
          device: torch.device, precision: Precision) -> Probe:
    """``ROUNDS`` rounds of ``steps`` training steps of ``spec`` and of ``EVAL_BATCHES`` evaluation
    batches, on samples drawn with ``shape``'s history lengths cut to ``max_len``, after a warm-up."""
    training = spec.training
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    net = model_for(spec.model, spec.architecture, shape.meta).to(device)
    optimizer = make_optimizer(net, training)

    def samples(size: int) -> DeviceSamples:
        lengths = np.minimum(rng.choice(shape.lengths, size), max_len)
        return DeviceSamples(generated_samples(lengths, max_len, shape.meta, rng), device)

    def train(count: int) -> float:
        data = samples(training.batch_size * count)
        order = torch.Generator().manual_seed(int(rng.integers(2**31)))
        batches = data.training_batches(training.batch_size, training.length_sort_chunk, order,
                                        training.batch_order)
        net.train()
        _synchronize(device)
        start = time.perf_counter()
        for part in batches:
            train_step(net, optimizer, data.batch(part), training, precision)
        _synchronize(device)
        return (time.perf_counter() - start) / len(batches)

    eval_size, eval_chunk = evaluation_batches(net, training, eval_batch_size)

    def evaluation() -> float:
        data = samples(eval_size * EVAL_BATCHES)
        start = time.perf_counter()
        evaluate(data.label, predict(net, data, eval_size, precision, eval_chunk), data.user)
        return (time.perf_counter() - start) / data.size

    def statistics() -> float:
        data = samples(training.batch_size * STATISTICS_BATCHES)
        parts = data.sample_batches(data.size, training.batch_size, torch.Generator().manual_seed(0))
        _synchronize(device)
        start = time.perf_counter()
        calibrate(net, data, parts, precision)
        _synchronize(device)
        return (time.perf_counter() - start) / data.size

    train(WARM_UP_STEPS)
    evaluation()
    statistics()
    training_rounds = [train(steps) for _ in range(ROUNDS)]
    return Probe(Timing.of(training_rounds), Timing.of([evaluation() for _ in range(ROUNDS)]),
                 Timing.of([statistics() for _ in range(ROUNDS)]))
