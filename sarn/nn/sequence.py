"""Pooling over a padded history; ``mask`` is 1.0 at valid positions, 0.0 at padding."""

from __future__ import annotations

from typing import Literal

import torch

# Where a zero vector joins a max-pool: ``always`` one, whatever the batch; ``padded`` the zeros
# of padding, as the reference code pools: only a history shorter than its batch's longest has any.
MaxPoolZero = Literal["always", "padded"]


def masked_sum(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum of the valid positions of ``x`` (B, L, d) → (B, d)."""
    return (x * mask.unsqueeze(-1)).sum(dim=1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid positions; an empty history gives zeros, not NaN."""
    count = mask.sum(dim=1, keepdim=True).clamp(min=1.0)
    return masked_sum(x, mask) / count


def masked_max(x: torch.Tensor, mask: torch.Tensor, zero: MaxPoolZero = "always") -> torch.Tensor:
    """Per-channel max over the valid positions and a zero vector (see :data:`MaxPoolZero`).

    The reference code takes the max over the whole padded batch, so the zeros of
    padding join the max whenever a history is shorter than the batch's longest. By
    default one zero always joins: the result then equals the reference's for every
    padded sample and no longer depends on which other samples share the batch.
    """
    pooled = (x * mask.unsqueeze(-1)).amax(dim=1)  # a padded position gives its zero
    return pooled.clamp(min=0.0) if zero == "always" else pooled
