"""SARN's similitude relation (paper eqs. 6-9) and the pair combination it feeds."""

from __future__ import annotations

import torch
from torch import nn


def relation_combine(relation: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``out[b, i, j] = values[b, j] + relation[b, i, j] · values[b, i]`` (eq. 6's g_ij).

    Applied to the item vectors it gives the relations g_ij themselves. Because g_ij is
    linear in the item vectors, a linear map W applied to every g_ij equals this same
    combination of the per-item products W x, which costs O(L·d·h) instead of O(L²·d·h):
    the attention and regressor layers use that.
    """
    return values.unsqueeze(1) + relation.unsqueeze(-1) * values.unsqueeze(2)


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Scale to unit length; a zero vector (padding) stays zero (the code adds 1e-10)."""
    return x / (torch.linalg.vector_norm(x, dim=-1, keepdim=True) + 1e-10)


class SimilitudeRelation(nn.Module):
    """``R_ij = φ(x_i) · ϕ(x_j)`` with ``φ(x) = unit(ReLU(W_φ x))``; both maps bias-free.

    R lies in [0, 1] (non-negative unit vectors) and is 0 wherever x_i or x_j is a
    padded (zero) vector.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.source = nn.Linear(dim, hidden, bias=False)
        self.target = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phi = _unit(torch.relu(self.source(x)))
        varphi = _unit(torch.relu(self.target(x)))
        return phi @ varphi.transpose(-1, -2)
