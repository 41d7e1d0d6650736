"""The per-feature statistics batch norm and Dice normalise with at evaluation.

Neither reference code keeps any: its batch norm always runs in inference mode over fixed
statistics 0 and 1, and its Dice normalises every batch, at test time too, with that batch's
own. Where this project evaluates with statistics taken from training data (so that a
prediction never depends on its batch), they are measured afresh before every evaluation, at
the weights being evaluated, over a fixed sample of training batches
(:func:`collecting_statistics`, driven by :func:`sarn.train.loop.calibrate`).

Not PyTorch's running average of momentum 0.1: training batches come longest first within
each buffer of 20 (``length_sort_chunk``), so that average weighs the ten shortest-history
batches of the last buffer about two thirds, and it moved Table II's test AUC by up to 0.009
(docs/protocol.md). Nor an average over the batches since the previous evaluation: an
epoch's end can follow a mid-epoch evaluation by a few batches, the epoch's shortest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class EvaluationStatistics(nn.Module):
    """Batch statistics while training; at evaluation, the average of those collected last.

    The sums live in buffers, so a checkpoint holds what its evaluation used. A batch of one
    sample normalises to 0, as TensorFlow computes it (PyTorch's batch norm refuses it).
    """

    def __init__(self, num_features: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.collecting = False
        self.register_buffer("mean_sum", torch.zeros(num_features))
        self.register_buffer("var_sum", torch.zeros(num_features))  # of unbiased batch variances
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))

    def normalise(self, x: torch.Tensor, use_batch: bool) -> torch.Tensor:
        """``(x − μ) / sqrt(σ² + ε)`` over the rows of ``x`` (rows, features): the batch's own
        statistics where ``use_batch`` (added to the sums while collecting), else the average."""
        if use_batch:
            var, mean = torch.var_mean(x, dim=0, correction=0)
            if self.collecting:
                rows = x.shape[0]
                with torch.no_grad():
                    self.mean_sum.add_(mean)
                    self.var_sum.add_(var, alpha=rows / max(rows - 1, 1))
                    self.batches.add_(1)
        else:
            mean, var = self.average()
        return (x - mean) * torch.rsqrt(var + self.eps)

    def average(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance averaged over the batches collected (0 and 1 before any)."""
        seen = self.batches > 0
        count = self.batches.clamp(min=1)
        return (torch.where(seen, self.mean_sum / count, 0.0),
                torch.where(seen, self.var_sum / count, 1.0))

    def restart(self) -> None:
        self.mean_sum.zero_()
        self.var_sum.zero_()
        self.batches.zero_()


@contextmanager
def collecting_statistics(model: nn.Module) -> Iterator[bool]:
    """Within: every :class:`EvaluationStatistics` of ``model`` forgets what it held and adds up
    the statistics of each batch ``model`` then runs in training mode. Yields whether ``model``
    has any (a model without them needs no batches run)."""
    modules = [m for m in model.modules() if isinstance(m, EvaluationStatistics)]
    for module in modules:
        module.restart()
        module.collecting = True
    try:
        yield bool(modules)
    finally:
        for module in modules:
            module.collecting = False
