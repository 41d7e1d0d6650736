"""Attention units: DIN's target attention and SARN's attentive max-pooling."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from sarn.nn.relation import Pairs, batch_slices

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
        for a, b in itertools.pairwise(widths):
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

    A max passes its gradient to one pair per channel only, so the (B, L, L, d) products
    are formed without autograd to find that pair, and only the chosen products are
    recomputed with it: the same values and gradients (up to ties, which have measure
    zero), without keeping two pair-sized tensors for the backward pass.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.query = nn.Linear(dim, hidden)  # the t half of W₁, carrying b₁
        self.pair = nn.Linear(dim, hidden, bias=False)  # the g half of W₁
        self.score = nn.Linear(hidden, 1)

    def forward(
        self, target: torch.Tensor, pairs: Pairs, pair_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool ``pairs`` (B, L, L, d) → (B, d); also return the scores s (B, L, L), zero on padded pairs."""
        logits = pairs.score(self.pair.weight, self.query(target), self.score.weight.squeeze(0)) + self.score.bias
        scores = torch.sigmoid(logits) * pair_mask
        with torch.no_grad():
            b, length, _ = scores.shape
            index = torch.cat([(pairs.full(rows) * scores[rows].unsqueeze(-1)).flatten(1, 2).argmax(dim=1)
                               for rows in batch_slices(b, length * length * target.shape[-1])])
        pooled = scores.flatten(1).gather(1, index) * pairs.select(index)
        return pooled.clamp(min=0.0), scores
