"""The per-feature statistics batch norm and Dice normalise with at evaluation.

Neither reference code keeps any: its batch norm always runs in inference mode over fixed
statistics 0 and 1, and its Dice normalises every batch, at test time too, with that batch's
own. Where this project evaluates with statistics gathered in training (so that a prediction
never depends on its batch), they are the plain average over the training batches since the
previous evaluation (:func:`restart_statistics`), not PyTorch's exponential average of
momentum 0.1. Training batches come longest first within each buffer of 20
(``length_sort_chunk``), so an exponential average weighs the last ten batches, the shortest
histories of a buffer, about two thirds; the plain average over the 100 steps between two
evaluations on the paper's datasets weighs five whole buffers alike (docs/protocol.md).
"""

from __future__ import annotations

import torch
from torch import nn


class WindowStatistics(nn.Module):
    """Batch statistics while training, and their average since :meth:`restart` for evaluation.

    The sums live in buffers, so a checkpoint holds what its evaluation used, and adding to
    them reads nothing back from the device. A batch of one sample normalises to 0, as
    TensorFlow computes it (PyTorch's batch norm refuses it).
    """

    def __init__(self, num_features: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("mean_sum", torch.zeros(num_features))
        self.register_buffer("var_sum", torch.zeros(num_features))  # of unbiased batch variances
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))

    def normalise(self, x: torch.Tensor, use_batch: bool) -> torch.Tensor:
        """``(x − μ) / sqrt(σ² + ε)`` over the rows of ``x`` (rows, features): the batch's own
        statistics where ``use_batch`` (added to the sums in training), else the average."""
        if use_batch:
            var, mean = torch.var_mean(x, dim=0, correction=0)
            if self.training:
                rows = x.shape[0]
                with torch.no_grad():
                    self.mean_sum.add_(mean)
                    self.var_sum.add_(var, alpha=rows / max(rows - 1, 1))
                    self.batches.add_(1)
        else:
            mean, var = self.average()
        return (x - mean) * torch.rsqrt(var + self.eps)

    def average(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance averaged over the batches since the restart (0 and 1 before any)."""
        seen = self.batches > 0
        count = self.batches.clamp(min=1)
        return (torch.where(seen, self.mean_sum / count, 0.0),
                torch.where(seen, self.var_sum / count, 1.0))

    def restart(self) -> None:
        self.mean_sum.zero_()
        self.var_sum.zero_()
        self.batches.zero_()


def restart_statistics(model: nn.Module) -> None:
    """Start a new averaging window in every :class:`WindowStatistics` of ``model`` (after an
    evaluation, so that the next one averages the batches trained on since)."""
    for module in model.modules():
        if isinstance(module, WindowStatistics):
            module.restart()
