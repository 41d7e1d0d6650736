"""How much work a run is, from its settings and its dataset's split sizes, by the rules the
training loop follows (:func:`sarn.train.loop.train_run`)."""

from __future__ import annotations

from sarn.params import TrainOn


def trained_samples(sizes: dict[str, int], train_on: TrainOn) -> int:
    """Samples of an epoch: the training split, with the validation split where it joins training."""
    return sizes["train"] + (sizes["valid"] if train_on == "train+valid" else 0)
