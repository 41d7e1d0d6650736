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
    """Batch statistics while training or collecting; otherwise those collected last.

    Collected statistics pool the batches by their rows: the mean over every row, and the
    within-batch variance with each batch's degrees of freedom (for batches of one size, the
    average of their unbiased variances, as PyTorch's cumulative average keeps). They are
    computed in float32 whatever the autocast precision, and live in buffers, so a checkpoint
    holds what its evaluation used. A batch of one sample normalises to 0, as TensorFlow
    computes it (PyTorch's batch norm refuses it).
    """

    def __init__(self, num_features: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.collecting = False
        self.register_buffer("mean_sum", torch.zeros(num_features))  # Σ rows · batch mean
        self.register_buffer("square_sum", torch.zeros(num_features))  # Σ rows · biased batch variance
        self.register_buffer("rows", torch.zeros((), dtype=torch.long))
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))

    def normalise(self, x: torch.Tensor, use_batch: bool) -> torch.Tensor:
        """``(x − μ) / sqrt(σ² + ε)`` over the rows of ``x`` (rows, features): the batch's own
        statistics where ``use_batch`` or while collecting (then added up), else the collected."""
        wide = x.to(torch.promote_types(x.dtype, torch.float32))  # bfloat16 and float16 widened
        if use_batch or self.collecting:
            var, mean = torch.var_mean(wide, dim=0, correction=0)
            if self.collecting:
                rows = x.shape[0]
                with torch.no_grad():
                    self.mean_sum.add_(mean, alpha=rows)
                    self.square_sum.add_(var, alpha=rows)
                    self.rows.add_(rows)
                    self.batches.add_(1)
        else:
            mean, var = self.collected()
        return ((wide - mean) * torch.rsqrt(var + self.eps)).to(x.dtype)

    def collected(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of the batches collected (0 and 1 before any)."""
        seen = self.rows > 0
        mean = self.mean_sum / self.rows.clamp(min=1)
        var = self.square_sum / (self.rows - self.batches).clamp(min=1)
        return torch.where(seen, mean, 0.0), torch.where(seen, var, 1.0)

    def restart(self) -> None:
        for buffer in (self.mean_sum, self.square_sum, self.rows, self.batches):
            buffer.zero_()


@contextmanager
def collecting_statistics(model: nn.Module) -> Iterator[bool]:
    """Within: every :class:`EvaluationStatistics` of ``model`` forgets what it held, then
    normalises each batch ``model`` runs with that batch's statistics and adds them up, in
    evaluation mode too (so that a model's extra training losses, and their random draws, stay
    out of it). Yields whether ``model`` has any (a model without them needs no batches run)."""
    modules = [m for m in model.modules() if isinstance(m, EvaluationStatistics)]
    for module in modules:
        module.restart()
        module.collecting = True
    try:
        yield bool(modules)
    finally:
        for module in modules:
            module.collecting = False
