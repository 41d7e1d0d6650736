"""Dice (DIN paper) and the activation factory used by output heads."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from sarn.nn.statistics import EvaluationStatistics

DiceEval = Literal["running", "batch"]
Activation = Literal["dice", "prelu"]


class Dice(nn.Module):
    """Dice: ``x · (α(1 − p) + p)``, ``p = sigmoid((x − μ) / sqrt(σ² + ε))``, α per unit (init 0).

    ``eval_stats="running"`` (our default) normalises at evaluation time with statistics
    measured on training batches (:class:`EvaluationStatistics`), so a test prediction never
    depends on its batch, as the DIN paper describes. ``"batch"`` reproduces the reference TensorFlow
    code, which uses the statistics of the current batch at test time as well. The code
    divides by ``sqrt(σ² + ε) + ε``: with ε = 10⁻⁹, the same below float32's precision.
    """

    def __init__(self, num_features: int, eval_stats: DiceEval) -> None:
        super().__init__()
        self.stats = EvaluationStatistics(num_features, eps=1e-9)
        self.alpha = nn.Parameter(torch.zeros(num_features))
        self.eval_stats = eval_stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(self.stats.normalise(x, use_batch=self.training or self.eval_stats == "batch"))
        return x * (self.alpha * (1.0 - p) + p)


def make_activation(name: Activation, width: int, dice_eval: DiceEval) -> nn.Module:
    """The hidden-layer activation of an output head."""
    if name == "dice":
        return Dice(width, dice_eval)
    if name == "prelu":
        return nn.PReLU(width, init=0.1)
    raise ValueError(f"unknown activation {name!r}; expected 'dice' or 'prelu'")
