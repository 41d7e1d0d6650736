"""Attention units: DIN's target attention, SARN's attentive max-pooling, ATRank's multi-head
attention and its blocks."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from sarn.nn.relation import Pairs, batch_slices
from sarn.nn.sequence import MaxPoolZero

# The reference code fills masked scores with -2**32 + 1 before the softmax: an
# all-padding history then gets uniform weights over zero vectors instead of NaN.
_MASKED_SCORE = -(2.0**32) + 1
ATRANK_LAYER_NORM_EPS = 1e-8  # ATRank's code's own layer norm


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
    user vector is the per-channel max of ``s_ij · g_ij`` over valid pairs and a zero vector,
    always or only where the row has padding (``zero``, as :func:`sarn.nn.sequence.masked_max`).

    A max passes its gradient to one pair per channel only, so the (B, L, L, d) products
    are formed without autograd to find that pair, and only the chosen products are
    recomputed with it: the same values and gradients (up to ties, which have measure
    zero), without keeping two pair-sized tensors for the backward pass.
    """

    def __init__(self, dim: int, hidden: int, zero: MaxPoolZero = "always") -> None:
        super().__init__()
        self.zero = zero
        self.query = nn.Linear(dim, hidden)  # the t half of W₁, carrying b₁
        self.pair = nn.Linear(dim, hidden, bias=False)  # the g half of W₁
        self.score = nn.Linear(hidden, 1)

    def kernel_parts(self) -> list[tuple[nn.Linear, ...]]:
        """W₁ is one layer on ``[t ; g_ij]`` (the code's dense layer of 2d inputs)."""
        return [(self.query, self.pair)]

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
        pooled = scores.flatten(1).gather(1, index) * pairs.select(index)  # a padded pair's product is 0
        return (pooled.clamp(min=0.0) if self.zero == "always" else pooled), scores


class MultiHeadAttention(nn.Module):
    """ATRank's multi-head attention: ReLU projections of queries, keys and values, scaled dot
    product, key padding masked (its code's ``multihead_attention`` without the residual)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"the model size {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q, self.k, self.v = (nn.Linear(dim, dim) for _ in range(3))

    def forward(self, query: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        b, lq, dim = query.shape
        lk, h = keys.shape[1], self.heads

        def split(x: torch.Tensor, n: int) -> torch.Tensor:
            return torch.relu(x).reshape(b, n, h, dim // h).transpose(1, 2)

        q, k, v = split(self.q(query), lq), split(self.k(keys), lk), split(self.v(keys), lk)
        scores = q @ k.transpose(-1, -2) / (dim // h) ** 0.5
        scores = scores.masked_fill(key_mask[:, None, None, :] == 0, _MASKED_SCORE)
        out = torch.softmax(scores, dim=-1) @ v
        return out.transpose(1, 2).reshape(b, lq, dim)


class AttentionBlock(nn.Module):
    """Attention with a residual and layer norm, then the feed-forward net with a residual and
    layer norm: the code's ``multihead_attention`` followed by its ``feedforward``."""

    def __init__(self, dim: int, heads: int, ff_hidden: int) -> None:
        super().__init__()
        self.attention = MultiHeadAttention(dim, heads)
        self.norm1 = nn.LayerNorm(dim, eps=ATRANK_LAYER_NORM_EPS)
        self.feed_forward = nn.Sequential(nn.Linear(dim, ff_hidden), nn.ReLU(), nn.Linear(ff_hidden, dim))
        self.norm2 = nn.LayerNorm(dim, eps=ATRANK_LAYER_NORM_EPS)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor,
                any_key: torch.Tensor | None = None) -> torch.Tensor:
        """``any_key`` (B, 1, 1): 0 where a row has no valid key, whose attention output is dropped."""
        attended = self.attention(query, keys, key_mask)
        if any_key is not None:
            attended = attended * any_key
        out = self.norm1(query + attended)
        return self.norm2(out + self.feed_forward(out))
