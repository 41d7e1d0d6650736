"""ATRank (Zhou et al., AAAI 2018) reduced to the single behaviour type of these datasets.

Each click is item ⊕ category embeddings (``embedding_dim`` each; the paper keeps
ATRank's 64) concatenated with a one-hot time-gap bucket, projected to 2·embedding_dim;
one self-attention block (``heads`` heads, ReLU projections, residual + layer norm,
position-wise feed-forward with residual + layer norm), then multi-head attention of
the target over the block's outputs; logit = item bias + ⟨u, t⟩.

Time gap = (target time − click time) in days; bucket k counts the boundaries
1, 2, 4, …, 4096 days that the gap reaches (so 14 buckets, 0 for under a day). The
paper trains it with SGD, learning rate 1.0, batch 32 (params.yaml), and its code clips
the gradient norm at 5 (``grad_clip_norm``). A user with no usable history gets u = 0.
"""

from __future__ import annotations

import torch
from torch import nn

from sarn.models.base import Batch, CTRModel, ModelOutput

_GAP_DOUBLINGS = 13
GAP_BOUNDARIES_DAYS = tuple(2.0**k for k in range(_GAP_DOUBLINGS))  # 1 … 4096
N_GAP_BUCKETS = len(GAP_BOUNDARIES_DAYS) + 1
_MASKED_SCORE = -(2.0**32) + 1


def gap_buckets(target_time: torch.Tensor, click_time: torch.Tensor) -> torch.Tensor:
    """Bucket index (0 … 13) of each click's age at the target's time."""
    days = (target_time[:, None] - click_time).clamp(min=0).to(torch.float64) / 86_400.0
    # GAP_BOUNDARIES_DAYS made on the device: a tensor built from Python values would be
    # copied from the host at every step, and such a copy waits for the GPU.
    bounds = 2.0 ** torch.arange(_GAP_DOUBLINGS, dtype=torch.float64, device=days.device)
    return (days.unsqueeze(-1) >= bounds).sum(dim=-1)


def one_hot(index: torch.Tensor, classes: int, dtype: torch.dtype) -> torch.Tensor:
    """``nn.functional.one_hot`` without its range check, which reads the index's min and
    max back from the device (on the CPU; on CUDA it asserts on the device instead)."""
    return (index.unsqueeze(-1) == torch.arange(classes, device=index.device)).to(dtype)


class _MultiHeadAttention(nn.Module):
    """ATRank's attention: ReLU projections, scaled dot product, key padding masked."""

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


class ATRank(CTRModel):
    def __init__(
        self,
        n_items: int,
        n_categories: int,
        *,
        embedding_dim: int,
        heads: int,
        ff_hidden: int,
    ) -> None:
        super().__init__(n_items, n_categories, embedding_dim)
        d = self.item_dim
        self.item_bias = nn.Embedding(n_items, 1, padding_idx=0)
        self.project = nn.Linear(d + N_GAP_BUCKETS, d)
        self.self_attention = _MultiHeadAttention(d, heads)
        self.norm1 = nn.LayerNorm(d)
        self.feed_forward = nn.Sequential(nn.Linear(d, ff_hidden), nn.ReLU(), nn.Linear(ff_hidden, d))
        self.norm2 = nn.LayerNorm(d)
        self.target_attention = _MultiHeadAttention(d, heads)

    def score(self, batch: Batch) -> ModelOutput:
        target, history, mask = self.embed(batch)
        gaps = one_hot(gap_buckets(batch.timestamp, batch.hist_timestamp), N_GAP_BUCKETS, history.dtype)
        clicks = self.project(torch.cat([history, gaps], dim=-1)) * mask.unsqueeze(-1)
        encoded = self.norm1(clicks + self.self_attention(clicks, clicks, mask))
        encoded = self.norm2(encoded + self.feed_forward(encoded))
        user = self.target_attention(target.unsqueeze(1), encoded, mask).squeeze(1)
        user = user * (mask.sum(dim=1, keepdim=True) > 0)
        logit = self.item_bias(batch.item).squeeze(-1) + (user * target).sum(dim=-1)
        return ModelOutput(logit, self.no_aux_loss(logit))
