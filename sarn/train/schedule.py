"""How much work a run is: the samples it trains on and evaluates, its optimizer steps and its
evaluations, from its settings and its dataset's split sizes, by the rules the training loop
follows (:func:`sarn.train.loop.train_run`; tests/test_plan.py checks them against a run's
history). The training stages check a run against them, and ``python -m sarn plan`` counts with them.
"""

from __future__ import annotations

import math

from sarn.params import TrainOn


def trained_samples(sizes: dict[str, int], train_on: TrainOn) -> int:
    """Samples of an epoch: the training split, with the validation split where it joins training."""
    return sizes["train"] + (sizes["valid"] if train_on == "train+valid" else 0)


def evaluated_samples(sizes: dict[str, int], train_on: TrainOn) -> int:
    """Samples of one evaluation: the test split, and the validation split where it is kept apart."""
    return sizes["test"] + (sizes["valid"] if train_on == "train" else 0)


def steps_per_epoch(samples: int, batch_size: int) -> int:
    """Optimizer steps of an epoch (the last batch may be partial)."""
    return math.ceil(samples / batch_size)


def evaluations(epochs: int, steps: int, eval_every: int | None) -> int:
    """Evaluations of a run of ``epochs`` epochs of ``steps`` steps: one at each epoch's end, and
    one every ``eval_every`` steps counted across epochs, except where that falls on an epoch's end."""
    total = epochs * steps
    if not eval_every:
        return epochs
    return epochs + total // eval_every - total // math.lcm(eval_every, steps)
