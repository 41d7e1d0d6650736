"""The batch every model takes: a plain record of tensors, below both the batching code (which
makes it) and the models (which read it), so that neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass(frozen=True)
class Batch:
    """One batch; history tensors are (B, L) with L the longest history of the batch.

    ``neg_item``/``neg_category`` hold one sampled non-clicked item per history
    position (auxiliary losses); timestamps are in seconds; ``label`` is 1.0 for a click.
    """

    item: torch.Tensor
    category: torch.Tensor
    timestamp: torch.Tensor
    hist_item: torch.Tensor
    hist_category: torch.Tensor
    hist_timestamp: torch.Tensor
    neg_item: torch.Tensor
    neg_category: torch.Tensor
    mask: torch.Tensor
    label: torch.Tensor
    context: torch.Tensor | None = None  # (B,) context feature index, where the log has one

    def to(self, device: torch.device) -> Batch:
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)
                                if getattr(self, f.name) is not None})
