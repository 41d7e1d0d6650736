"""Attention units: DIN's target attention and SARN's attentive max-pooling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# The reference code fills masked scores with -2**32 + 1 before the softmax: an
# all-padding history then gets uniform weights over zero vectors instead of NaN.
_MASKED_SCORE = -(2.0**32) + 1


class TargetAttention(nn.Module):
    """DIN's activation unit: an MLP on ``[t, x_j, t − x_j, t ⊙ x_j]`` → masked softmax → Σ.

    Sigmoid hidden layers as both reference repositories use them. The final layer has
    no bias: a constant added to every score cancels in the softmax, so the reference's
    bias there never receives a gradient.
    """

    def __init__(self, dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        widths = [4 * dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.Sigmoid()]
        layers.append(nn.Linear(widths[-1], 1, bias=False))
        self.net = nn.Sequential(*layers)

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the pooled vector (B, d) and the attention weights (B, L)."""
        q = query.unsqueeze(1).expand_as(keys)
        scores = self.net(torch.cat([q, keys, q - keys, q * keys], dim=-1)).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(mask == 0, _MASKED_SCORE), dim=-1)
        return (weights.unsqueeze(-1) * keys).sum(dim=1), weights


class AttentiveMaxPool(nn.Module):
    """Attentive max-pooling over pair vectors (paper Fig. 3b, as the reference code does it).

    ``s_ij = sigmoid(w₂ · ReLU(W₁ [t ; g_ij] + b₁) + b₂)`` with no softmax; the pooled
    user vector is the per-channel max of ``s_ij · g_ij`` over valid pairs and one zero
    vector (see :func:`sarn.nn.sequence.masked_max` for why the zero is always there).
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.query = nn.Linear(dim, hidden)  # the t half of W₁, carrying b₁
        self.pair = nn.Linear(dim, hidden, bias=False)  # the g half of W₁
        self.score = nn.Linear(hidden, 1)

    def forward(
        self,
        target: torch.Tensor,
        pairs: torch.Tensor,
        pair_mask: torch.Tensor,
        pair_projection: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool ``pairs`` (B, L, L, d) → (B, d); also return the scores s (B, L, L).

        ``pair_projection`` may hold ``self.pair`` applied to every pair, when the caller
        can compute it more cheaply (SARN: see :func:`sarn.nn.relation.relation_combine`).
        """
        if pair_projection is None:
            pair_projection = self.pair(pairs)
        hidden = torch.relu(pair_projection + self.query(target)[:, None, None, :])
        scores = torch.sigmoid(self.score(hidden).squeeze(-1))
        weighted = (scores * pair_mask).unsqueeze(-1) * pairs
        pooled = weighted.flatten(1, 2).amax(dim=1).clamp(min=0.0)
        return pooled, scores * pair_mask
