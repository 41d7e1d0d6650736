"""Dice (DIN paper) and the activation factory used by output heads."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

DiceEval = Literal["running", "batch"]
Activation = Literal["dice", "prelu"]


class Dice(nn.Module):
    """Dice: ``x · (α(1 − p) + p)``, ``p = sigmoid((x − μ) / sqrt(σ² + ε))``, α per unit (init 0).

    ``eval_stats="running"`` (our default) normalises with running statistics at
    evaluation time, so a test prediction never depends on its batch, as the DIN paper
    describes. ``"batch"`` reproduces the reference TensorFlow code, which uses the
    statistics of the current batch at test time as well.
    """

    def __init__(self, num_features: int, eval_stats: DiceEval) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(num_features, eps=1e-9, affine=False)
        self.alpha = nn.Parameter(torch.zeros(num_features))
        self.eval_stats = eval_stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        use_batch = self.training or self.eval_stats == "batch"
        normed = nn.functional.batch_norm(
            x,
            self.norm.running_mean,
            self.norm.running_var,
            training=use_batch,
            momentum=self.norm.momentum if self.training else 0.0,
            eps=self.norm.eps,
        )
        p = torch.sigmoid(normed)
        return x * (self.alpha * (1.0 - p) + p)


def make_activation(name: Activation, width: int, dice_eval: DiceEval) -> nn.Module:
    """The hidden-layer activation of an output head."""
    if name == "dice":
        return Dice(width, dice_eval)
    if name == "prelu":
        return nn.PReLU(width, init=0.1)
    raise ValueError(f"unknown activation {name!r}; expected 'dice' or 'prelu'")
