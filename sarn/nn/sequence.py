"""Pooling over a padded history; ``mask`` is 1.0 at valid positions, 0.0 at padding."""

from __future__ import annotations

import torch


def masked_sum(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum of the valid positions of ``x`` (B, L, d) → (B, d)."""
    return (x * mask.unsqueeze(-1)).sum(dim=1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid positions; an empty history gives zeros, not NaN."""
    count = mask.sum(dim=1, keepdim=True).clamp(min=1.0)
    return masked_sum(x, mask) / count


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-channel max over the valid positions and one zero vector.

    The reference code takes the max over the whole padded batch, so the zeros of
    padding join the max whenever a history is shorter than the batch's longest. We
    always include exactly one zero: the result then equals the reference's for every
    padded sample and no longer depends on which other samples share the batch.
    """
    return (x * mask.unsqueeze(-1)).amax(dim=1).clamp(min=0.0)
