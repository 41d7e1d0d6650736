"""Batch normalisation with an explicit mode, and the MLP heads that end every model."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from sarn.nn.activation import Activation, DiceEval, make_activation
from sarn.nn.statistics import EvaluationStatistics

BatchNormMode = Literal["standard", "frozen"]


class BatchNorm(nn.Module):
    """Batch normalisation over the last axis, with TensorFlow's epsilon 10⁻³.

    ``standard``: batch statistics while training; at evaluation, their average over a sample
    of training batches run at the evaluated weights (:class:`EvaluationStatistics`).
    ``frozen``: what the reference code computes (its layer always runs in inference
    mode): a learnable scale and shift over fixed statistics 0 and 1.
    """

    EPS = 1e-3

    def __init__(self, num_features: int, mode: BatchNormMode) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.stats = EvaluationStatistics(num_features, self.EPS) if mode == "standard" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        if self.stats is None:
            normed = flat * (1.0 + self.EPS) ** -0.5
        else:
            normed = self.stats.normalise(flat, use_batch=self.training)
        return (normed * self.weight + self.bias).reshape(x.shape)


class OutputHead(nn.Module):
    """batch norm → [Linear → activation]* → Linear(2); returns one logit per row.

    The two output units follow the reference code's softmax over (click, no click); the
    logit returned is their difference, so ``sigmoid(logit)`` is the softmax's click column.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        activation: Activation,
        batchnorm: BatchNormMode,
        dice_eval: DiceEval,
        bias: Sequence[bool] | None = None,
    ) -> None:
        super().__init__()
        widths = [in_dim, *hidden, 2]
        bias = list(bias) if bias is not None else [True] * (len(widths) - 1)
        if len(bias) != len(widths) - 1:
            raise ValueError(f"need {len(widths) - 1} bias flags, got {len(bias)}")
        layers: list[nn.Module] = [BatchNorm(in_dim, batchnorm)]
        for k, (a, b) in enumerate(itertools.pairwise(widths)):
            layers.append(nn.Linear(a, b, bias=bias[k]))
            if k < len(hidden):
                layers.append(make_activation(activation, b, dice_eval))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        click, no_click = self.net(x).unbind(-1)  # unbind: one operator in backward, two selects four
        return click - no_click


class ClickHead(nn.Module):
    """The auxiliary nets of DIEN and SARN: batch norm → sigmoid layers → 2-way softmax.

    Returns the log-probability that the pair is a click (softmax column 0) and its
    complement, computed stably from the logit difference.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], batchnorm: BatchNormMode) -> None:
        super().__init__()
        widths = [in_dim, *hidden]
        layers: list[nn.Module] = [BatchNorm(in_dim, batchnorm)]
        for a, b in itertools.pairwise(widths):
            layers += [nn.Linear(a, b), nn.Sigmoid()]
        layers.append(nn.Linear(widths[-1], 2))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        click, no_click = self.net(x).unbind(-1)
        logit = click - no_click
        return nn.functional.logsigmoid(logit), nn.functional.logsigmoid(-logit)
